"""Direct loss estimation: a regression scenario whose error grows where the shift goes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.statistics import dle
from monitor.statistics.estimation import INSUFFICIENT_DATA, OK
from monitor.statistics.performance import regression_metrics


def _draw(rng: np.random.Generator, n: int, shift: float):  # type: ignore[no-untyped-def]
    x1 = rng.normal(1.5 * shift, 1, n)
    x2 = rng.uniform(0, 1, n)
    x2[rng.random(n) < 0.05] = np.nan
    c = rng.choice(["a", "b", "c"], n, p=[0.6 - 0.3 * shift, 0.3, 0.1 + 0.3 * shift])
    noise_sd = 0.5 + np.abs(x1) + np.where(c == "c", 1.5, 0.0)
    f = 2 * x1 + np.sin(3 * np.nan_to_num(x2))
    y = f + rng.normal(0, 1, n) * noise_sd
    return {"x1": x1, "x2": x2}, {"c": c}, f, y


@pytest.fixture(scope="module")
def model() -> dle.LossModel:
    num, cat, f, y = _draw(np.random.default_rng(0), 40_000, 0.0)
    return dle.fit_dle(num, cat, f, y)


def test_dle_tracks_mae_under_covariate_shift(model: dle.LossModel) -> None:
    rng = np.random.default_rng(1)
    estimates, realised = [], []
    for shift in (0.0, 0.5, 1.0):
        num, cat, f, y = _draw(rng, 5_000, shift)
        est = dle.estimate_dle(model, num, cat, f)
        real = regression_metrics(y, f)
        assert est["mae"].status == OK and est["mae"].value is not None
        assert est["mae"].value == pytest.approx(real["mae"].value, rel=0.05)
        assert est["rmse"].value == pytest.approx(real["rmse"].value, rel=0.12)
        estimates.append(est["mae"].value)
        realised.append(real["mae"].value)
    assert estimates[2] > estimates[0] * 1.5  # it saw the errors grow before any label
    assert realised[2] > realised[0] * 1.5


def test_model_round_trips_and_handles_missing_and_unseen(model: dle.LossModel) -> None:
    again = dle.LossModel.from_dict(json.loads(json.dumps(model.to_dict())))
    num, cat, f, _ = _draw(np.random.default_rng(2), 1_000, 0.2)
    assert dle.estimate_dle(again, num, cat, f) == dle.estimate_dle(model, num, cat, f)
    cat_unseen = {"c": np.array(["zzz"] * 1_000)}
    out = dle.estimate_dle(model, {"x1": num["x1"]}, cat_unseen, f)  # x2 column absent
    assert out["mae"].value is not None and out["mae"].value > 0
    small = dle.estimate_dle(model, num, cat, f[:10] * np.nan)
    assert small["mae"].status == INSUFFICIENT_DATA
    with pytest.raises(ValueError, match="at least"):
        dle.fit_dle({}, {}, [1.0, 2.0], [1.0, 2.0])


def test_rare_binary_and_tied_deciles_fit_and_estimate() -> None:
    # issue 16, item 4: a rare 0/1 float feature crashed fit_dle (IndexError in design) and
    # a feature whose first deciles coincide made the estimate NaN with status "ok"
    rng = np.random.default_rng(3)
    n = 5_000
    flag = (rng.random(n) < 0.03).astype(float)
    tied = np.where(rng.random(n) < 0.25, 0.0, rng.exponential(1.0, n))  # deciles 0, 0, 0.1..
    const = np.full(n, 7.0)
    x = rng.normal(0, 1, n)
    f = 2 * x
    y = f + rng.normal(0, 1, n) * (1 + flag * 3 + tied)
    num = {"flag": flag, "tied": tied, "const": const, "x": x}
    model = dle.fit_dle(num, {}, f, y)
    assert all(np.isfinite(model.coef_abs)) and all(np.isfinite(model.coef_sq))
    out = dle.estimate_dle(model, num, {}, f)
    for m in dle.DLE_METRICS:
        assert out[m].status == OK and out[m].value is not None and np.isfinite(out[m].value)
    real = regression_metrics(y, f)
    assert out["mae"].value == pytest.approx(real["mae"].value, rel=0.05)
    # a window where the flag is common: the loss model saw that flagged rows err more
    num_shift = {**num, "flag": (rng.random(n) < 0.5).astype(float)}
    assert dle.estimate_dle(model, num_shift, {}, f)["mae"].value > out["mae"].value * 1.3


def test_estimate_never_reports_nan_as_ok(model: dle.LossModel) -> None:
    num, cat, f, _ = _draw(np.random.default_rng(4), 500, 0.0)
    broken = dle.LossModel.from_dict(
        {**model.to_dict(), "coef_abs": [np.nan] * len(model.coef_abs)}
    )
    out = dle.estimate_dle(broken, num, cat, f)
    assert out["mae"].status == "error" and out["mae"].value is None
    assert out["rmse"].status == OK


def test_models_fitted_before_the_fix_are_refused() -> None:
    old = {"method": "dle", "numeric_edges": {"x": [0.1, 0.5]}, "categorical_levels": {}}
    with pytest.raises(ValueError, match="register the baseline again"):
        dle.LossModel.from_dict(old)
