"""APScheduler as a ticker only: one interval job that runs :func:`monitor.jobs.tick.run_tick`.

The job store is in memory and holds nothing of value: which windows are due, claimed or done
lives in the ``runs`` table. Job defaults are explicit because APScheduler's own
(``misfire_grace_time=1``, ``coalesce=True``) are wrong for us by accident rather than by design:
a tick that fires late should still run (grace = one tick), ticks queued behind a slow one
collapse into one (coalesce: the next tick catches up on every window anyway), and one tick
runs at a time per process (``max_instances=1``).
"""

from __future__ import annotations

import logging
from typing import Any

from monitor.jobs.tick import TickContext, run_tick

log = logging.getLogger(__name__)


def job_defaults(tick_seconds: int) -> dict[str, Any]:
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": max(tick_seconds, 1)}


def _tick(ctx: TickContext) -> None:
    import time

    ctx.deadline = time.monotonic() + max(ctx.settings.tick_seconds * 10, 60)
    run_tick(ctx)


def make_scheduler(ctx: TickContext, *, background: bool) -> Any:
    """A scheduler ticking every ``tick_seconds`` (first tick immediately)."""
    from datetime import UTC, datetime

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = BackgroundScheduler if background else BlockingScheduler
    tick = ctx.settings.tick_seconds
    scheduler = cls(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults=job_defaults(tick),
        timezone=UTC,
    )
    scheduler.add_job(
        _tick,
        "interval",
        seconds=tick,
        args=[ctx],
        id="tick",
        name="monitor tick",
        next_run_time=datetime.now(UTC),
    )
    return scheduler
