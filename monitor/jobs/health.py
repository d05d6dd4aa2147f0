"""Job health from the ``runs`` table: lag of the oldest due window, failures, last success.

Read by ``monitor worker --status`` and exported as Prometheus gauges by ``monitor worker
--metrics-port``. The SQL only reads ``runs``, so any process can ask.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.storage.vocabulary import JOB_WINDOW


def job_health(conn: sa.Connection, job: str = JOB_WINDOW, failures: int = 10) -> dict[str, Any]:
    """Lag (seconds since the oldest due window closed), counts by status, recent failures."""
    row = (
        conn.execute(
            sa.text(
                """
            SELECT
              extract(epoch FROM now() - min(window_end) FILTER (
                WHERE status IN ('pending', 'stale', 'running'))) AS lag_seconds,
              max(finished_at) FILTER (WHERE status = 'succeeded') AS last_success,
              count(*) FILTER (WHERE status = 'pending') AS pending,
              count(*) FILTER (WHERE status = 'stale') AS stale,
              count(*) FILTER (WHERE status = 'running') AS running,
              count(*) FILTER (WHERE status = 'failed') AS failed,
              count(*) FILTER (WHERE status = 'skipped') AS skipped,
              count(*) FILTER (WHERE status = 'succeeded') AS succeeded
            FROM runs WHERE job = :job
            """
            ),
            {"job": job},
        )
        .mappings()
        .one()
    )
    health = dict(row)
    health["lag_seconds"] = float(health["lag_seconds"] or 0.0)
    health["failures"] = [
        dict(r)
        for r in conn.execute(
            sa.text(
                "SELECT m.name AS model, r.window_start, r.attempt, r.error, r.finished_at"
                " FROM runs r JOIN models m ON m.id = r.model_id"
                " WHERE r.job = :job AND r.status = 'failed'"
                " ORDER BY r.finished_at DESC NULLS LAST LIMIT :n"
            ),
            {"job": job, "n": failures},
        ).mappings()
    ]
    return health


def failures_since(conn: sa.Connection, since: datetime) -> list[dict[str, Any]]:
    """Runs of every job that failed at or after ``since`` (database time) and are still
    failed: what one ``monitor worker --until-idle`` left behind."""
    return [
        dict(r)
        for r in conn.execute(
            sa.text(
                "SELECT m.name AS model, r.job, r.window_start, r.attempt, r.error"
                " FROM runs r JOIN models m ON m.id = r.model_id"
                " WHERE r.status = 'failed' AND r.finished_at >= :since"
                " ORDER BY r.finished_at"
            ),
            {"since": since},
        ).mappings()
    ]


class HealthCollector:
    """A Prometheus collector that reads :func:`job_health` at scrape time."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        with self.engine.connect() as conn:
            h = job_health(conn)
        lag = GaugeMetricFamily(
            "monitor_jobs_lag_seconds", "Seconds since the oldest due window closed (0 when none)"
        )
        lag.add_metric([], h["lag_seconds"])
        runs = GaugeMetricFamily("monitor_jobs_runs", "Window runs by status", labels=["status"])
        for status in ("pending", "stale", "running", "failed", "skipped", "succeeded"):
            runs.add_metric([status], float(h[status]))
        last = GaugeMetricFamily(
            "monitor_jobs_last_success_timestamp_seconds",
            "Unix time of the latest successful window run",
        )
        last.add_metric([], h["last_success"].timestamp() if h["last_success"] else 0.0)
        yield from (lag, runs, last)
