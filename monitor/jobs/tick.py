"""One scheduler tick: a list of steps, each a small function of the tick's context.

Add a step with ONE entry in :data:`STEPS` (name -> ``module:function``); the function takes a
:class:`TickContext` and returns how many units of work it did (0 = nothing due), which is how
``monitor worker --until-idle`` knows when everything due is done. A failing step is logged and
the tick moves on: one broken step never stops the others.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from monitor.settings import Settings, get_settings

log = logging.getLogger(__name__)

STEPS: dict[str, str] = {
    "windows": "monitor.jobs.steps:create_windows",
    "compute": "monitor.jobs.steps:compute_windows",
    "performance": "monitor.jobs.performance:performance_step",
    "alerts": "monitor.alerts.steps:evaluate_step",
    "deliveries": "monitor.alerts.steps:deliver_step",
    "maintenance": "monitor.jobs.maintenance:maintenance_step",
}


def worker_id() -> str:
    """A lease owner name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class TickContext:
    engine: sa.Engine
    settings: Settings
    owner: str
    deadline: float | None = None  # time.monotonic() by which compute steps should stop
    state: dict[str, Any] = field(default_factory=dict)  # per-process memory between ticks

    def time_left(self) -> bool:
        return self.deadline is None or time.monotonic() < self.deadline


_loaded: dict[str, Callable[[TickContext], int]] = {}


def _step(spec: str) -> Callable[[TickContext], int]:
    if spec not in _loaded:
        module, attr = spec.split(":")
        _loaded[spec] = getattr(importlib.import_module(module), attr)
    return _loaded[spec]


def run_tick(ctx: TickContext, steps: dict[str, str] | None = None) -> dict[str, int]:
    """Run every step once; returns the work each step did (-1 when it failed)."""
    done: dict[str, int] = {}
    for name, spec in (STEPS if steps is None else steps).items():
        try:
            done[name] = int(_step(spec)(ctx) or 0)
        except Exception:
            log.exception("tick step %s failed", name)
            done[name] = -1
    ctx.state["last_tick"] = done
    return done


def run_until_idle(
    ctx: TickContext,
    *,
    max_ticks: int = 10_000,
    steps: dict[str, str] | None = None,
    totals: dict[str, int] | None = None,
    failed_steps: set[str] | None = None,
) -> int:
    """Tick until a tick finds nothing to do; returns the total work done (of ``steps``).

    ``totals``, when given, receives the work of each step (e.g. windows vs performance runs);
    ``failed_steps`` the names of the steps that raised in any tick (already logged).
    """
    total = 0
    for _ in range(max_ticks):
        done = run_tick(ctx, steps)
        if totals is not None:
            for name, n in done.items():
                totals[name] = totals.get(name, 0) + max(n, 0)
        if failed_steps is not None:
            failed_steps.update(name for name, n in done.items() if n < 0)
        work = sum(n for n in done.values() if n > 0)
        total += work
        if work == 0:
            break
    return total


def make_context(engine: sa.Engine | None = None, settings: Settings | None = None) -> TickContext:
    from monitor.storage.engine import get_engine

    return TickContext(
        engine=engine or get_engine(), settings=settings or get_settings(), owner=worker_id()
    )
