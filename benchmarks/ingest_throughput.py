"""Ingest throughput: 1M records of 12 floats + 8 strings through the SDK into Postgres,
committed, against raw psycopg ``COPY ... (FORMAT BINARY)`` of the same rows into typed columns
(an unindexed plain table), measured in the same run on the same server.
Target: SDK >= 50% of the raw rate. Prints rows/s and bytes per row (table + indexes).

    /work/.venv/bin/python benchmarks/ingest_throughput.py [--rows 1000000] [--rounds 3] [--dsn ...]

The raw COPY and the SDK runs alternate ``--rounds`` times; each SDK run is compared with the
raw run of its own round, and the summary gives the median, min and max of those shares (the
rate of either side moves by +-15% from run to run on a shared 2-core machine).

The SDK run uses ``log_batch`` (the bulk path) and ends when ``flush()`` reports every record
committed, over two connections (the default: two server processes parse and index each block
in parallel) and over one (``bulk_connections=1``). The rows are generated on the fly (a dict
per record, as a batch job would have); the time to generate them alone is measured too and
reported, and subtracted for the net rate.
A breakdown line per SDK run shows the CPU time per row on each side (the caller's Python, and
the server process of the SDK's connection, from Linux /proc): whichever is close to the wall
time bounds the rate.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import DEFAULT_DSN, bench_database

FLOATS = [f"f{i}" for i in range(12)]
STRINGS = [f"s{i}" for i in range(8)]
DISTINCT = 100_000  # distinct feature rows, reused with fresh ids (keeps memory modest)


def make_rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    cats = [f"cat{j}" for j in range(50)]
    rows = []
    for _ in range(min(n, DISTINCT)):
        row: dict[str, Any] = {name: rng.gauss(0, 1) for name in FLOATS}
        row.update({name: rng.choice(cats) for name in STRINGS})
        rows.append(row)
    return rows


def records(rows: list[dict[str, Any]], n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        row = rows[i % len(rows)].copy()
        row["prediction"] = 0.5
        row["id"] = f"r{i}"
        yield row


def raw_copy(dsn: str, rows: list[dict[str, Any]], n: int) -> tuple[float, int]:
    cols = ["id text", "ts timestamptz", "prediction float8"]
    cols += [f"{c} float8" for c in FLOATS] + [f"{c} text" for c in STRINGS]
    types = ["text", "timestamptz", "float8"] + ["float8"] * 12 + ["text"] * 8
    now = datetime.now(UTC)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_baseline")
        conn.execute(f"CREATE TABLE raw_baseline ({', '.join(cols)})")
        conn.execute("CHECKPOINT")  # every timed run starts from a checkpoint (see _checkpoint)
        values = [tuple(r.values()) for r in rows]
        t0 = time.perf_counter()
        sql = "COPY raw_baseline FROM STDIN (FORMAT BINARY)"
        with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(types)
            for i in range(n):
                copy.write_row((f"r{i}", now, 0.5, *values[i % len(values)]))
        elapsed = time.perf_counter() - t0
        size = conn.execute("SELECT pg_total_relation_size('raw_baseline')").fetchone()
    return elapsed, int(size[0]) if size else 0


def sdk_ingest(dsn: str, rows: list[dict[str, Any]], n: int, **options: Any) -> tuple:
    from monitor import Monitor

    _checkpoint(dsn)
    with tempfile.TemporaryDirectory() as spool:
        client = Monitor("bench", "1", dsn=dsn, spool_dir=spool, **options)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        client.log_batch(records(rows, n))
        ok = client.flush(900)
        elapsed = time.perf_counter() - t0
        python_cpu = time.process_time() - cpu0
        server_cpu = _sdk_backend_cpu(dsn)
        stats = client.stats()
        client.shutdown()
    stats["cpu"] = (python_cpu, server_cpu)
    with psycopg.connect(dsn, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM predictions").fetchone()
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'predictions'::regclass"
        ).fetchone()
        conn.execute("TRUNCATE predictions")
    assert ok and count and count[0] == n, (ok, count, stats)
    return elapsed, int(size[0]) if size and size[0] else 0, stats


def _checkpoint(dsn: str) -> None:
    """A checkpoint before each timed run: a run writes 200-400 MB of WAL, so without it a
    checkpoint (max_wal_size) lands inside some runs and not others, with its full-page
    writes and I/O: that alone moved the shares by several points from run to run."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _sdk_backend_cpu(dsn: str) -> float | None:
    """CPU seconds used so far by the SDK's server process(es) (Linux /proc; None elsewhere)."""
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'monitor-sdk' "
                "AND datname = current_database()"
            ).fetchall()
        total = 0.0
        for (pid,) in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total if pids else None
    except (OSError, ValueError, psycopg.Error):
        return None


