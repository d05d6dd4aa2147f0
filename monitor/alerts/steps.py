"""Scheduler tick steps for alerts, shaped like ``monitor.jobs.tick`` steps.

They are registered in ``monitor.jobs.tick.STEPS`` after the window and performance steps.
Each takes the tick context (only ``ctx.engine`` is used, so alerts never import the jobs
package) and returns the work it did, so ``run_until_idle`` stops once nothing changes.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from monitor.alerts.rules import ensure_default_rules
from monitor.storage.engine import session_scope
from monitor.storage.tables import AlertRule, Model

log = logging.getLogger(__name__)


def ensure_defaults_for_new_models(engine: sa.Engine) -> int:
    """Give every model that has no rules at all the default rules.

    Models appear on their own (the SDK registers them on first sight), so this runs each tick.
    A model whose rules were all deleted gets the defaults back: to mute a model, disable its
    rules or add a silence instead.
    """
    with session_scope(engine) as session:
        bare = session.scalars(
            sa.select(Model.id).where(~sa.exists().where(AlertRule.model_id == Model.id))
        ).all()
        return sum(ensure_default_rules(session, model_id) for model_id in bare)


def evaluate_step(ctx: Any) -> int:
    ensure_defaults_for_new_models(ctx.engine)
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
