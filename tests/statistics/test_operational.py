"""Operational signals: latency percentiles, volume anomalies, cold starts, cost, staleness."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.statistics import operational as op


def test_latency_summary_matches_numpy_and_ignores_missing() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(2.5, 0.4, 10_000)
    with_gaps = np.concatenate([x, [np.nan, np.inf]])
    s = op.latency_summary(with_gaps)
    assert s["n"] == 10_000
    for q, key in [(50, "p50"), (95, "p95"), (99, "p99")]:
        assert s[key] == pytest.approx(np.percentile(x, q))
    assert op.latency_summary([])["p99"] is None


def _hourly(days: int, rng: np.random.Generator) -> np.ndarray:
    hours = np.arange(days * 24)
    return rng.poisson(300 * (0.6 + 0.4 * np.sin((hours % 24 - 6) / 24 * 2 * np.pi) ** 2))


def test_volume_normal_traffic_raises_nothing() -> None:
    rng = np.random.default_rng(1)
    counts = _hourly(14, rng)
    flagged = [
        op.volume_anomaly(int(counts[i]), counts[:i], season=24).anomalous
        for i in range(24 * 7, len(counts))
    ]
    assert sum(flagged) == 0


def test_volume_drop_to_zero_drop_and_spike() -> None:
    rng = np.random.default_rng(2)
    history = _hourly(10, rng)
    expected = history[-24]
    assert op.volume_anomaly(0, history, season=24).kind == "drop_to_zero"
    assert op.volume_anomaly(int(expected * 0.2), history, season=24).kind == "drop"
    spike = op.volume_anomaly(int(expected * 5), history, season=24)
    assert spike.kind == "spike" and spike.ratio is not None and spike.ratio > 4
    # the trailing windows serve when there is not enough seasonal history
    assert op.volume_anomaly(2000, history[:30], season=24).kind == "spike"
    assert op.volume_anomaly(5, [3, 4], season=24).kind == "insufficient_data"
    # a model that never gets traffic at night is not "down" at night
    assert op.volume_anomaly(0, [0, 0, 1, 0, 0, 0, 0]).kind == "normal"


def test_volume_large_n_wobble_is_not_an_anomaly() -> None:
    history = [1_000_000, 1_010_000, 995_000, 1_004_000, 998_000, 1_002_000]
    check = op.volume_anomaly(1_060_000, history)
    assert check.z is not None and check.z > 4  # statistically significant ...
    assert check.kind == "normal"  # ... and operationally dull


def test_cold_start_after_deploy_and_after_idle() -> None:
    ts = np.array([0, 30, 119, 121, 500, 2000, 2050, 2200, 2300.0])
    cold = op.cold_start_mask(ts, 0.0, cold_seconds=120, idle_seconds=900)
    assert cold.tolist() == [True, True, True, False, False, True, True, False, False]
    shuffled = np.array([8, 0, 5, 3, 1, 7, 2, 6, 4])
    again = op.cold_start_mask(ts[shuffled], 0.0, cold_seconds=120, idle_seconds=900)
    assert again.tolist() == cold[shuffled].tolist()
    # per-row version starts: a second version deployed at t=2000
    starts = np.where(ts >= 2000, 2000.0, 0.0)
    assert op.cold_start_mask(ts, starts, idle_seconds=10_000)[5:7].all()


def test_cold_start_summary_shows_the_gap() -> None:
    rng = np.random.default_rng(3)
    lat = rng.lognormal(np.log(12), 0.3, 2_000)
    cold = np.zeros(2_000, dtype=bool)
    cold[:40] = True
    lat[:40] *= 6
    s = op.cold_start_summary(lat, cold)
    assert s["n_cold"] == 40 and s["n_warm"] == 1_960
    assert s["cold_to_warm_p50"] == pytest.approx(6, rel=0.25)
    assert op.cold_start_summary(lat, np.zeros(2_000, bool))["cold_to_warm_p50"] is None


def test_window_cost() -> None:
    c = op.window_cost(
        12_000, 150.0, 3600, cost_per_1k_predictions=0.5, cost_per_compute_second=0.01
    )
    assert c["cost_by_predictions"] == pytest.approx(6.0)
    assert c["cost_by_compute"] == pytest.approx(1.5)
    assert c["cost"] == pytest.approx(7.5)
    assert c["cost_per_day"] == pytest.approx(7.5 * 24)
    assert c["cost_per_1k"] == pytest.approx(0.625)
    assert op.window_cost(100, 1.0, 3600)["cost"] is None


def test_staleness_in_days() -> None:
    day = 86_400.0
    s = op.staleness(
        100 * day,
        version_created_seconds=70 * day,
        baseline_created_seconds=60 * day,
        previous_version_created_seconds=40 * day,
    )
    assert s == {"version_age_days": 30, "baseline_age_days": 40, "retrain_interval_days": 30}
    assert op.staleness(1.0, version_created_seconds=None, baseline_created_seconds=None) == {
        "version_age_days": None,
        "baseline_age_days": None,
        "retrain_interval_days": None,
    }


def test_drift_trend_matches_scipy_and_projects_the_threshold() -> None:
    rng = np.random.default_rng(4)
    days = np.arange(20.0)
    psi = 0.01 + 0.005 * days + rng.normal(0, 0.002, 20)
    psi[7] = 0.5  # one wild window does not bend a Theil-Sen slope
    tr = op.drift_trend(days * 86_400, psi, threshold=0.2)
    ref = stats.theilslopes(psi, days)
    assert tr.slope_per_day == pytest.approx(ref.slope)
    assert tr.slope_per_day == pytest.approx(0.005, rel=0.2)
    assert tr.low is not None and tr.low > 0
    assert tr.days_to_threshold == pytest.approx((0.2 - tr.current) / tr.slope_per_day)
    assert 15 < tr.days_to_threshold < 30  # type: ignore[operator]
    flat = op.drift_trend(days * 86_400, rng.normal(0.05, 0.002, 20), threshold=0.2)
    assert flat.days_to_threshold is None
    assert op.drift_trend([0, 1], [0.1, 0.2]).status == op.INSUFFICIENT_DATA
