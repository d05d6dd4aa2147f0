"""How fast a spooled outage backlog lands once Postgres is back, while logging continues.

Scenario (issue 13, item 3): ``log()`` at ``--rate`` records/s (default 1,000) from a serving
thread; after 5 s Postgres is killed (``pg_ctl stop -m immediate``, a disposable server of
pgserver's binaries) for ``--outage`` seconds (default 60), then started again; logging goes
on. Figure: seconds from the restart until every record logged before it is in Postgres.
Target: <= 10 s for a 60 s outage at 1,000 records/s.

Baseline in the same run: the same scenario against another source tree (``--baseline-tree``,
e.g. a worktree of the last release: ``git worktree add /tmp/base 4491452`` and build its C
extension with ``pip wheel``/``build_ext --inplace``), run in a subprocess each, alternately.

    /work/.venv/bin/python benchmarks/spool_replay.py [--outage 60] [--rate 1000]
        [--baseline-tree /tmp/base] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
TIMEOUT = 180.0  # seconds the drain may take before the run gives up (bounded)


def scenario(tree: Path, outage: float, rate: int) -> dict[str, Any]:
    """One run against the monitor package of ``tree`` (imported first on sys.path)."""
    sys.path.insert(0, str(tree))
    sys.path.insert(1, str(HERE))
    import psycopg

    import monitor
    from tests.sdk.killable_pg import KillablePostgres

    assert Path(monitor.__file__).resolve().is_relative_to(tree.resolve()), monitor.__file__
    server = KillablePostgres()
    try:
        server.migrate()
        client = monitor.Monitor(
            "replay", "1", dsn=server.dsn, spool_dir=tempfile.mkdtemp(), timeout=3
        )
        logged = 0
        stop = threading.Event()

        def serve() -> None:  # the serving thread: bursts every 10 ms
            nonlocal logged
            per_tick = max(1, rate // 100)
            next_at = time.monotonic()
            while not stop.is_set():
                for _ in range(per_tick):
                    client.log({"seq": float(logged), "c": "k"}, 0.5, id=f"r{logged}")
                    logged += 1
                next_at += 0.01
                time.sleep(max(0.0, next_at - time.monotonic()))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        time.sleep(5)
        server.stop("immediate")
        down_at = logged
        time.sleep(outage)
        spooled = client.stats()["spooled_records"]
        server.start()
        recovered_at, backlog = time.monotonic(), logged
        drained = None
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            while time.monotonic() - recovered_at < TIMEOUT:
                row = conn.execute(
                    "SELECT count(*) FROM predictions WHERE num[1] < %s", (backlog,)
                ).fetchone()
                if row is not None and row[0] >= backlog:
                    drained = time.monotonic() - recovered_at
                    break
                time.sleep(0.1)
        stop.set()
        thread.join()
        ok = client.flush(60)
        stats = client.stats()
        client.shutdown(10)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT record_id) FROM predictions")
            rows, distinct = row.fetchone() or (0, 0)
        return {
            "tree": str(tree),
            "drain_s": drained,
            "backlog": backlog,
            "logged_during_outage": backlog - down_at,
            "spooled_at_recovery": spooled,
            "logged": logged,
            "rows": rows,
            "distinct": distinct,
            "flushed": ok,
            "dropped": stats.get("dropped_total"),
        }
    finally:
        server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one scenario, in its own process
        print(json.dumps(scenario(args.child, args.outage, args.rate)))
        return
    trees = [("this tree", HERE)]
    if args.baseline_tree is not None:
        trees.append(("baseline", args.baseline_tree))
    for round_no in range(args.rounds):
        for label, tree in trees:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(tree), "--outage", str(args.outage),
                 "--rate", str(args.rate)],
                capture_output=True, text=True, timeout=args.outage + TIMEOUT + 120,
                env={**os.environ, "PYTHONPATH": ""},
            )  # fmt: skip
            if proc.returncode != 0:
                print(f"{label}: failed\n{proc.stderr[-2000:]}")
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            drain = result["drain_s"]
            print(
                f"round {round_no + 1} {label:9s}: backlog {result['backlog']:6d} records "
                f"({result['logged_during_outage']} during a {args.outage:.0f} s outage, "
                f"{result['spooled_at_recovery']} spooled), in Postgres "
                + (f"{drain:5.1f} s" if drain is not None else f"not within {TIMEOUT:.0f} s")
                + f" after the restart; end: {result['rows']} rows of {result['logged']} logged"
                f" ({result['distinct']} distinct), flushed={result['flushed']}, "
                f"dropped={result['dropped']}"
            )


if __name__ == "__main__":
    main()
