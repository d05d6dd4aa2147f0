"""CPU the SDK's worker spends per ``log()`` record (encoding and sending to Postgres), with the
C encoder and without it, in the same run: records of 12 floats + 8 strings, plain, and with a
proba and a segment as the README's example logs them.

The worker shares the GIL with the serving code, so this CPU is taken from request handling.

    /work/.venv/bin/python benchmarks/worker_encoding.py [--records 20000] [--dsn ...]

Batches of 1,000 records go through ``PostgresWriter.write_predictions``, as the worker sends
them; the first batch of each kind registers its shape and classes and is not timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import DEFAULT_DSN, bench_database

BATCH = 1_000


def records(n: int, tag: str, with_extras: bool) -> list[tuple[Any, ...]]:
    ns = time.time_ns()
    out = []
    for i in range(n):
        features: dict[str, Any] = {f"f{j}": float(j) * i for j in range(12)}
        features.update({f"s{j}": f"c{(i + j) % 30}" for j in range(8)})
        proba = {"0": 0.3, "1": 0.7} if with_extras else None
        segment = {"region": ("eu", "us", "apac")[i % 3]} if with_extras else None
        out.append((f"{tag}{i}", ns + i, features, i % 2, proba, 3.2, segment))
    return out


def cpu_per_record(dsn: str, model: str, batch: list[tuple[Any, ...]]) -> float:
    from monitor.sdk.postgres.writer import PostgresWriter

    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        writer.write_predictions(model, "1", batch[:BATCH])
        cpu0 = time.process_time()
        for begin in range(BATCH, len(batch), BATCH):
            writer.write_predictions(model, "1", batch[begin : begin + BATCH])
        return (time.process_time() - cpu0) / (len(batch) - BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    from monitor.sdk.postgres import fast

    accelerator = fast._speedups
    if accelerator is None:
        sys.exit("the C encoder is not built: pip install -e . with a C compiler")
    with bench_database(args.dsn) as dsn:
        for kind, extras in (("plain", False), ("proba + segment", True)):
            figures = []
            for label, module in (("C", accelerator), ("Python", None)):
                fast._speedups = module
                batch = records(args.records, f"{label}{extras}", extras)
                figures.append((label, cpu_per_record(dsn, f"{kind}-{label}", batch)))
            fast._speedups = accelerator
            (_, c), (_, py) = figures
            print(
                f"{kind:16s}: worker CPU per record {c * 1e6:5.1f} us with the C encoder,"
                f" {py * 1e6:5.1f} us without ({py / c:.1f}x)"
            )


if __name__ == "__main__":
    main()
