"""Alerts over windows computed by the real worker: a catch-up cut by the tick's deadline, and
traffic that stops. Rows go in through the SDK's Postgres writer, windows are claimed and
computed by the window job, and notifications reach a receiver that verifies signatures."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from monitor.jobs.baselines import register_baseline
from monitor.jobs.tick import TickContext, run_tick, worker_id
from monitor.settings import Settings
from tests.alerts.conftest import add_rule, add_webhook
from tests.jobs.helpers import HOUR, WINDOW_STEPS, baseline_frame, closed_hour, records, writer

COMPUTE = {k: WINDOW_STEPS[k] for k in ("windows", "compute")}


@dataclass
class DeadlineAfter(TickContext):
    """A tick whose compute deadline passes after ``per_tick`` windows: the clock is a count,
    so where the cut falls is the same on every run."""

    per_tick: int = 10
    used: int = 0

    def time_left(self) -> bool:
        self.used += 1
        return self.used <= self.per_tick


def _seed(engine: sa.Engine, database_url: str, model: str, first: datetime) -> None:
    """24 hours: the oldest 6 drift (x shifted by 1 sd), then clean, the last 4 without traffic."""
    register_baseline(baseline_frame(2_000), model=model, version="v1", engine=engine)
    with writer(database_url) as w:
        for h in range(20):
            rows = records(first + h * HOUR, 150, seed=h, shift=1.0 if h < 6 else 0.0,
                           prefix=model)  # fmt: skip
            w.write_predictions(model, "v1", rows)


def test_a_catch_up_cut_by_the_deadline_alerts_every_model(
    alerts_env, database_url, receiver_factory
) -> None:
    """Two identical models catch up 24 windows, newest first, ten windows a tick; the alert
    evaluation runs between ticks. Both models' drift in their oldest windows is reported
    (firing, then resolved), and both report the traffic that stopped."""
    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    first = closed_hour() - 24 * HOUR
    timers = {"group_wait": 0, "group_interval": 0, "channels": "*"}
    for model in ("a", "b"):
        _seed(engine, database_url, model, first)
        with engine.connect() as conn:
            model_id = conn.execute(
                sa.text("SELECT id FROM models WHERE name = :n"), {"n": model}
            ).scalar_one()
        add_rule(engine, model_id, {"name": "x-drift", "metric": "feature_drift",
                                    "columns": "x", "for": 2, "of": 3, "resolve_after": 2,
                                    **timers})  # fmt: skip
        add_rule(engine, model_id, {"name": "no-traffic", "metric": "volume",
                                    "condition": "<= 0", "for": 2, "of": 2, **timers})  # fmt: skip
    settings = Settings(multivariate_methods=[], min_segment_rows=10_000, lease_seconds=60)
    ctx = DeadlineAfter(engine=engine, settings=settings, owner=worker_id())
    clock = datetime.now(UTC)
    ticks = 0
    while True:
        ctx.used = 0
        done = run_tick(ctx, COMPUTE)
        assert done["compute"] >= 0
        clock += timedelta(seconds=30)
        evaluate_alerts(engine, now=clock)
        deliver_due(engine, now=clock)
        ticks += 1
        if done["compute"] == 0 or ticks > 10:
            break
    assert ticks >= 5  # 48 windows, ten a tick: the deadline cut the catch-up
    for _ in range(2):  # resolutions told after their firing (group_interval 0)
        clock += timedelta(seconds=30)
        evaluate_alerts(engine, now=clock)
        deliver_due(engine, now=clock)
    told = Counter(
        (r["json"]["data"]["model"]["name"], r["json"]["data"]["rule"]["name"], r["json"]["type"])
        for r in receiver.requests
    )
    assert all(r["verify_error"] is None for r in receiver.requests)
    for model in ("a", "b"):
        assert told[(model, "x-drift", "drift.alert.firing")] == 1, told
        assert told[(model, "x-drift", "drift.alert.resolved")] == 1, told
        assert told[(model, "no-traffic", "drift.alert.firing")] == 1, told
    with engine.connect() as conn:
        episodes = conn.execute(
            sa.text(
                "SELECT m.name, a.fired_window, a.state FROM alerts a "
                "JOIN models m ON m.id = a.model_id JOIN alert_rules r ON r.id = a.rule_id "
                "WHERE r.name = 'x-drift' ORDER BY m.name"
            )
        ).all()
    assert [(e.name, e.fired_window, e.state) for e in episodes] == [
        ("a", first + HOUR, "resolved"),
        ("b", first + HOUR, "resolved"),
    ]
