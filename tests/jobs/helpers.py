"""Test data for the jobs: real rows written through the SDK's Postgres writer, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa

from monitor.jobs.tick import STEPS
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import PredictionRecord
from monitor.storage.engine import libpq_url
from monitor.storage.partitions import ensure_partitions

ROOT = Path(__file__).resolve().parents[2]
WINDOW_STEPS = {name: spec for name, spec in STEPS.items() if name != "performance"}
"""The tick without the performance job, for tests that count window computations."""
HOUR = timedelta(hours=1)


def closed_hour(lateness_seconds: int = 300) -> datetime:
    """Start of the window that is still open (windows before it are closed)."""
    now = datetime.now(UTC) - timedelta(seconds=lateness_seconds)
    return now.replace(minute=0, second=0, microsecond=0)


def baseline_frame(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "y": rng.exponential(2, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "score": rng.random(n),
        }
    )


def records(
    start: datetime,
    n: int,
    *,
    seed: int,
    shift: float = 0.0,
    prefix: str = "r",
    span: timedelta = HOUR,
) -> list[PredictionRecord]:
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(0, span.total_seconds() - 1, n)
    xs = rng.normal(shift, 1, n)
    ys = rng.exponential(2, n)
    colors = rng.choice(["red", "green", "blue"], n)
    out = []
    for i in range(n):
        out.append(
            PredictionRecord(
                record_id=f"{prefix}-{seed}-{i}",
                event_ts=start + timedelta(seconds=float(offsets[i])),
                features={"x": float(xs[i]), "y": float(ys[i]), "color": str(colors[i])},
                prediction=float(rng.random()),
                latency_ms=float(rng.uniform(1, 10)),
                segment={"region": "eu" if i % 2 else "us"},
            )
        )
    return out


@contextmanager
def writer(database_url: str) -> Iterator[PostgresWriter]:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        yield PostgresWriter(conn)


def seed_hours(
    engine: sa.Engine,
    database_url: str,
    model: str,
    first: datetime,
    hours: int,
    rows_per_hour: int,
    *,
    version: str = "v1",
) -> None:
    """Write ``rows_per_hour`` rows into each of ``hours`` hourly windows from ``first``."""
    with engine.begin() as conn:
        ensure_partitions(conn, first=first.date() - timedelta(days=1), ahead_days=2)
    with writer(database_url) as w:
        for h in range(hours):
            w.write_predictions(
                model, version, records(first + h * HOUR, rows_per_hour, seed=h, prefix=model)
            )


def worker_env(database_url: str, **settings: Any) -> dict[str, str]:
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        "MONITOR_MULTIVARIATE_METHODS": '["pca_reconstruction"]',
    }
    for key, value in settings.items():
        env[f"MONITOR_{key.upper()}"] = str(value)
    return env


def start_monitor(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "-v", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def runs_by_status(engine: sa.Engine, job: str = "window") -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM runs WHERE job = :j GROUP BY 1"), {"j": job}
            ).all()
        )
