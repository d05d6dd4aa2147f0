"""Ingest throughput: 1M records of 12 floats + 8 strings through the SDK into Postgres,
committed, against raw psycopg ``COPY ... (FORMAT BINARY)`` of the same rows into typed columns,
measured in the same run on the same server. Target: SDK >= 50% of the raw rate.

    /work/.venv/bin/python benchmarks/ingest_throughput.py [--rows 1000000] [--dsn ...]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import DEFAULT_DSN, bench_database  # noqa: E402

FLOATS = [f"f{i}" for i in range(12)]
STRINGS = [f"s{i}" for i in range(8)]
DISTINCT = 100_000  # distinct feature rows, reused with fresh ids (keeps memory modest)


def make_rows(n: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    cats = [f"cat{j}" for j in range(50)]
    rows = []
    for _ in range(min(n, DISTINCT)):
        row: dict[str, object] = {name: rng.gauss(0, 1) for name in FLOATS}
        row.update({name: rng.choice(cats) for name in STRINGS})
        rows.append(row)
    return rows


def raw_copy(dsn: str, rows: list[dict[str, object]], n: int) -> tuple[float, int]:
    cols = ["id text", "ts timestamptz", "prediction float8"]
    cols += [f"{c} float8" for c in FLOATS] + [f"{c} text" for c in STRINGS]
    types = ["text", "timestamptz", "float8"] + ["float8"] * 12 + ["text"] * 8
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE raw_baseline ({', '.join(cols)})")
        values = [tuple(r.values()) for r in rows]
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            with cur.copy("COPY raw_baseline FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for i in range(n):
                    copy.write_row((f"r{i}", now, 0.5, *values[i % len(values)]))
        elapsed = time.perf_counter() - t0
        size = conn.execute("SELECT pg_total_relation_size('raw_baseline')").fetchone()
    return elapsed, int(size[0]) if size else 0


def sdk_ingest(dsn: str, rows: list[dict[str, object]], n: int, **options: object) -> tuple:
    from monitor import Monitor

    with tempfile.TemporaryDirectory() as spool:
        client = Monitor("bench", "1", dsn=dsn, spool_dir=spool, **options)  # type: ignore[arg-type]

        def records():  # type: ignore[no-untyped-def]
            for i in range(n):
                row = dict(rows[i % len(rows)])
                row["prediction"] = 0.5
                row["id"] = f"r{i}"
                yield row

        t0 = time.perf_counter()
        client.log_batch(records())
        ok = client.flush(600)
        elapsed = time.perf_counter() - t0
        stats = client.stats()
        client.shutdown()
    with psycopg.connect(dsn, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM predictions").fetchone()
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'predictions'::regclass"
        ).fetchone()
        conn.execute("TRUNCATE predictions")
    assert ok and count and count[0] == n, (ok, count, stats)
    return elapsed, int(size[0]) if size and size[0] else 0, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server to create a scratch DB on")
    args = parser.parse_args()
    n = args.rows
    rows = make_rows(n)
    # The row dicts the SDK gets hold 12 floats + 8 strings + prediction + id.
    with bench_database(args.dsn) as dsn:
        raw_s, raw_bytes = raw_copy(dsn, rows, n)
        raw_rate = n / raw_s
        print(f"raw COPY BINARY, typed columns : {raw_rate:10,.0f} rows/s  {raw_bytes / n:6.0f} B/row")
        for label, opts in (
            ("SDK log_batch (sync commit)   ", {}),
            ("SDK log_batch, async commit   ", {"synchronous_commit": False}),
        ):
            sdk_s, sdk_bytes, stats = sdk_ingest(dsn, rows, n, **opts)
            rate = n / sdk_s
            print(
                f"{label}: {rate:10,.0f} rows/s  {sdk_bytes / n:6.0f} B/row  "
                f"{rate / raw_rate:6.1%} of raw (target >= 50%)  dropped={stats['dropped_total']}"
            )


if __name__ == "__main__":
    main()
