"""Scheduler tick steps for alerts, shaped like ``monitor.jobs.tick`` steps.

Register them with two entries in ``monitor.jobs.tick.STEPS`` (after the window steps)::

    "alerts": "monitor.alerts.steps:evaluate_step",
    "deliveries": "monitor.alerts.steps:deliver_step",

Each takes the tick context (only ``ctx.engine`` is used, so alerts never import the jobs
package) and returns the work it did, so ``run_until_idle`` stops once nothing changes.
"""

from __future__ import annotations

import logging
from typing import Any

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts

log = logging.getLogger(__name__)


def evaluate_step(ctx: Any) -> int:
    summary = evaluate_alerts(ctx.engine)
    if summary.fired or summary.resolved or summary.notifications:
        log.info(
            "alerts: %d fired, %d resolved, %d notifications (%d deliveries)",
            summary.fired,
            summary.resolved,
            summary.notifications,
            summary.deliveries,
        )
    return summary.fired + summary.resolved + summary.notifications


def deliver_step(ctx: Any) -> int:
    summary = deliver_due(ctx.engine)
    if summary.claimed:
        log.info(
            "deliveries: %d delivered, %d retrying, %d failed",
            summary.delivered,
            summary.retrying,
            summary.failed,
        )
    return summary.delivered + summary.failed
