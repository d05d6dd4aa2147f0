"""Test data for the Spark path: one pandas frame, logged through the SDK and read by Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from monitor.jobs.baselines import register_baseline
from monitor.storage.partitions import ensure_partitions

HOUR = timedelta(hours=1)


def closed_hours_start(hours: int) -> datetime:
    """Start of ``hours`` whole hours that closed at least an hour ago (the worker computes
    them, whatever its allowed lateness)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - (hours + 1) * HOUR


def baseline(n: int = 4_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.exponential(2, n),
            "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
            "items": rng.integers(0, 5, n).astype(float),
            "prediction": (score >= 0.5).astype(int),
            "proba": score,
            "target": (rng.random(n) < score).astype(int),
        }
    )


def register(engine: sa.Engine, model: str) -> None:
    register_baseline(
        baseline(),
        model=model,
        version="v1",
        prediction="prediction",
        proba="proba",
        target="target",
        engine=engine,
    )


def predictions(
    start: datetime, hours: int, rows_per_hour: int, *, seed: int = 1, prefix: str = "r"
) -> pd.DataFrame:
    """Hourly traffic; hour 1 has x shifted by 1 sd and a new color; some nulls and NaNs."""
    rng = np.random.default_rng(seed)
    n = hours * rows_per_hour
    hour = np.repeat(np.arange(hours), rows_per_hour)
    offsets = rng.integers(0, 3_600_000_000, n)  # microseconds into the hour
    ts = pd.to_datetime(start) + pd.to_timedelta(hour * 3_600_000_000 + offsets, unit="us")
    x = rng.normal(0, 1, n) + np.where(hour == 1, 1.0, 0.0)
    x[rng.random(n) < 0.01] = np.nan
    color = rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]).astype(object)
    color[(hour == 1) & (rng.random(n) < 0.05)] = "purple"
    color[rng.random(n) < 0.01] = None
    score = rng.random(n)
    return pd.DataFrame(
        {
            "id": [f"{prefix}{i}" for i in range(n)],
            "timestamp": ts,
            "prediction": (score >= 0.5).astype(int),
            "proba": score,
            # float4-exact values: predictions.latency_ms is a real
            "latency_ms": np.round(rng.gamma(2.0, 3.0, n) * 8) / 8,
            "region": rng.choice(["eu", "us", "apac"], n, p=[0.5, 0.45, 0.05]),
            "x": x,
            "y": rng.exponential(2, n),
            "color": color,
            "items": rng.integers(0, 6, n).astype(float),
        }
    )


def sdk_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows as ``log_batch`` takes them (segment as a mapping per row)."""
    out = frame.drop(columns=["region"]).copy()
    out["segment"] = [{"region": r} for r in frame["region"]]
    return out


def make_partitions(engine: sa.Engine, start: datetime) -> None:
    with engine.begin() as conn:
        ensure_partitions(conn, first=start.date() - timedelta(days=1), ahead_days=2)


def table(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]
