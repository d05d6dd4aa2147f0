"""Job-run gauges per model, read from ``runs`` with bounded, index-backed queries.

Storage-level so that the web's ``/metrics`` can export job health without importing jobs code
(``monitor.jobs.health`` is the worker's whole-table view for ``worker --status``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from monitor.storage.vocabulary import JOB_PERFORMANCE, JOB_WINDOW

JOBS = (JOB_WINDOW, JOB_PERFORMANCE)
UNFINISHED = ("pending", "running", "failed", "skipped", "stale")

_NEWEST_SUCCESS = sa.text(
    """
    SELECT m.name, j.job, ok.window_end
    FROM models m
    CROSS JOIN unnest(CAST(:jobs AS text[])) AS j(job)
    CROSS JOIN LATERAL (
        SELECT r.window_end FROM runs r
        WHERE r.model_id = m.id AND r.job = j.job AND r.status = 'succeeded'
        ORDER BY r.window_start DESC LIMIT 1
    ) ok
    ORDER BY 1, 2
    """
)

_UNFINISHED = sa.text(
    """
    SELECT m.name, r.job, r.status, count(*)
    FROM runs r JOIN models m ON m.id = r.model_id
    WHERE r.status = ANY(CAST(:statuses AS text[]))
    GROUP BY 1, 2, 3
    """
)


def newest_success(conn: sa.Connection) -> list[tuple[str, str, datetime]]:
    """(model, job, end of its newest succeeded window) for every model and job that has one.

    A backward walk of the runs primary key per (model, job) that stops at the first succeeded
    run: the cost does not grow with history (a ``max() ... GROUP BY`` read every run).
    """
    return [(r[0], r[1], r[2]) for r in conn.execute(_NEWEST_SUCCESS, {"jobs": list(JOBS)})]


def unfinished_counts(conn: sa.Connection) -> list[tuple[str, str, str, int]]:
    """(model, job, status, runs) for runs not succeeded (``ix_runs_status_window_start``)."""
    return [
        (r[0], r[1], r[2], int(r[3]))
        for r in conn.execute(_UNFINISHED, {"statuses": list(UNFINISHED)})
    ]
