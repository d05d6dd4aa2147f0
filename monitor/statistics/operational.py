"""Operational signals from what the SDK logs anyway: latency, volume, cost, cold starts, age.

These answer the training-inference-gap questions that drift does not: is the model slow when it
starts (cold start) or after idling, is traffic gone or spiking, what does a window cost, and how
old are the model and its baseline -- and how fast is drift growing since.

All functions are pure; the window job feeds them arrays and writes what they return.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
SECONDS_PER_DAY = 86_400.0

# --- latency --------------------------------------------------------------------------------


def latency_summary(latency_ms: Any) -> dict[str, float | int | None]:
    """Count, mean, p50, p95, p99 and max of latencies (missing and non-finite values ignored).

    Percentiles use linear interpolation (numpy's default, as Prometheus' summaries and
    pandas do), so they match ``np.percentile`` on the same rows.
    """
    x = np.asarray(latency_ms, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"n": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {
        "n": len(x),
        "mean": float(x.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(x.max()),
    }


# --- volume ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeCheck:
    """Verdict on a window's prediction count against comparable past windows."""

    count: int
    expected: float | None
    low: float | None
    high: float | None
    kind: str  # "normal" | "drop_to_zero" | "drop" | "spike" | "insufficient_data"
    z: float | None
    ratio: float | None
    n_history: int

    @property
    def anomalous(self) -> bool:
        return self.kind in {"drop_to_zero", "drop", "spike"}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["anomalous"] = self.anomalous
        return d


def volume_anomaly(
    count: int,
    history: Any,
    *,
    season: int | None = None,
    min_history: int = 6,
    z_threshold: float = 4.0,
    min_ratio: float = 2.0,
    min_expected_for_zero: float = 5.0,
) -> VolumeCheck:
    """Is ``count`` a drop to zero, a drop or a spike compared with past windows?

    ``history`` lists past window counts, oldest first, one per window (NaN for a window not
    known). With ``season`` (e.g. 24 for hourly windows with a daily cycle) only the windows at
    the same phase are compared (``history[-24]``, ``history[-48]``...) when at least
    ``min_history`` of them are known; else all known windows of the history.

    The expected count is the median of the comparison windows and the spread the larger of the
    Poisson standard deviation and the scaled MAD, so a robust z-score needs both a large
    deviation *and* (by ``min_ratio``) a practically large one: at a million requests an hour a
    3% wobble is statistically significant and operationally dull. A window with no predictions
    when at least ``min_expected_for_zero`` were expected is a drop to zero, the outage signal.
    """
    h = np.asarray(history, dtype=float)
    comp = h[np.isfinite(h)]
    if season:
        # same phase of the cycle, picked before dropping gaps so positions stay aligned
        same_phase = h[::-1][season - 1 :: season][: min_history * 4]
        same_phase = same_phase[np.isfinite(same_phase)]
        if len(same_phase) >= min_history:
            comp = same_phase
    if len(comp) < min_history:
        return VolumeCheck(count, None, None, None, INSUFFICIENT_DATA, None, None, len(comp))
    expected = float(np.median(comp))
    mad = float(stats.median_abs_deviation(comp, scale="normal"))
    spread = max(math.sqrt(max(expected, 1.0)), mad)
    z = (count - expected) / spread
    low = max(0.0, expected - z_threshold * spread)
    high = expected + z_threshold * spread
    ratio = count / expected if expected > 0 else (math.inf if count > 0 else 1.0)
    if count == 0 and expected >= min_expected_for_zero:
        kind = "drop_to_zero"
    elif z < -z_threshold and ratio <= 1 / min_ratio:
        kind = "drop"
    elif z > z_threshold and ratio >= min_ratio:
        kind = "spike"
    else:
        kind = "normal"
    finite_ratio = ratio if math.isfinite(ratio) else None
    return VolumeCheck(count, expected, low, high, kind, z, finite_ratio, len(comp))


# --- cold start -----------------------------------------------------------------------------


def cold_start_mask(
    ts_seconds: Any,
    version_start_seconds: Any,
    *,
    cold_seconds: float = 120.0,
    idle_seconds: float = 900.0,
) -> np.ndarray:
    """Which requests were served cold.

    A request is cold if it came within ``cold_seconds`` of its model version's start, or within
    ``cold_seconds`` of the end of an idle gap longer than ``idle_seconds`` (instances scaled to
    zero, caches evicted). Times are seconds (e.g. epoch); ``version_start_seconds`` is one
    value per row (the start of that row's version) or a scalar.
    """
    t = np.asarray(ts_seconds, dtype=float)
    start = np.broadcast_to(np.asarray(version_start_seconds, dtype=float), t.shape)
    order = np.argsort(t, kind="mergesort")
    ts = t[order]
    cold = (ts - start[order]) < cold_seconds
    if len(ts) > 1:
        gap = np.diff(ts) > idle_seconds
        wake = np.concatenate([[False], gap])
        # time since the latest wake-up (or -inf if none yet)
        wake_time = np.where(wake, ts, -np.inf)
        last_wake = np.maximum.accumulate(wake_time)
        cold |= (ts - last_wake) < cold_seconds
    out = np.empty(len(t), dtype=bool)
    out[order] = cold
    return out