def breakdown(dsn: str, rows: list[dict[str, Any]], n: int) -> tuple[float, float, float]:
    """Where the SDK's time goes: its binary encoder alone (seconds for n rows, no database),
    then the server alone: COPY of those pre-encoded rows into the day partition in
    50k-row transactions, as the SDK does, and the same into a copy of that partition without
    its primary key (what the idempotency key costs the server)."""
    from monitor.sdk.batch import BULK_BATCH
    from monitor.sdk.postgres.encode import HEADER, TRAILER, SegmentCache, TextCache, int4
    from monitor.sdk.postgres.fast import Columns, encode_rows, fast_plan
    from monitor.sdk.postgres.writer import PREDICTION_COLUMNS, UNIFORM_CHUNK

    names = FLOATS + STRINGS
    plan = [("numeric", i) for i in range(12)] + [("categorical", i) for i in range(8)]
    fast = fast_plan(plan, names)
    assert fast is not None
    texts, fixed = TextCache(), (int4(1), int4(1))
    ns = time.time_ns()
    encoded: list[bytes] = []
    t0 = time.perf_counter()
    for begin in range(0, n, UNIFORM_CHUNK):
        # one time per BULK_BATCH block, increasing, as log_batch stamps its blocks: the key
        # (model, time, id) then arrives in the order the SDK's COPY gives the server
        ts = ns + 1000 * (begin // BULK_BATCH)
        chunk = [
            (f"r{i}", ts, rows[i % len(rows)], 0.5, None, None, None)
            for i in range(begin, min(n, begin + UNIFORM_CHUNK))
        ]
        out = encode_rows(Columns.of(chunk), fast, *fixed, texts, None, SegmentCache())
        assert None not in out
        encoded += out  # type: ignore[arg-type]
    encode_s = time.perf_counter() - t0
    day = time.strftime("%Y%m%d", time.gmtime(ns / 1e9))
    sql = f"COPY predictions_p{day} ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    seconds = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bench_no_key (LIKE predictions_p{day} INCLUDING DEFAULTS)")
        for statement in (sql, sql.replace(f"predictions_p{day}", "bench_no_key")):
            conn.execute("CHECKPOINT")
            t0 = time.perf_counter()
            for begin in range(0, n, BULK_BATCH):
                with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(b"".join((HEADER, *encoded[begin : begin + BULK_BATCH], TRAILER)))
            seconds.append(time.perf_counter() - t0)
        conn.execute("TRUNCATE predictions")
        conn.execute("DROP TABLE bench_no_key")
    return encode_s, seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server to create a scratch DB on")
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw and SDK runs alternate this many times"
    )
    args = parser.parse_args()
    n = args.rows
    rows = make_rows(n)
    t0 = time.perf_counter()
    for _ in records(rows, n):
        pass
    gen_s = time.perf_counter() - t0
    print(f"{n:,} records of 12 floats + 8 strings; generating them alone takes {gen_s:.2f} s")
    configs = (
        ("SDK, synchronous_commit=on      ", {}),
        ("SDK, synchronous_commit=off     ", {"synchronous_commit": False}),
        ("SDK, one connection (sync on)   ", {"bulk_connections": 1}),
    )
    ratios: dict[str, list[float]] = {label: [] for label, _ in configs}
    with bench_database(args.dsn) as dsn:
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no} of {args.rounds}")
            raw_s, raw_bytes = raw_copy(dsn, rows, n)
            raw_rate = n / raw_s
            print(
                f"raw COPY BINARY, typed columns  : {raw_rate:9,.0f} rows/s  "
                f"{raw_bytes / n:4.0f} B/row (no index)"
            )
            if round_no == 1:
                print_breakdown(dsn, rows, n, raw_s)
            for label, opts in configs:
                sdk_s, sdk_bytes, stats = sdk_ingest(dsn, rows, n, **opts)
                gross = n / sdk_s
                net = n / max(1e-9, sdk_s - gen_s)
                ratios[label].append(net / raw_rate)
                print(
                    f"{label}: {net:9,.0f} rows/s  {sdk_bytes / n:4.0f} B/row (with primary key)"
                    f"  {net / raw_rate:5.1%} of raw (target >= 50%); gross incl. generating rows"
                    f" {gross:,.0f} rows/s ({gross / raw_rate:.1%});"
                    f" dropped={stats['dropped_total']}"
                )
                python_cpu, server_cpu = stats["cpu"]
                server = f"{server_cpu / n * 1e6:5.2f}" if server_cpu is not None else "  n/a"
                print(
                    f"  CPU per row: Python (incl. generating rows) {python_cpu / n * 1e6:5.2f}"
                    f" us, its server processes {server} us; wall {sdk_s / n * 1e6:5.2f} us"
                )
    print(f"share of the raw rate over {args.rounds} rounds (each against its own round's raw):")
    for label, values in ratios.items():
        print(
            f"{label}: median {statistics.median(values):5.1%}  min {min(values):5.1%}"
            f"  max {max(values):5.1%}  (target >= 50%)"
        )


def print_breakdown(dsn: str, rows: list[dict[str, Any]], n: int, raw_s: float) -> None:
    encode_s, server_s, no_key_s = breakdown(dsn, rows, n)
    print(
        f"  breakdown: SDK encoder alone {encode_s / n * 1e6:5.2f} us/row; server alone (COPY"
        f" of pre-encoded rows into the day partition, one connection) {server_s / n * 1e6:5.2f}"
        f" us/row, into the same table without its primary key {no_key_s / n * 1e6:5.2f} us/row;"
        f" whole raw path {raw_s / n * 1e6:5.2f} us/row"
    )


if __name__ == "__main__":
    main()
