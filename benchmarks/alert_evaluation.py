"""Alert evaluation time: a two-week catch-up, a tick with one new window per model, an idle tick.

Models with the ten default rules, hourly windows of drift (20 features, one drifting for
three days), volume and latency results, written as the window job writes them (the
completion trigger records every window). Each evaluation is ``evaluate_alerts`` as the
worker's tick calls it; the baseline in the same run is one plain ``SELECT count(*)`` over the
results it reads.

    /work/.venv/bin/python benchmarks/alert_evaluation.py [--models 20] [--days 14] [--dsn ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._db import DEFAULT_DSN, bench_database

RESULTS = """
INSERT INTO results (model_id, window_start, window_end, family, column_name, metric, value,
                     threshold, drifted)
SELECT m.id, w, w + interval '1 hour', 'drift', 'f' || c, 'psi',
       CASE WHEN c = 0 AND w >= :drift_from AND w < :drift_to THEN 0.3 ELSE 0.02 END, 0.1,
       c = 0 AND w >= :drift_from AND w < :drift_to
FROM models m, generate_series(CAST(:first AS timestamptz), :last, interval '1 hour') w,
     generate_series(0, 19) c
UNION ALL
SELECT m.id, w, w + interval '1 hour', 'operational', '', metric, value, NULL, NULL
FROM models m, generate_series(CAST(:first AS timestamptz), :last, interval '1 hour') w,
     (VALUES ('volume', 500.0), ('latency_p95', 40.0)) AS o(metric, value)
"""


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    out = fn()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    print(f"  {label:<52} {seconds * 1000:9.1f} ms   {out}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    from monitor.alerts.evaluate import evaluate_alerts
    from monitor.alerts.rules import ensure_default_rules

    with bench_database(args.dsn) as dsn:
        import psycopg

        engine = sa.create_engine(
            "postgresql+psycopg://",
            creator=lambda: psycopg.connect(dsn),
            poolclass=sa.pool.NullPool,
        )
        last = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        first = last - timedelta(days=args.days) + timedelta(hours=1)
        with engine.begin() as conn:
            for i in range(args.models):
                conn.execute(sa.text("INSERT INTO models (name) VALUES (:n)"), {"n": f"m{i:03d}"})
            conn.execute(
                sa.text(RESULTS),
                {
                    "first": first,
                    "last": last - timedelta(hours=1),
                    "drift_from": first + timedelta(days=4),
                    "drift_to": first + timedelta(days=7),
                },
            )
            rows = conn.execute(sa.text("SELECT count(*) FROM results")).scalar_one()
        for model_id in range(1, args.models + 1):
            ensure_default_rules(engine, model_id)
        windows = args.days * 24 - 1
        print(
            f"{args.models} models x 10 rules, {windows} hourly windows each, {rows:,} results rows"
        )

        def count() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM results")).scalar_one())

        def evaluate() -> str:
            s = evaluate_alerts(engine)
            return f"{s.fired} fired, {s.notifications} notifications, {s.rule_errors} errors"

        timed("baseline: SELECT count(*) FROM results", count)
        catch_up = timed("catch-up: every window new to every rule", evaluate)
        timed("tick after it (group_wait not over, nothing new)", evaluate)
        with engine.begin() as conn:  # the next window of every model completes
            conn.execute(
                sa.text(RESULTS),
                {"first": last, "last": last, "drift_from": last, "drift_to": last},
            )
        timed("tick with one new window per model", evaluate)
        idle = timed("idle tick (nothing new)", evaluate)
        print(
            f"catch-up: {catch_up / args.models * 1000:.0f} ms per model "
            f"({catch_up / (args.models * 10 * windows) * 1e6:.0f} us per rule-window); "
            f"idle tick: {idle / args.models * 1000:.1f} ms per model"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
