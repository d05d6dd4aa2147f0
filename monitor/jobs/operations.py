"""Operational rows the window job does not write: cold start, cost, volume anomaly, errors,
staleness and drift trend (volume and latency percentiles are the window job's).

Each needs a little context beyond the window's rows -- the traffic just before the window (was
the model idle? is this version new?), the volume and drift of past windows (from ``results``,
never from raw rows), the model's cost settings and the ages of its version and baseline -- read
here with small indexed queries, then handed to the pure functions of
:mod:`monitor.statistics.operational`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa

from monitor.jobs.labels import LabelledWindow
from monitor.jobs.result_rows import result_row as row
from monitor.statistics import operational as op
from monitor.storage import vocabulary as v

LOOKBACK = timedelta(days=1)
"""How far back the job looks for the previous request (idle gaps, new versions)."""
VOLUME_HISTORY = timedelta(days=28)
TREND_HISTORY = timedelta(days=7)
TREND_THRESHOLD = 0.5  # share of drifted features at which Evidently calls the dataset drifted


@dataclass
class OpsContext:
    """Everything around the window that the operational rows need."""

    window_seconds: int
    previous_ts: float | None  # epoch seconds of the last request before the window
    new_versions: set[int]  # versions with no request in the day before the window
    volume_history: list[float]  # one per past window, oldest first, NaN when unknown
    drift_history: list[tuple[float, float]]  # (epoch seconds, share_drifted)
    cost_per_1k: float | None
    cost_per_second: float | None
    version_created: float | None
    previous_version_created: float | None
    baseline_created: float | None
    errors: int
    cold_seconds: float
    idle_seconds: float


def _epoch(x: datetime | None) -> float | None:
    return None if x is None else x.timestamp()


def load_context(
    conn: sa.Connection,
    model_id: int,
    start: datetime,
    end: datetime,
    versions: set[int],
    dominant_version: int | None,
    baseline_created: datetime | None,
    *,
    cold_seconds: float,
    idle_seconds: float,
) -> OpsContext:
    p = {"m": model_id, "s": start, "e": end, "lb": start - LOOKBACK}
    window_seconds, cost_1k, cost_s = conn.execute(
        sa.text(
            "SELECT window_seconds, cost_per_1k_predictions, cost_per_compute_second"
            " FROM models WHERE id = :m"
        ),
        p,
    ).one()
    previous = conn.execute(
        sa.text(
            "SELECT max(event_ts) FROM predictions WHERE model_id = :m AND event_ts < :s"
            " AND event_ts >= :lb"
        ),
        p,
    ).scalar()
    new_versions = set()
    for version in versions:
        seen = conn.execute(
            sa.text(
                "SELECT 1 FROM predictions WHERE model_id = :m AND version_id = :v"
                " AND event_ts < :s AND event_ts >= :lb LIMIT 1"
            ),
            {**p, "v": version},
        ).first()
        if seen is None:
            new_versions.add(version)
    slots = int(VOLUME_HISTORY.total_seconds() // window_seconds)
    volumes: dict[datetime, float | None] = dict(
        conn.execute(
            sa.text(
                "SELECT window_start, value FROM results WHERE model_id = :m"
                " AND family = :f AND metric = :metric AND segment = '' AND column_name = ''"
                " AND window_start < :s AND window_start >= :lo"
            ),
            {
                **p,
                "f": v.OPERATIONAL,
                "metric": v.VOLUME,
                "lo": start - timedelta(seconds=slots * window_seconds),
            },
        ).all()
    )
    starts = (start - timedelta(seconds=(slots - i) * window_seconds) for i in range(slots))
    history = [float(x) if (x := volumes.get(k)) is not None else float("nan") for k in starts]
    drift = [
        (ts.timestamp(), float(val))
        for ts, val in conn.execute(
            sa.text(
                "SELECT window_start, value FROM results WHERE model_id = :m AND family = :f"
                " AND metric = 'share_drifted' AND segment = '' AND window_start < :e"
                " AND window_start >= :lo AND value IS NOT NULL ORDER BY window_start"
            ),
            {**p, "f": v.DATASET_DRIFT, "lo": end - TREND_HISTORY},
        ).all()
    ]
    version_created = previous_version = None
    if dominant_version is not None:
        version_created, previous_version = conn.execute(
            sa.text(
                "SELECT v.created_at, (SELECT max(o.created_at) FROM model_versions o"
                " WHERE o.model_id = v.model_id AND o.created_at < v.created_at)"
                " FROM model_versions v WHERE v.id = :v"
            ),
            {"v": dominant_version},
        ).one()
    errors = conn.execute(
        sa.text(
            "SELECT count(*) FROM dead_letters WHERE model_id = :m AND received_at >= :s"
            " AND received_at < :e"
        ),
        p,
    ).scalar_one()
    return OpsContext(
        window_seconds=int(window_seconds),
        previous_ts=_epoch(previous),
        new_versions=new_versions,
        volume_history=history,
        drift_history=drift,
        cost_per_1k=cost_1k,
        cost_per_second=cost_s,
        version_created=_epoch(version_created),
        previous_version_created=_epoch(previous_version),
        baseline_created=_epoch(baseline_created),
        errors=int(errors),
        cold_seconds=cold_seconds,
        idle_seconds=idle_seconds,
    )


def _cold_mask(w: LabelledWindow, ctx: OpsContext) -> np.ndarray:
    """Cold rows: a new version's first requests, or the first after an idle gap."""
    ts = w.event_ts
    starts = np.full(w.n, -np.inf)
    for version in ctx.new_versions:
        rows = w.versions == version
        if rows.any():
            starts[rows] = ts[rows].min()
    # the request before the window decides whether the window opens after an idle gap
    before = ctx.previous_ts if ctx.previous_ts is not None else ts.min() - ctx.idle_seconds - 1
    mask = op.cold_start_mask(
        np.concatenate([[before], ts]),
        np.concatenate([[-np.inf], starts]),
        cold_seconds=ctx.cold_seconds,
        idle_seconds=ctx.idle_seconds,
    )
    return mask[1:]


