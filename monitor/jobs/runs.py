"""The ``runs`` table: one row per (model, job, window_start), claimed with a lease and fenced.

Why Postgres and not the scheduler: APScheduler's job stores have no row locking, so replicas
would double-run windows, and its ``coalesce`` silently drops missed runs. Here every closed
window gets a row; workers claim rows with ``FOR UPDATE SKIP LOCKED`` and a lease; a worker
completes a run only if it still holds that lease at that attempt (fencing), checked in the same
transaction that writes the run's results. A worker that stalls past its lease (SIGSTOP, GC,
network) loses the window to another worker, and its late completion is rejected.

Times come from the database clock (``now()``), never the worker's, so skewed hosts agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from monitor.storage.engine import describe_db_error
from monitor.storage.vocabulary import JOB_WINDOW

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Failed runs are retried (with a delay growing with the attempt) until this many attempts."""
RETRY_DELAY_SECONDS = 60
BACKFILL_REASON = "backfill"
SKIP_REASON = "older than the catch-up limit ({days} days)"
LATE_REASON = "late data"
SOURCE_PREDICTIONS = "predictions"
SOURCE_SPARK = "spark"
"""``runs.source``: where a window's rows were profiled (see :func:`record_completed`)."""
SPARK_KEPT_REASON = (
    "profiled on Spark; {rows} rows logged to this database for the window are not counted"
)


class LeaseLost(Exception):
    """The run was taken over (lease expired), marked stale or reset: its work is discarded."""


@dataclass(frozen=True)
class Claim:
    """A run this worker holds: the fencing token is (owner, attempt)."""

    model_id: int
    job: str
    window_start: datetime
    window_end: datetime
    attempt: int
    owner: str
    previous_status: str | None = None
    source: str = SOURCE_PREDICTIONS


def create_due_windows(conn: sa.Connection, *, catchup_max_age_days: int) -> int:
    """Insert a run for every closed window of every model that has none yet.

    A window ``[s, s + w)`` is closed once ``now() - allowed_lateness >= s + w``. Each model's
    series continues after its latest run (or starts at its first logged row), so windows missed
    during downtime are created too, newest included; windows older than the catch-up limit are
    created as ``skipped`` with the reason, so the gap is visible rather than silent.
    Windows stored by Spark (``source = 'spark'``) do not continue the series: a model fed
    only by Spark gets no empty windows from the worker between its Spark runs.
    """
    result = conn.execute(
        sa.text(
            """
            WITH bounds AS (
              SELECT m.id AS model_id, make_interval(secs => m.window_seconds) AS w,
                COALESCE(
                  (SELECT max(r.window_start) + make_interval(secs => m.window_seconds)
                     FROM runs r WHERE r.model_id = m.id AND r.job = :job
                     AND r.source = 'predictions'),
                  (SELECT to_timestamp(floor(extract(epoch FROM min(p.event_ts))
                                             / m.window_seconds) * m.window_seconds)
                     FROM predictions p WHERE p.model_id = m.id)
                ) AS first_start,
                to_timestamp(floor(extract(epoch FROM now()
                                   - make_interval(secs => m.allowed_lateness_seconds))
                                   / m.window_seconds) * m.window_seconds) AS open_start
              FROM models m
            )
            INSERT INTO runs (model_id, job, window_start, window_end, status, reason)
            SELECT b.model_id, :job, g, g + b.w,
                   CASE WHEN g + b.w < now() - make_interval(days => :max_age)
                        THEN 'skipped' ELSE 'pending' END,
                   CASE WHEN g + b.w < now() - make_interval(days => :max_age)
                        THEN :skip_reason END
            FROM bounds b
            CROSS JOIN LATERAL generate_series(b.first_start, b.open_start - b.w, b.w) AS g
            WHERE b.first_start IS NOT NULL
            ON CONFLICT DO NOTHING
            """
        ),
        {
            "job": JOB_WINDOW,
            "max_age": catchup_max_age_days,
            "skip_reason": SKIP_REASON.format(days=catchup_max_age_days),
        },
    )
    return int(result.rowcount or 0)


def skip_expired(conn: sa.Connection, *, catchup_max_age_days: int) -> int:
    """Mark due windows older than the catch-up limit ``skipped`` (backfills are exempt)."""
    result = conn.execute(
        sa.text(
            """
            UPDATE runs SET status = 'skipped', reason = :reason, lease_owner = NULL,
                   lease_expires_at = NULL, finished_at = now()
            WHERE job = :job AND status IN ('pending', 'stale')
              AND reason IS DISTINCT FROM :backfill
              AND window_end < now() - make_interval(days => :max_age)
            """
        ),
        {
            "job": JOB_WINDOW,
            "reason": SKIP_REASON.format(days=catchup_max_age_days),
            "backfill": BACKFILL_REASON,
            "max_age": catchup_max_age_days,
        },
    )
    return int(result.rowcount or 0)


