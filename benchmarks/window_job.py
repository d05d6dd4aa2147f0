"""Window job speed: one 1M-row window profiled and judged, and 30-day drift from profiles.

1. A window of 1M rows x 20 features (14 numeric, 6 categorical) is inserted into a fresh
   database; the script times a plain ``SELECT count(*)`` of the window (the floor: Postgres
   must at least visit the rows) and then the whole window job (claim, read the rows once,
   profile all traffic and 4 segments, drift, quality, store), and prints seconds and rows/s.
2. Drift over 30 days of hourly windows (720 windows) from stored profiles, at 1k and 10k
   rows per window: the time must not grow with the rows, because only profiles are read.

    python benchmarks/window_job.py                 # 1M rows
    python benchmarks/window_job.py --rows 200000   # quicker
Postgres: MONITOR_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres);
the script creates and drops its own database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.jobs.baselines import register_baseline  # noqa: E402
from monitor.jobs.ranges import drift_over_range  # noqa: E402
from monitor.jobs.reader import read_window  # noqa: E402
from monitor.jobs.steps import create_windows, process_one  # noqa: E402
from monitor.jobs.tick import make_context  # noqa: E402
from monitor.sdk.postgres.writer import PostgresWriter  # noqa: E402
from monitor.sdk.records import PredictionRecord  # noqa: E402
from monitor.settings import Settings  # noqa: E402
from monitor.statistics.profiles import CategoricalProfile, profile_numeric  # noqa: E402
from monitor.storage import migrate  # noqa: E402
from monitor.storage.engine import libpq_url  # noqa: E402
from monitor.storage.partitions import ensure_partitions  # noqa: E402

N_NUM, N_CAT = 14, 6
CATS = [f"level_{i}" for i in range(8)]


def baseline(n: int, rng: np.random.Generator) -> pd.DataFrame:
    cols: dict[str, object] = {f"num_{i}": rng.normal(i, 1 + i / 10, n) for i in range(N_NUM)}
    for j in range(N_CAT):
        cols[f"cat_{j}"] = rng.choice(CATS, n)
    cols["score"] = rng.random(n)
    return pd.DataFrame(cols)


def insert_window(
    conn: psycopg.Connection, model_id: int, version_id: int, start: datetime, rows: int
) -> None:
    """Rows generated inside Postgres (the writer's Python path is the SDK's benchmark)."""
    nums = ", ".join(
        f"{i} + (1 + {i} / 10.0) * (random() + random() + random() - 1.5) * 2" for i in range(N_NUM)
    )
    cats = ", ".join("'level_' || floor(random() * 8)::int" for _ in range(N_CAT))
    conn.execute(
        f"""INSERT INTO predictions (model_id, event_ts, record_id, version_id, num, cat,
              prediction_num, latency_ms, segment)
            SELECT %s, %s::timestamptz + (g %% 3600) * interval '1 second', 'b' || g, %s,
                   ARRAY[{nums}], ARRAY[{cats}], random(), 5 + random() * 10,
                   jsonb_build_object('region', 'r' || (g %% 4))
            FROM generate_series(1, %s) AS g""",
        (model_id, start, version_id, rows),
    )


def part_one(engine: sa.Engine, url: str, rows: int) -> None:
    rng = np.random.default_rng(0)
    register_baseline(
        baseline(50_000, rng), model="bench", version="v1", proba="score", engine=engine
    )
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    with engine.begin() as c:
        ensure_partitions(c, first=start.date() - timedelta(days=1), ahead_days=1)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        writer = PostgresWriter(conn)  # registers the version like the SDK would
        writer.write_predictions(
            "bench",
            "v1",
            [
                PredictionRecord(
                    "seed", start, {f"num_{i}": 0.0 for i in range(N_NUM)}, prediction=0.5
                )
            ],
        )
        model_id = writer.model_id("bench")
        version_id = writer.version_id(model_id, "v1")
        t = time.perf_counter()
        insert_window(conn, model_id, version_id, start, rows - 1)
        print(f"inserted {rows:,} rows in {time.perf_counter() - t:.1f} s")
        conn.execute("VACUUM ANALYZE predictions")
        end = start + timedelta(hours=1)
        floors = []
        for _ in range(3):
            t = time.perf_counter()
            conn.execute(
                "SELECT count(*) FROM predictions WHERE model_id = %s AND event_ts >= %s"
                " AND event_ts < %s",
                (model_id, start, end),
            ).fetchone()
            floors.append(time.perf_counter() - t)
    ctx = make_context(engine, Settings(min_segment_rows=200))
    create_windows(ctx)
    with engine.begin() as c:  # only the 1M-row window is due
        c.execute(
            sa.text("UPDATE runs SET status = 'skipped' WHERE window_start <> :s"), {"s": start}
        )
    t = time.perf_counter()
    claim = process_one(ctx)
    job = time.perf_counter() - t
    with engine.connect() as c:
        status, n = c.execute(
            sa.text("SELECT status, rows FROM runs WHERE window_start = :s"), {"s": start}
        ).one()
        n_results = c.execute(sa.text("SELECT count(*) FROM results")).scalar()
        n_profiles = c.execute(sa.text("SELECT count(*) FROM window_profiles")).scalar()
    assert claim is not None and status == "succeeded" and n == rows, (status, n)
    with psycopg.connect(libpq_url(url)) as conn:  # the read alone, for the breakdown
        t = time.perf_counter()
        read_window(conn, model_id, start, start + timedelta(hours=1))
        read = time.perf_counter() - t
    t = time.perf_counter()
    drift_over_range(engine, "bench", start, start + timedelta(hours=1))
    drift_only = time.perf_counter() - t
    floor = min(floors)
    print(f"\nwindow job, {rows:,} rows x {N_NUM + N_CAT} features (+ prediction, 4 segments)")
    print(f"  SELECT count(*) of the window (floor): {floor:8.3f} s  {rows / floor:>12,.0f} rows/s")
    print(
        f"  window job (profiles + drift stored):  {job:8.3f} s  {rows / job:>12,.0f} rows/s"
        f"  ({job / floor:.1f}x the floor)"
    )
    print(f"  of which reading the rows (one COPY):  {read:8.3f} s  {rows / read:>12,.0f} rows/s")
    print(
        f"  drift of one segment from its stored profiles (stats): {drift_only:.3f} s"
        " (the job runs it for all traffic and each of the 4 segments)"
    )
    print(f"  stored: {n_profiles} profiles, {n_results} results")


def stored_profiles(
    engine: sa.Engine,
    model: str,
    per_window: int,
    start: datetime,
    hours: int,
    rng: np.random.Generator,
) -> None:
    """Hourly profiles as the window job stores them (profile_numeric on the baseline edges)."""
    with engine.connect() as c:
        found = c.execute(
            sa.text(
                "SELECT b.model_id, p.column_name, p.profile->'edges' FROM baseline_profiles p"
                " JOIN baselines b ON b.id = p.baseline_id JOIN models m ON m.id = b.model_id"
                " WHERE m.name = :n AND p.kind = 'numeric'"
            ),
            {"n": model},
        ).all()
    model_id = found[0][0]
    edges = {name: e for _, name, e in found}
    rows = []
    for h in range(hours):
        ws = start + timedelta(hours=h)
        for i in range(N_NUM):
            values = rng.normal(i, 1.1 + i / 10, per_window)
            p = profile_numeric(values, edges[f"num_{i}"], seed=h).to_dict()
            sample = p.pop("sample")
            rows.append(
                {
                    "m": model_id,
                    "ws": ws,
                    "we": ws + timedelta(hours=1),
                    "c": f"num_{i}",
                    "k": "numeric",
                    "n": per_window,
                    "p": json.dumps(p),
                    "s": sample,
                }
            )
        for j in range(N_CAT):
            counts = dict(zip(CATS, rng.multinomial(per_window, [1 / 8] * 8).tolist(), strict=True))
            p = CategoricalProfile(per_window, 0, 0, counts).to_dict()
            rows.append(
                {
                    "m": model_id,
                    "ws": ws,
                    "we": ws + timedelta(hours=1),
                    "c": f"cat_{j}",
                    "k": "categorical",
                    "n": per_window,
                    "p": json.dumps(p),
                    "s": None,
                }
            )
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO window_profiles (model_id, window_start, window_end,"
                " column_name, kind, n, profile, sample_num) VALUES (:m, :ws, :we,"
                " :c, :k, :n, CAST(:p AS jsonb), :s)"
            ),
            rows,
        )


def part_two(engine: sa.Engine) -> None:
    rng = np.random.default_rng(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=30)
    print("\ndrift over 30 days of hourly windows (720 windows x 20 columns) from profiles")
    timings = []
    for model, per_window in (("small", 1_000), ("large", 10_000)):
        register_baseline(baseline(20_000, rng), model=model, version="v1", engine=engine)
        stored_profiles(engine, model, per_window, start, 720, rng)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            result, _ = drift_over_range(engine, model, start, end)
            runs.append(time.perf_counter() - t)
        assert result.columns[0].n_current == per_window * 720
        timings.append(min(runs))
        print(f"  {per_window * 720:>12,} rows ({per_window:>6,}/window): {min(runs):6.3f} s")
    print(f"  ratio large/small: {timings[1] / timings[0]:.2f} (10x the rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    admin = os.environ.get(
        "MONITOR_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    admin_engine = sa.create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_engine.url.set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    try:
        migrate.upgrade(engine)
        part_one(engine, url, args.rows)
        part_two(engine)
    finally:
        engine.dispose()
        with admin_engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
