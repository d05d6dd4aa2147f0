"""The window steps of a tick: create due windows, then claim and compute them one by one."""

from __future__ import annotations

import logging
from datetime import datetime

from monitor.jobs import runs
from monitor.jobs.tick import TickContext

log = logging.getLogger(__name__)


def create_windows(ctx: TickContext) -> int:
    """Insert runs for closed windows; skip due windows older than the catch-up limit."""
    days = ctx.settings.catchup_max_age_days
    with ctx.engine.begin() as conn:
        created = runs.create_due_windows(conn, catchup_max_age_days=days)
        skipped = runs.skip_expired(conn, catchup_max_age_days=days)
    if created or skipped:
        log.info("windows: %d created, %d skipped past the catch-up limit", created, skipped)
    return 0  # creating rows is bookkeeping; the compute step reports the work


def process_one(
    ctx: TickContext,
    *,
    model_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> runs.Claim | None:
    """Claim the newest due window (optionally within a model and range) and compute it."""
    from monitor.jobs.window_job import run_window

    settings = ctx.settings
    with ctx.engine.begin() as conn:
        claim = runs.claim(
            conn,
            owner=ctx.owner,
            lease_seconds=settings.lease_seconds,
            model_id=model_id,
            start=start,
            end=end,
        )
    if claim is None:
        return None

    def work() -> str:
        output = run_window(
            ctx.engine,
            claim,
            lease_seconds=settings.lease_seconds,
            min_segment_rows=settings.min_segment_rows,
            multivariate_methods=settings.multivariate_methods,
        )
        return f"{output.rows} rows, {len(output.results)} results"

    runs.run_claimed(ctx.engine, claim, "window", work)
    return claim


def compute_windows(ctx: TickContext) -> int:
    """Compute due windows, newest first, until none is left or the tick's time is up."""
    done = 0
    while ctx.time_left():
        if process_one(ctx) is None:
            break
        done += 1
    return done