def claim(
    conn: sa.Connection,
    *,
    owner: str,
    lease_seconds: int,
    job: str = JOB_WINDOW,
    model_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Claim | None:
    """Claim the newest due run (pending, stale, lease expired, or failed and due for retry).

    Newest first: after downtime the dashboard's most relevant windows come back first.
    ``SKIP LOCKED`` lets concurrent workers each take a different row without waiting.
    Commit the connection's transaction right after, so the lease is visible to others.
    """
    filters = ""
    params: dict[str, object] = {
        "job": job,
        "owner": owner,
        "lease": lease_seconds,
        "max_attempts": MAX_ATTEMPTS,
        "retry": RETRY_DELAY_SECONDS,
    }
    if model_id is not None:
        filters += " AND model_id = :model_id"
        params["model_id"] = model_id
    if start is not None:
        filters += " AND window_start >= :start"
        params["start"] = start
    if end is not None:
        filters += " AND window_start < :end"
        params["end"] = end
    row = conn.execute(
        sa.text(
            f"""
            WITH c AS (
              SELECT model_id, job, window_start, status FROM runs
              WHERE job = :job {filters} AND (
                status IN ('pending', 'stale')
                OR (status = 'running' AND lease_expires_at < now())
                OR (status = 'failed' AND attempt < :max_attempts
                    AND finished_at < now() - make_interval(secs => :retry * attempt)))
              ORDER BY window_start DESC
              LIMIT 1
              FOR UPDATE SKIP LOCKED
            )
            UPDATE runs r SET status = 'running', attempt = r.attempt + 1, lease_owner = :owner,
                   lease_expires_at = now() + make_interval(secs => :lease),
                   started_at = now(), finished_at = NULL, error = NULL
            FROM c
            WHERE r.model_id = c.model_id AND r.job = c.job AND r.window_start = c.window_start
            RETURNING r.model_id, r.job, r.window_start, r.window_end, r.attempt, c.status,
                      r.source
            """
        ),
        params,
    ).first()
    if row is None:
        return None
    return Claim(
        model_id=row[0],
        job=row[1],
        window_start=row[2],
        window_end=row[3],
        attempt=row[4],
        owner=owner,
        previous_status=row[5],
        source=row[6],
    )


_FENCE = (
    "model_id = :model_id AND job = :job AND window_start = :window_start "
    "AND attempt = :attempt AND lease_owner = :owner AND status = 'running'"
)


def _fence_params(c: Claim) -> dict[str, object]:
    return {
        "model_id": c.model_id,
        "job": c.job,
        "window_start": c.window_start,
        "attempt": c.attempt,
        "owner": c.owner,
    }


def renew(conn: sa.Connection, c: Claim, *, lease_seconds: int) -> None:
    """Extend the lease; raises :class:`LeaseLost` if the run is no longer ours."""
    result = conn.execute(
        sa.text(
            "UPDATE runs SET lease_expires_at = now() + make_interval(secs => :lease) "
            f"WHERE {_FENCE}"
        ),
        {**_fence_params(c), "lease": lease_seconds},
    )
    if result.rowcount != 1:
        raise LeaseLost(f"run {c.model_id}/{c.window_start:%Y-%m-%d %H:%M} is no longer ours")


def complete(conn: sa.Connection, c: Claim, *, rows: int) -> None:
    """Mark the run succeeded, *in the caller's transaction* that also writes its results.

    The UPDATE locks the run row and checks the fencing token; when it matches nothing the run
    was taken over or marked stale, :class:`LeaseLost` is raised and the caller's transaction
    (with the results) must roll back.
    """
    result = conn.execute(
        sa.text(
            "UPDATE runs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL, "
            "finished_at = now(), rows = :rows, data_watermark = now(), "
            "reason = CASE WHEN reason = :late THEN NULL ELSE reason END, error = NULL "
            f"WHERE {_FENCE}"
        ),
        {**_fence_params(c), "rows": rows, "late": LATE_REASON},
    )
    if result.rowcount != 1:
        raise LeaseLost(
            f"completion of {c.model_id}/{c.window_start:%Y-%m-%d %H:%M} attempt {c.attempt} "
            "rejected: the lease was taken over or the window went stale"
        )


def record_completed(
    conn: sa.Connection,
    *,
    model_id: int,
    job: str,
    window_start: datetime,
    window_end: datetime,
    rows: int,
    source: str = SOURCE_SPARK,
    reason: str | None = None,
) -> None:
    """Record a window computed outside the claims (Spark) as succeeded, replacing its run.

    Call in the transaction that stores the window's results. The row is locked by the
    upsert; a worker that held a lease on the window loses it (its fenced completion is
    rejected), so the stored window is this one, whole.
    """
    conn.execute(
        sa.text(
            "INSERT INTO runs (model_id, job, window_start, window_end, status, attempt,"
            " started_at, finished_at, data_watermark, rows, reason, source) VALUES (:m, :job,"
            " :ws, :we, 'succeeded', 1, now(), now(), now(), :rows, :reason, :source)"
            " ON CONFLICT (model_id, job, window_start) DO UPDATE SET status = 'succeeded',"
            " window_end = EXCLUDED.window_end, attempt = runs.attempt + 1, lease_owner = NULL,"
            " lease_expires_at = NULL, started_at = now(), finished_at = now(),"
            " data_watermark = now(), rows = EXCLUDED.rows, reason = EXCLUDED.reason,"
            " error = NULL, source = EXCLUDED.source"
        ),
        {
            "m": model_id,
            "job": job,
            "ws": window_start,
            "we": window_end,
            "rows": rows,
            "reason": reason,
            "source": source,
        },
    )


def keep_spark_window(conn: sa.Connection, c: Claim) -> int:
    """Complete a claimed Spark window without recomputing it (fenced; LeaseLost if not ours).

    A Spark window was stored whole from its DataFrame; the rows in ``predictions`` are not
    its rows, so recomputing from them would replace it with a part (or nothing). Rows that
    landed there anyway (which is what made it due) are counted on the run instead.
    """
    logged = int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM predictions WHERE model_id = :m AND event_ts >= :s"
                " AND event_ts < :e"
            ),
            {"m": c.model_id, "s": c.window_start, "e": c.window_end},
        ).scalar_one()
    )
    result = conn.execute(
        sa.text(
            "UPDATE runs SET status = 'succeeded', lease_owner = NULL, lease_expires_at = NULL,"
            f" finished_at = now(), reason = :reason, error = NULL WHERE {_FENCE}"
        ),
        {**_fence_params(c), "reason": SPARK_KEPT_REASON.format(rows=logged)},
    )
    if result.rowcount != 1:
        raise LeaseLost(f"run {c.model_id}/{c.window_start:%Y-%m-%d %H:%M} is no longer ours")
    return logged


