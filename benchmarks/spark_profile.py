"""Spark profiling speed and driver memory: ``monitor.spark.profile_windows`` against the
in-process window job, in the same run.

Rows are generated in Spark (``spark.range``): 20 features (14 numeric, 6 categorical, as in
``benchmarks/window_job.py``), a prediction, 4 segments, 1M rows per hourly window. Printed:

1. the in-process window job on one window of ``--pg-rows`` rows in Postgres (claim, one COPY
   read, profiles for all traffic and 4 segments, drift, quality, store): rows/s;
2. ``profile_windows`` (profiles on the executors, merged, results stored; no performance
   stage, the window job has none either) with 1 and with 2 executor cores (``local[1]`` /
   ``local[2]``, a fresh JVM each) on ``--rows`` rows: rows/s;
3. the driver's peak RSS (the Python process that holds the merged profiles, and the JVM,
   which in local mode also runs the executors' tasks) at ``--rows`` and ``--big`` rows: the
   Python driver must stay flat, because it reads a few windows' profiles at a time.

    flock /work/bench.lock python benchmarks/spark_profile.py                  # 5M and 50M
    flock /work/bench.lock python benchmarks/spark_profile.py --rows 1000000 --big 5000000

Postgres: --dsn (default postgresql://postgres@127.0.0.1:5432/postgres); the script creates
and drops its own database. Needs ``pip install 'monitor[spark]'`` and Java 17.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS_PER_HOUR = 1_000_000
START = datetime(2026, 1, 1, tzinfo=UTC)  # Spark's windows: far from the window job's
SETTINGS = {"min_segment_rows": 200, "multivariate_methods": ["pca_reconstruction"]}


def window_job(url: str, rows: int) -> dict[str, float]:
    """The in-process window job on one window of ``rows`` rows (as benchmarks/window_job.py)."""
    import psycopg
    import sqlalchemy as sa

    from benchmarks.window_job import N_NUM, insert_window
    from monitor.jobs.steps import create_windows, process_one
    from monitor.jobs.tick import make_context
    from monitor.sdk.postgres.writer import PostgresWriter
    from monitor.sdk.records import PredictionRecord
    from monitor.settings import Settings
    from monitor.storage.engine import libpq_url
    from monitor.storage.partitions import ensure_partitions

    engine = sa.create_engine(url)
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    with engine.begin() as c:
        ensure_partitions(c, first=start.date() - timedelta(days=1), ahead_days=1)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        writer = PostgresWriter(conn)
        features = {f"num_{i}": 0.0 for i in range(N_NUM)}
        writer.write_predictions(
            "bench", "v1", [PredictionRecord("seed", start, features, prediction=0.5)]
        )
        model_id = writer.model_id("bench")
        insert_window(conn, model_id, writer.version_id(model_id, "v1"), start, rows - 1)
        conn.execute("VACUUM ANALYZE predictions")
    ctx = make_context(engine, Settings(**SETTINGS))
    create_windows(ctx)
    with engine.begin() as c:
        c.execute(
            sa.text("UPDATE runs SET status = 'skipped' WHERE window_start <> :s"), {"s": start}
        )
    t = time.perf_counter()
    claim = process_one(ctx)
    seconds = time.perf_counter() - t
    assert claim is not None
    engine.dispose()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def child(url: str, master: str, rows: int) -> None:
    """One Spark run in a fresh process (a fresh JVM): prints a JSON line of figures."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    import sqlalchemy as sa
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from benchmarks.window_job import N_CAT, N_NUM
    from monitor.settings import Settings
    from monitor.spark import profile_windows

    spark = (
        SparkSession.builder.master(master)
        .appName("monitor spark benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "50000")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    seconds_per_row = 3600.0 / ROWS_PER_HOUR
    df = spark.range(0, rows, numPartitions=max(2, rows // 1_000_000)).select(
        F.timestamp_seconds(F.lit(START.timestamp()) + F.col("id") * seconds_per_row).alias(
            "timestamp"
        ),
        F.rand(999).alias("prediction"),
        F.concat(F.lit("r"), (F.col("id") % 4).cast("string")).alias("region"),
        *[
            (F.lit(float(i)) + F.lit(1 + i / 10) * F.randn(i)).alias(f"num_{i}")
            for i in range(N_NUM)
        ],
        *[
            F.concat(F.lit("level_"), F.floor(F.rand(100 + j) * 8).cast("string")).alias(f"cat_{j}")
            for j in range(N_CAT)
        ],
    )
    engine = sa.create_engine(url)
    t = time.perf_counter()
    report = profile_windows(
        df,
        model="bench",
        version="v1",
        segments=["region"],
        engine=engine,
        settings=Settings(**SETTINGS),
        performance=False,
    )
    seconds = time.perf_counter() - t
    jvm = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
    jvm_peak = _vm_hwm_kb(jvm)
    spark.stop()
    engine.dispose()
    print(
        json.dumps(
            {
                "master": master,
                "rows": report.rows,
                "windows": len(report.windows),
                "seconds": seconds,
                "rows_per_s": report.rows / seconds,
                "driver_python_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "driver_jvm_peak_mb": jvm_peak / 1024,
            }
        )
    )


def _vm_hwm_kb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return float("nan")


def run_child(url: str, master: str, rows: int) -> dict[str, float]:
    """One Spark run in a fresh process, with the machine's busy cores over it: on a small
    machine one task already keeps about two busy (the JVM generating and serialising rows,
    the Python worker profiling them), which caps what a second executor core can add."""
    import psutil

    before, started = psutil.cpu_times(), time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--url",
            url,
            "--master",
            master,
            "--rows",
            str(rows),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    after, wall = psutil.cpu_times(), time.perf_counter() - started
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"spark run failed ({master}, {rows}): {out.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(lines[-1])
    busy = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "nice"))
    figures["cores_busy"] = busy / wall
    figures["cores"] = float(psutil.cpu_count() or 0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--big", type=int, default=50_000_000)
    parser.add_argument("--pg-rows", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--master", default="local[2]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.master, args.rows)
        return

    import numpy as np
    import psycopg
    import sqlalchemy as sa

    from benchmarks._db import bench_database
    from benchmarks.window_job import baseline
    from monitor.jobs.baselines import register_baseline

    with bench_database(args.dsn) as dsn:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        url = (
            f"postgresql+psycopg://{params.get('user') or 'postgres'}@"
            f"{params.get('host') or '127.0.0.1'}:{params.get('port') or 5432}/{params['dbname']}"
        )
        engine = sa.create_engine(url)
        register_baseline(
            baseline(50_000, np.random.default_rng(0)),
            model="bench",
            version="v1",
            proba="score",
            engine=engine,
        )
        engine.dispose()
        job = window_job(url, args.pg_rows)
        print(
            f"in-process window job, {job['rows']:,.0f} rows x 20 features, 4 segments: "
            f"{job['seconds']:.1f} s, {job['rows_per_s']:,.0f} rows/s"
        )
        runs = [
            ("local[1]", args.rows),
            ("local[2]", args.rows),
            ("local[2]", args.big),
        ]
        results = []
        for master, rows in runs:
            r = run_child(url, master, rows)
            results.append(r)
            print(
                f"profile_windows {master}, {r['rows']:,.0f} rows ({r['windows']:.0f} windows): "
                f"{r['seconds']:.1f} s, {r['rows_per_s']:,.0f} rows/s "
                f"({r['rows_per_s'] / job['rows_per_s']:.2f}x the window job); driver peak RSS "
                f"python {r['driver_python_peak_mb']:.0f} MB, JVM {r['driver_jvm_peak_mb']:.0f} MB;"
                f" {r['cores_busy']:.2f} of {r['cores']:.0f} cores busy"
            )
        one, two, big = results
        print(
            f"\n1 -> 2 executor cores: {two['rows_per_s'] / one['rows_per_s']:.2f}x rows/s"
            f"\ndriver python peak RSS at {args.rows:,} rows: "
            f"{two['driver_python_peak_mb']:.0f} MB,"
            f" at {args.big:,}: {big['driver_python_peak_mb']:.0f} MB"
            f" ({big['driver_python_peak_mb'] / two['driver_python_peak_mb']:.2f}x for "
            f"{args.big / args.rows:.0f}x the rows)"
        )


if __name__ == "__main__":
    main()