def cold_start_summary(latency_ms: Any, cold: Any) -> dict[str, Any]:
    """Cold versus warm latency: p50/p95 of each and the cold/warm p50 ratio."""
    x = np.asarray(latency_ms, dtype=float)
    c = np.asarray(cold, dtype=bool)
    cold_s, warm_s = latency_summary(x[c]), latency_summary(x[~c])
    ratio = None
    if cold_s["p50"] is not None and warm_s["p50"]:
        ratio = float(cold_s["p50"]) / float(warm_s["p50"])
    return {
        "n_cold": cold_s["n"],
        "n_warm": warm_s["n"],
        "cold_p50": cold_s["p50"],
        "cold_p95": cold_s["p95"],
        "warm_p50": warm_s["p50"],
        "warm_p95": warm_s["p95"],
        "cold_to_warm_p50": ratio,
    }


# --- cost -----------------------------------------------------------------------------------


def window_cost(
    n_predictions: int,
    compute_seconds: float | None,
    window_seconds: float,
    *,
    cost_per_1k_predictions: float | None = None,
    cost_per_compute_second: float | None = None,
) -> dict[str, float | None]:
    """Cost of a window and its daily rate.

    Per-prediction pricing (a managed endpoint) and per-compute-second pricing (your own
    instances; the SDK's ``latency_ms`` summed is the compute time) may both apply; their sum is
    the window's cost. ``per_day`` scales the window to 24 hours at the same rate.
    """
    by_count = None
    by_compute = None
    if cost_per_1k_predictions is not None:
        by_count = n_predictions / 1000.0 * cost_per_1k_predictions
    if cost_per_compute_second is not None and compute_seconds is not None:
        by_compute = compute_seconds * cost_per_compute_second
    parts = [v for v in (by_count, by_compute) if v is not None]
    total = float(sum(parts)) if parts else None
    per_day = total * SECONDS_PER_DAY / window_seconds if total is not None else None
    per_1k = total / n_predictions * 1000 if total is not None and n_predictions else None
    return {
        "cost": total,
        "cost_by_predictions": by_count,
        "cost_by_compute": by_compute,
        "cost_per_day": per_day,
        "cost_per_1k": per_1k,
        "compute_seconds": compute_seconds,
    }


# --- staleness and drift trend ----------------------------------------------------------------


def staleness(
    now_seconds: float,
    *,
    version_created_seconds: float | None,
    baseline_created_seconds: float | None,
    previous_version_created_seconds: float | None = None,
) -> dict[str, float | None]:
    """Ages in days: the serving version, its baseline, and the interval since the last retrain.

    ``retrain_interval_days`` is the time between the previous version and the current one,
    i.e. how often the team has been retraining; compare ``version_age_days`` with it.
    """

    def days(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else (a - b) / SECONDS_PER_DAY

    return {
        "version_age_days": days(now_seconds, version_created_seconds),
        "baseline_age_days": days(now_seconds, baseline_created_seconds),
        "retrain_interval_days": days(version_created_seconds, previous_version_created_seconds),
    }


@dataclass(frozen=True)
class Trend:
    """How fast a drift (or loss) series is moving: Theil-Sen slope per day with its interval."""

    slope_per_day: float | None
    low: float | None
    high: float | None
    n: int
    current: float | None
    days_to_threshold: float | None
    status: str = OK

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drift_trend(
    times_seconds: Any,
    values: Any,
    *,
    threshold: float | None = None,
    min_points: int = 6,
    confidence: float = 0.95,
) -> Trend:
    """Theil-Sen slope of a drift statistic over time, robust to single noisy windows.

    With ``threshold`` and a rising slope whose interval excludes zero, ``days_to_threshold``
    projects when the series (from its latest fitted value) reaches the threshold: "the gap is
    opening at 0.02 PSI a day; the alert level is 9 days away".
    """
    t = np.asarray(times_seconds, dtype=float) / SECONDS_PER_DAY
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(t) & np.isfinite(v)
    t, v = t[ok], v[ok]
    if len(t) < min_points or np.ptp(t) == 0:
        return Trend(None, None, None, len(t), None, None, INSUFFICIENT_DATA)
    res = stats.theilslopes(v, t, alpha=confidence)
    slope, intercept = float(res.slope), float(res.intercept)
    current = intercept + slope * float(t.max())
    eta = None
    if threshold is not None and res.low_slope > 0 and current < threshold:
        eta = (threshold - current) / slope
    elif threshold is not None and current >= threshold:
        eta = 0.0
    return Trend(slope, float(res.low_slope), float(res.high_slope), len(t), current, eta)