def fail(conn: sa.Connection, c: Claim, error: str) -> bool:
    """Record a failure (retried later up to :data:`MAX_ATTEMPTS`); False if no longer ours."""
    result = conn.execute(
        sa.text(
            "UPDATE runs SET status = 'failed', error = :error, lease_owner = NULL, "
            f"lease_expires_at = NULL, finished_at = now() WHERE {_FENCE}"
        ),
        {**_fence_params(c), "error": error[:2000]},
    )
    return result.rowcount == 1


def request_windows(
    conn: sa.Connection,
    *,
    model_id: int,
    window_seconds: int,
    start: datetime,
    end: datetime,
    rerun: bool,
) -> int:
    """Create (or reset with ``rerun``) the runs of every window in ``[start, end)``.

    Used by backfill: windows are marked with the ``backfill`` reason so the catch-up limit does
    not skip them. Without ``rerun`` finished windows are left alone (idempotent).
    """
    created = conn.execute(
        sa.text(
            """
            INSERT INTO runs (model_id, job, window_start, window_end, status, reason)
            SELECT :model_id, :job, g, g + make_interval(secs => :w), 'pending', :reason
            FROM generate_series(
                to_timestamp(floor(extract(epoch FROM CAST(:start AS timestamptz)) / :w) * :w),
                CAST(:end AS timestamptz) - make_interval(secs => 1),
                make_interval(secs => :w)) AS g
            WHERE g + make_interval(secs => :w) <= now()
            ON CONFLICT DO NOTHING
            """
        ),
        {
            "model_id": model_id,
            "job": JOB_WINDOW,
            "w": window_seconds,
            "start": start,
            "end": end,
            "reason": BACKFILL_REASON,
        },
    ).rowcount
    statuses = "('skipped', 'failed', 'succeeded')" if rerun else "('skipped', 'failed')"
    reset = conn.execute(
        sa.text(
            f"""
            UPDATE runs SET status = 'pending', reason = :reason, error = NULL
            WHERE model_id = :model_id AND job = :job AND status IN {statuses}
              AND window_start >= to_timestamp(floor(extract(epoch FROM CAST(:start AS
                    timestamptz)) / :w) * :w)
              AND window_start < :end
            """
        ),
        {
            "model_id": model_id,
            "job": JOB_WINDOW,
            "w": window_seconds,
            "start": start,
            "end": end,
            "reason": BACKFILL_REASON,
        },
    ).rowcount
    return int(created or 0) + int(reset or 0)


def run_claimed(engine: sa.Engine, claim: Claim, job: str, work: Callable[[], str]) -> None:
    """Do a claimed run's ``work`` (which completes the run and returns a log summary).

    A lost lease is only logged: whoever took the window over completes it. Any other failure
    is recorded on the run (retried later, up to the attempt limit); if even that fails, the
    lease simply expires and another worker retries.
    """
    label = f"{job} {claim.model_id}/{claim.window_start:%Y-%m-%d %H:%M}"
    try:
        log.info("%s: %s", label, work())
    except LeaseLost as exc:
        log.warning("%s", exc)
    except Exception as exc:
        error = describe_db_error(exc) if isinstance(exc, sa.exc.DBAPIError) else repr(exc)
        log.exception("%s failed", label)
        try:
            with engine.begin() as conn:
                fail(conn, claim, error)
        except Exception:
            log.exception("could not record the failure (the lease will expire)")
