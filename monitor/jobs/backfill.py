"""Backfill: (re)compute a model's windows over a date range, idempotently.

Windows are requested in the ``runs`` table and then processed through the same claims as the
worker, so a backfill running beside workers (or beside another backfill of the same range)
never computes a window twice at once and never duplicates results. Without ``rerun`` windows
already computed are left alone, so running the same backfill again does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError
from monitor.jobs import runs
from monitor.jobs.steps import process_one
from monitor.jobs.tick import TickContext
from monitor.storage.vocabulary import JOB_WINDOW


@dataclass
class BackfillReport:
    requested: int
    computed: int
    remaining: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    """Windows of the range whose run is failed when the backfill ends (window_start, attempt,
    error): computed here or earlier, they have no results."""


def _open_count(conn: sa.Connection, model_id: int, start: datetime, end: datetime) -> int:
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM runs WHERE model_id = :m AND job = :job AND window_start"
                " >= :s AND window_start < :e AND status IN ('pending', 'stale', 'running')"
            ),
            {"m": model_id, "job": JOB_WINDOW, "s": start, "e": end},
        ).scalar_one()
    )


def _failed(
    conn: sa.Connection, model_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in conn.execute(
            sa.text(
                "SELECT window_start, attempt, error FROM runs WHERE model_id = :m AND job = :job"
                " AND window_start >= :s AND window_start < :e AND status = 'failed'"
                " ORDER BY window_start"
            ),
            {"m": model_id, "job": JOB_WINDOW, "s": start, "e": end},
        ).mappings()
    ]


def backfill(
    ctx: TickContext,
    model: str,
    start: datetime,
    end: datetime,
    *,
    rerun: bool = False,
    on_window: Callable[[int, int], None] | None = None,
    wait_seconds: float = 600.0,
) -> BackfillReport:
    """Compute every window of ``model`` in ``[start, end)``; ``on_window(done, total)``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("backfill bounds need a time zone (UTC)")
    if end <= start:
        raise InputError("--to must be after --from")
    with ctx.engine.begin() as conn:
        row = conn.execute(
            sa.text("SELECT id, window_seconds FROM models WHERE name = :n"), {"n": model}
        ).first()
        if row is None:
            raise NotFoundError(f"no model named {model!r}")
        model_id, window_seconds = int(row[0]), int(row[1])
        aligned = datetime.fromtimestamp(
            start.timestamp() // window_seconds * window_seconds, tz=start.tzinfo
        )
        requested = runs.request_windows(
            conn,
            model_id=model_id,
            window_seconds=window_seconds,
            start=start,
            end=end,
            rerun=rerun,
        )
    with ctx.engine.connect() as conn:
        total = _open_count(conn, model_id, aligned, end)
    computed = 0
    deadline = time.monotonic() + wait_seconds
    while True:
        claim = process_one(ctx, model_id=model_id, start=aligned, end=end)
        if claim is not None:
            computed += 1
            if on_window:
                on_window(computed, total)
            continue
        with ctx.engine.connect() as conn:
            remaining = _open_count(conn, model_id, aligned, end)
        if remaining == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # windows held by other workers: wait for them (or their leases)
    with ctx.engine.connect() as conn:
        failed = _failed(conn, model_id, aligned, end)
    return BackfillReport(requested, computed, remaining, failed)