def operational_rows(w: LabelledWindow, ctx: OpsContext, end: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    season = 86_400 // ctx.window_seconds if ctx.window_seconds < 86_400 else None
    check = op.volume_anomaly(w.n, ctx.volume_history, season=season)
    out.append(
        row(
            v.OPERATIONAL,
            v.VOLUME_ANOMALY,
            check.z,
            drifted=check.anomalous if check.kind != op.INSUFFICIENT_DATA else None,
            status=v.INSUFFICIENT_DATA if check.kind == op.INSUFFICIENT_DATA else v.OK,
            n_current=w.n,
            ci_low=check.low,
            ci_high=check.high,
            details=check.to_dict(),
        )
    )
    out.append(row(v.OPERATIONAL, v.ERRORS, float(ctx.errors), n_current=w.n))
    if w.n and np.isfinite(w.latency).any():
        cold = _cold_mask(w, ctx)
        s = op.cold_start_summary(w.latency, cold)
        out.append(row(v.OPERATIONAL, v.COLD_REQUESTS, float(s["n_cold"]), n_current=w.n))
        if s["n_cold"]:
            for metric, key in (
                (v.LATENCY_COLD_P50, "cold_p50"),
                (v.LATENCY_COLD_P95, "cold_p95"),
                (v.LATENCY_WARM_P50, "warm_p50"),
                (v.COLD_START_RATIO, "cold_to_warm_p50"),
            ):
                out.append(
                    row(v.OPERATIONAL, metric, s[key], n_current=int(s["n_cold"]), details=s)
                )
    if ctx.cost_per_1k is not None or ctx.cost_per_second is not None:
        compute = float(np.nansum(w.latency)) / 1000.0 if w.n else 0.0
        c = op.window_cost(
            w.n,
            compute,
            ctx.window_seconds,
            cost_per_1k_predictions=ctx.cost_per_1k,
            cost_per_compute_second=ctx.cost_per_second,
        )
        out.append(row(v.OPERATIONAL, v.COST, c["cost"], n_current=w.n, details=c))
        out.append(row(v.OPERATIONAL, v.COST_PER_DAY, c["cost_per_day"], n_current=w.n, details=c))
    ages = op.staleness(
        end.timestamp(),
        version_created_seconds=ctx.version_created,
        baseline_created_seconds=ctx.baseline_created,
        previous_version_created_seconds=ctx.previous_version_created,
    )
    for metric, key in (
        (v.VERSION_AGE_DAYS, "version_age_days"),
        (v.BASELINE_AGE_DAYS, "baseline_age_days"),
        (v.RETRAIN_INTERVAL_DAYS, "retrain_interval_days"),
    ):
        value = ages[key]
        if value is not None:
            # a version or baseline registered after the window (backfill): age 0, not negative
            out.append(row(v.OPERATIONAL, metric, max(0.0, value)))
    if ctx.drift_history:
        times, values = zip(*ctx.drift_history, strict=True)
        trend = op.drift_trend(times, values, threshold=TREND_THRESHOLD)
        out.append(
            row(
                v.OPERATIONAL,
                v.DRIFT_TREND,
                trend.slope_per_day,
                ci_low=trend.low,
                ci_high=trend.high,
                threshold=TREND_THRESHOLD,
                status=trend.status,
                n_current=trend.n,
                details={"series": "share_drifted", "unit": "per day", **trend.to_dict()},
            )
        )
    return out
