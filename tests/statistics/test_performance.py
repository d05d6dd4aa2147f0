"""Realised performance metrics against scikit-learn on the same data, and their intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from monitor.statistics import performance as perf


def _binary(n: int = 2_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 3, n)
    y = (rng.random(n) < score**0.8).astype(int)
    return y, (score >= 0.4).astype(int), score


def test_binary_metrics_equal_sklearn() -> None:
    y, pred, score = _binary()
    out = perf.binary_metrics(y, pred, score)
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert out["precision"].value == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert out["recall"].value == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert out["f1"].value == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert out["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    assert out["log_loss"].value == pytest.approx(skm.log_loss(y, score), abs=1e-12)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="uniform")
    counts = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], score), minlength=10)
    ece = float(np.sum(counts[counts > 0] / len(y) * np.abs(prob_true - prob_pred)))
    assert out["calibration_error"].value == pytest.approx(ece, abs=1e-12)
    for r in out.values():
        assert r.status == perf.OK and r.n == len(y)
        assert r.ci_low is not None and r.ci_high is not None
        assert r.ci_low <= r.value <= r.ci_high, r


def test_prediction_derived_from_score_and_threshold() -> None:
    y, _, score = _binary()
    out = perf.binary_metrics(y, y_score=score, threshold=0.3)
    assert out["recall"].value == pytest.approx(skm.recall_score(y, score >= 0.3))
    without_score = perf.binary_metrics(y, (score >= 0.3).astype(int))
    assert set(without_score) == {"accuracy", "precision", "recall", "f1"}


def test_too_few_labels_says_so_instead_of_a_number() -> None:
    y, pred, score = _binary(n=12)
    out = perf.binary_metrics(y, pred, score, min_labels=30)
    assert all(r.status == perf.INSUFFICIENT_DATA and r.value is None for r in out.values())
    assert "12 labelled rows" in (out["accuracy"].message or "")


def test_undefined_metrics_are_flagged_not_zero() -> None:
    y = np.zeros(100, dtype=int)
    out = perf.binary_metrics(y, np.zeros(100, dtype=int), np.full(100, 0.2))
    assert out["accuracy"].value == 1.0
    assert out["precision"].status == perf.INSUFFICIENT_DATA
    assert out["recall"].status == perf.INSUFFICIENT_DATA
    assert out["roc_auc"].status == perf.INSUFFICIENT_DATA


def test_bad_labels_raise_clear_error() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        perf.binary_metrics([0, 2, 1], [0, 1, 1], min_labels=1)


def _coverage(metric: str, trials: int = 300) -> float:
    """Share of intervals covering the population value (simulated, population known)."""
    rng = np.random.default_rng(11)
    n = 400
    big_score = rng.beta(2, 3, 400_000)
    big_y = (rng.random(len(big_score)) < big_score).astype(int)
    truth = perf.binary_metrics(big_y, y_score=big_score, options=perf.Options(n_bootstrap=2))
    hits = 0
    for t in range(trials):
        idx = rng.integers(0, len(big_y), n)
        r = perf.binary_metrics(
            big_y[idx], y_score=big_score[idx], options=perf.Options(n_bootstrap=200, seed=t)
        )[metric]
        assert r.ci_low is not None and r.ci_high is not None
        hits += r.ci_low <= truth[metric].value <= r.ci_high  # type: ignore[operator]
    return hits / trials


@pytest.mark.parametrize("metric", ["accuracy", "precision", "f1", "roc_auc", "log_loss"])
def test_intervals_cover_the_population_value(metric: str) -> None:
    cover = _coverage(metric, trials=200)
    assert 0.90 <= cover <= 0.99, cover


def test_delong_variance_matches_bootstrap() -> None:
    y, _, score = _binary(n=1_500, seed=3)
    auc, var = perf.delong_auc(y, score)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(400):
        idx = rng.integers(0, len(y), len(y))
        boots.append(skm.roc_auc_score(y[idx], score[idx]))
    assert math.sqrt(var) == pytest.approx(np.std(boots), rel=0.15)
    assert auc == pytest.approx(skm.roc_auc_score(y, score))


def test_multiclass_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(5)
    classes = ["a", "b", "c"]
    n = 1_500
    logits = rng.normal(size=(n, 3))
    P = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([classes[rng.choice(3, p=p**1.3 / (p**1.3).sum())] for p in P])
    pred = np.array(classes)[P.argmax(axis=1)]
    out = perf.multiclass_metrics(y, pred, P, classes=classes)
    assert out["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    for name, fn in [
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ]:
        assert out[name].value == pytest.approx(fn(y, pred, average="macro", labels=classes))
    assert out["roc_auc"].value == pytest.approx(
        skm.roc_auc_score(y, P, multi_class="ovr", average="macro", labels=classes)
    )
    assert out["log_loss"].value == pytest.approx(skm.log_loss(y, P, labels=classes))
    for r in out.values():
        assert r.ci_low <= r.value <= r.ci_high  # type: ignore[operator]


def test_multiclass_unknown_predicted_class_counts_as_a_miss() -> None:
    y = ["a"] * 20 + ["b"] * 20
    pred = ["a"] * 10 + ["zzz"] * 10 + ["b"] * 20
    out = perf.multiclass_metrics(y, pred, classes=["a", "b"], min_labels=1)
    assert out["accuracy"].value == pytest.approx(0.75)
    assert out["recall"].value == pytest.approx(
        skm.recall_score(y, pred, average="macro", labels=["a", "b"])
    )


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.gamma(3, 10, 3_000) + 1
    p = y + rng.normal(0, 4, len(y))
    out = perf.regression_metrics(y, p)
    assert out["mae"].value == pytest.approx(skm.mean_absolute_error(y, p))
    assert out["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, p))
    assert out["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, p))
    assert out["r2"].value == pytest.approx(skm.r2_score(y, p))
    for r in out.values():
        assert r.ci_low <= r.value <= r.ci_high  # type: ignore[operator]
    assert perf.regression_metrics(y[:5], p[:5])["mae"].status == perf.INSUFFICIENT_DATA


def test_bootstrap_is_seeded_and_bounded() -> None:
    y, pred, score = _binary(n=50_000)
    a = perf.binary_metrics(y, pred, score, options=perf.Options(seed=4))
    b = perf.binary_metrics(y, pred, score, options=perf.Options(seed=4))
    assert a["calibration_error"] == b["calibration_error"]
    assert a["f1"] == b["f1"]


def test_label_coverage_and_delay() -> None:
    cov = perf.label_coverage(200, 50)
    assert cov.value == 0.25 and cov.ci_low < 0.25 < cov.ci_high  # type: ignore[operator]
    assert perf.label_coverage(0, 0).status == perf.INSUFFICIENT_DATA
    d = perf.label_delay([3600, 7200, np.nan, 10_800])
    assert d == {
        "n": 3,
        "mean": 7200.0,
        "p50": 7200.0,
        "p90": pytest.approx(10_080.0),
        "max": 10_800.0,
    }
    assert perf.label_delay([])["p50"] is None


def test_compare_to_baseline_needs_the_whole_interval_on_the_bad_side() -> None:
    r = perf.MetricResult("accuracy", 0.80, 0.78, 0.82, 1000)
    assert perf.compare_to_baseline(r, 0.85)["worse"] is True
    assert perf.compare_to_baseline(r, 0.81)["worse"] is False
    loss = perf.MetricResult("mae", 3.0, 2.5, 3.5, 1000)
    assert perf.compare_to_baseline(loss, 2.0)["worse"] is True
    assert perf.compare_to_baseline(loss, 2.0)["delta"] == pytest.approx(1.0)
