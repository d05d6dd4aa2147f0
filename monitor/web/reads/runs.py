"""Is the monitor itself healthy: window jobs per model from the ``runs`` table.

For each model and job: the newest window computed and how far that lags real time, windows
due but not computed yet (the catch-up backlog: runs waiting, and windows the tick has not
even created, e.g. while no worker runs), how long runs take, and the failures with their
errors. Reads ``runs`` only, with per-(model, job) walks of its primary key, so the cost does
not grow with history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from monitor.storage.run_stats import JOBS
from monitor.web.reads.common import finite, iso

RECENT_DAYS = 7
"""Durations and failure counts cover the windows that started in this many days."""

_OVERVIEW = sa.text(
    """
    SELECT m.name, m.window_seconds, m.allowed_lateness_seconds, j.job,
           ok.window_end AS newest_ok, ok.finished_at AS last_success,
           last.window_end AS newest_run,
           st.pending, st.stale, st.running, st.failed, st.oldest_waiting,
           d.p50, d.p95, d.longest, d.done, d.failed_recent, d.retried
    FROM models m
    CROSS JOIN unnest(CAST(:jobs AS text[])) AS j(job)
    LEFT JOIN LATERAL (
        SELECT r.window_end, r.finished_at FROM runs r
        WHERE r.model_id = m.id AND r.job = j.job AND r.status = 'succeeded'
        ORDER BY r.window_start DESC LIMIT 1
    ) ok ON true
    LEFT JOIN LATERAL (
        SELECT r.window_end FROM runs r WHERE r.model_id = m.id AND r.job = j.job
        ORDER BY r.window_start DESC LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE r.status = 'pending') AS pending,
               count(*) FILTER (WHERE r.status = 'stale') AS stale,
               count(*) FILTER (WHERE r.status = 'running') AS running,
               count(*) FILTER (WHERE r.status = 'failed') AS failed,
               min(r.window_start) FILTER (WHERE r.status IN ('pending', 'stale', 'running'))
                 AS oldest_waiting
        FROM runs r
        WHERE r.model_id = m.id AND r.job = j.job
          AND r.status IN ('pending', 'stale', 'running', 'failed')
    ) st ON true
    LEFT JOIN LATERAL (
        SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY s) AS p95,
               max(s) AS longest, count(s) AS done,
               count(*) FILTER (WHERE x.status = 'failed') AS failed_recent,
               count(*) FILTER (WHERE x.attempt > 1) AS retried
        FROM (
            SELECT r.status, r.attempt,
                   CASE WHEN r.status = 'succeeded'
                     THEN extract(epoch FROM r.finished_at - r.started_at)::float8 END AS s
            FROM runs r
            WHERE r.model_id = m.id AND r.job = j.job AND r.window_start >= :since
        ) x
    ) d ON true
    WHERE ok.window_end IS NOT NULL OR last.window_end IS NOT NULL
    ORDER BY m.name, j.job
    """
)


def runs_overview(conn: sa.Connection, now: datetime | None = None) -> list[dict[str, Any]]:
    """One row per model and job: lag, backlog, durations, failures."""
    now = now or datetime.now(UTC)
    since = now.timestamp() - RECENT_DAYS * 86400
    rows = conn.execute(
        _OVERVIEW, {"jobs": list(JOBS), "since": datetime.fromtimestamp(since, UTC)}
    ).mappings()
    out = []
    for r in rows:
        window = max(int(r["window_seconds"]), 1)
        lateness = int(r["allowed_lateness_seconds"] or 0)
        newest_ok, newest_run = r["newest_ok"], r["newest_run"]
        lag = (now - newest_ok).total_seconds() if newest_ok else None
        # windows closed (and past their lateness) that the tick has not created yet
        uncreated = 0
        if newest_run is not None:
            uncreated = max(int(((now - newest_run).total_seconds() - lateness) // window), 0)
        waiting = int(r["pending"] or 0) + int(r["stale"] or 0) + int(r["running"] or 0)
        # healthy: the newest closed window is computed within a window of its lateness
        behind = lag is not None and lag > 2 * window + lateness
        failed = int(r["failed"] or 0)
        state = "failing" if failed else "behind" if behind or uncreated else "ok"
        out.append(
            {
                "model": r["name"],
                "job": r["job"],
                "window_seconds": window,
                "state": state,
                "newest_window_end": iso(newest_ok),
                "last_success": iso(r["last_success"]),
                "lag_seconds": lag,
                "waiting": waiting,
                "pending": int(r["pending"] or 0),
                "stale": int(r["stale"] or 0),
                "running": int(r["running"] or 0),
                "failed": failed,
                "not_created": uncreated,
                "backlog": waiting + uncreated,
                "oldest_waiting": iso(r["oldest_waiting"]),
                "duration_p50": finite(r["p50"]),
                "duration_p95": finite(r["p95"]),
                "duration_max": finite(r["longest"]),
                "succeeded_recent": int(r["done"] or 0),
                "failed_recent": int(r["failed_recent"] or 0),
                "retried_recent": int(r["retried"] or 0),
            }
        )
    return out


def failed_runs(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """Runs that failed, newest first, with their errors (``ix_runs_status_window_start``)."""
    return [
        {
            "model": r.model,
            "job": r.job,
            "window_start": iso(r.window_start),
            "window_end": iso(r.window_end),
            "attempt": r.attempt,
            "error": r.error,
            "reason": r.reason,
            "finished_at": iso(r.finished_at),
        }
        for r in conn.execute(
            sa.text(
                "SELECT m.name AS model, r.job, r.window_start, r.window_end, r.attempt, "
                "r.error, r.reason, r.finished_at FROM runs r JOIN models m ON m.id = r.model_id "
                "WHERE r.status = 'failed' ORDER BY r.window_start DESC LIMIT :l"
            ),
            {"l": limit},
        )
    ]
