"""CBPE: calibration against scikit-learn, the expected confusion matrix, and a scenario whose
true performance is known (labels drawn from known probabilities)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from monitor.statistics import estimation as est
from monitor.statistics import performance as perf


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _scenario(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """(true probability, miscalibrated model score) under a covariate shift of size ``shift``."""
    x1 = rng.normal(1.5 - 1.3 * shift, 1.0, n)
    x2 = rng.normal(0.3 * shift, 1.0, n)
    logit = 1.6 * x1 - 1.1 * x2 - 0.9
    return _sigmoid(logit), _sigmoid(1.4 * logit + 0.3)


def test_isotonic_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    s = np.round(rng.random(5_000), 3)  # ties
    y = (rng.random(5_000) < s**1.5).astype(int)
    ours = est.fit_isotonic(s, y)
    ref = IsotonicRegression(out_of_bounds="clip").fit(s, y)
    grid = np.linspace(-0.1, 1.1, 500)
    np.testing.assert_allclose(ours(grid), ref.predict(grid), atol=1e-12)
    assert len(ours.x) < len(np.unique(s))  # only the knots are kept


def test_platt_equals_unpenalised_logistic_regression() -> None:
    rng = np.random.default_rng(1)
    s = rng.beta(2, 2, 4_000)
    y = (rng.random(4_000) < _sigmoid(2 * (s - 0.5) * 3)).astype(int)
    ours = est.fit_platt(s, y)
    z = np.log(s / (1 - s))[:, None]
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(z, y)
    assert ours.params[0] == pytest.approx(ref.coef_[0, 0], rel=1e-5)
    assert ours.params[1] == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_calibrated_scores_keep_identity_when_already_calibrated() -> None:
    rng = np.random.default_rng(2)
    s = rng.random(20_000)
    y = (rng.random(20_000) < s).astype(int)
    cal, check = est.fit_calibrator(s, y)
    # identity or a map indistinguishable from it
    assert np.max(np.abs(cal(s) - s)) < 0.05
    assert set(check) == {"brier_identity", "brier_isotonic", "brier_platt"}


def test_expected_confusion_and_auc_equal_the_mean_over_label_draws() -> None:
    """With probabilities known, the CBPE formulas are the expectation of the realised metrics."""
    rng = np.random.default_rng(3)
    p = rng.beta(2, 3, 2_000)
    s = np.round(p + rng.normal(0, 0.02, len(p)), 2)  # ranking by a tied, noisy score
    pred = (s >= 0.4).astype(int)
    point = est.cbpe_point(p, pred, s)
    draws = {m: [] for m in est.CBPE_METRICS}  # type: dict[str, list[float]]
    opts = perf.Options(n_bootstrap=1)
    for _ in range(600):
        y = (rng.random(len(p)) < p).astype(int)
        d = perf.BinaryData(y, pred, s)
        for m in est.CBPE_METRICS:
            draws[m].append(perf.CLASSIFICATION_METRICS[m](d, opts).value)  # type: ignore[arg-type]
    for m in est.CBPE_METRICS:
        sd = np.std(draws[m])
        assert point[m] == pytest.approx(np.mean(draws[m]), abs=4 * sd / np.sqrt(600) + 1e-4)
    sig = est.cbpe_sigmas(p, pred, s, n_sim=400)
    for m in est.CBPE_METRICS:
        assert sig[m] == pytest.approx(np.std(draws[m]), rel=0.15), m


def test_cbpe_tracks_a_known_performance_drop() -> None:
    rng = np.random.default_rng(4)
    p0, s0 = _scenario(rng, 30_000, 0.0)
    y0 = (rng.random(len(p0)) < p0).astype(int)
    model = est.fit_cbpe(y0, s0, threshold=0.5)
    assert model.calibrator.kind in {"isotonic", "platt"}  # the score was miscalibrated
    for m in est.CBPE_METRICS:
        assert model.reference_estimated[m] == pytest.approx(model.reference_realised[m], abs=0.01)
    inside = 0
    for shift in (0.0, 0.5, 1.0):
        p, s = _scenario(rng, 5_000, shift)
        pred = (s >= 0.5).astype(int)
        truth = est.cbpe_point(p, pred, s)  # expected performance: known exactly
        y = (rng.random(len(p)) < p).astype(int)
        real = perf.binary_metrics(y, pred, s)
        out = est.estimate_cbpe(model, s, pred)
        for m in est.CBPE_METRICS:
            e = out[m]
            assert e.status == est.OK and e.value is not None and e.sigma is not None
            assert e.value == pytest.approx(truth[m], abs=0.01), (shift, m)
            inside += e.lower <= real[m].value <= e.upper  # type: ignore[operator]
    assert inside >= 14  # of 15
    _, s1 = _scenario(rng, 5_000, 1.0)
    drop = est.estimate_cbpe(model, s1)["accuracy"].value
    assert drop is not None and drop < model.reference_realised["accuracy"] - 0.02


def test_model_round_trips_through_json() -> None:
    rng = np.random.default_rng(5)
    p, s = _scenario(rng, 5_000, 0.0)
    y = (rng.random(len(p)) < p).astype(int)
    model = est.fit_cbpe(y, s, threshold=0.5)
    again = est.CBPEModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    a = est.estimate_cbpe(model, s[:1000])
    b = est.estimate_cbpe(again, s[:1000])
    assert a == b


def test_small_window_and_bad_baseline() -> None:
    rng = np.random.default_rng(6)
    p, s = _scenario(rng, 3_000, 0.0)
    y = (rng.random(len(p)) < p).astype(int)
    model = est.fit_cbpe(y, s)
    out = est.estimate_cbpe(model, s[:20], min_rows=100)
    assert all(e.status == est.INSUFFICIENT_DATA and e.value is None for e in out.values())
    nan_scores = np.full(500, np.nan)
    assert est.estimate_cbpe(model, nan_scores)["accuracy"].status == est.INSUFFICIENT_DATA
    with pytest.raises(ValueError, match="both classes"):
        est.fit_cbpe(np.zeros(500), s[:500])
    na = est.not_available(("mae",), 10, "no loss model")
    assert na["mae"].status == est.NOT_AVAILABLE and na["mae"].value is None


def test_band_includes_the_calibrations_own_uncertainty() -> None:
    """Bootstrap refits of the calibrator widen the band, more for a small baseline."""
    rng = np.random.default_rng(7)
    p, s = _scenario(rng, 40_000, 0.0)
    y = (rng.random(len(p)) < p).astype(int)
    _, sw = _scenario(rng, 5_000, 1.0)  # a shifted window: sparse scores in the baseline
    pred = (sw >= 0.5).astype(int)
    spread = {}
    for n in (2_000, 40_000):
        model = est.fit_cbpe(y[:n], s[:n], threshold=0.5)
        assert len(model.bootstrap_values) == est.BOOTSTRAP_CALIBRATORS
        again = est.CBPEModel.from_dict(json.loads(json.dumps(model.to_dict())))
        assert again == model
        cal = est.calibration_sigmas(model, sw, pred)
        sampling = est.cbpe_sigmas(model.calibrator(sw), pred, sw)
        out = est.estimate_cbpe(model, sw, pred)
        for m in est.CBPE_METRICS:
            assert out[m].sigma == pytest.approx(np.hypot(sampling[m], cal[m]), rel=1e-9)
        spread[n] = cal["precision"]
    assert spread[2_000] > 2 * spread[40_000] > 0
    none = est.fit_cbpe(y[:2_000], s[:2_000], n_bootstrap=0)
    assert est.calibration_sigmas(none, sw, pred) == {m: 0.0 for m in est.CBPE_METRICS}
