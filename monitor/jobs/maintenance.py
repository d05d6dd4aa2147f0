"""Upkeep of raw data: create day partitions ahead, drop those past the retention.

Only raw rows (``predictions`` partitions) age out; window profiles and results are kept, which
is what lets the dashboard and long-range drift outlive the raw data. The step runs at most once
an hour per worker; concurrent workers are safe (partition creation takes a transaction-level
advisory lock, drops are ``IF EXISTS``).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from monitor.jobs.tick import TickContext
from monitor.storage.partitions import drop_before, ensure_partitions

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600


def run_maintenance(ctx: TickContext) -> tuple[list[object], list[object]]:
    """Create partitions for the coming days, drop raw partitions older than the retention."""
    settings = ctx.settings
    with ctx.engine.begin() as conn:
        created = ensure_partitions(conn, ahead_days=settings.partitions_ahead_days)
    cutoff = datetime.now(UTC).date() - timedelta(days=settings.retention_days)
    with ctx.engine.begin() as conn:
        dropped = drop_before(conn, cutoff)
    if created or dropped:
        log.info("partitions: created %s, dropped %s", created, dropped)
    return list(created), list(dropped)


def maintenance_step(ctx: TickContext) -> int:
    last = ctx.state.get("maintenance_at")
    if last is not None and time.monotonic() - last < INTERVAL_SECONDS:
        return 0
    ctx.state["maintenance_at"] = time.monotonic()
    run_maintenance(ctx)
    return 0
