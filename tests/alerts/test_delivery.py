"""Delivery from the outbox to real HTTP receivers on 127.0.0.1, signatures verified with the
``standardwebhooks`` package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from tests.alerts.conftest import (
    HOUR,
    T0,
    add_rule,
    add_webhook,
    drift_rows,
    make_model,
    put_results,
)

ROOT = Path(__file__).resolve().parents[2]
RULE = {
    "name": "feature-drift",
    "metric": "feature_drift",
    "condition": "drifted",
    "group_wait": 0,
    "channels": ["*"],
}


def _fire(engine: sa.Engine, now: datetime, columns: tuple[str, ...] = ("income",)) -> None:
    model = make_model(engine)
    add_rule(engine, model, RULE)
    put_results(engine, model, T0, drift_rows(list(columns), True))
    summary = evaluate_alerts(engine, now=now)
    assert summary.deliveries >= 1


def _delivery(engine: sa.Engine) -> dict:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM deliveries ORDER BY id LIMIT 1")).one()
    return dict(row._mapping)


def _attempts(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT status_code, error FROM delivery_attempts ORDER BY id")
            )
        ]


def test_signed_event_reaches_receiver_and_verifies(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now, ("income", "age"))
    summary = deliver_due(engine, now=now)
    assert (summary.claimed, summary.delivered) == (1, 1)
    [request] = receiver.requests
    assert request["verify_error"] is None
    assert request["verified"]["type"] == "drift.alert.firing"
    headers = request["headers"]
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-id"] == request["verified"]["data"]["id"]
    assert abs(int(headers["webhook-timestamp"]) - now.timestamp()) < 60
    assert receiver.secret and receiver.secret.startswith("whsec_")
    data = request["verified"]["data"]
    assert {a["column"] for a in data["alerts"]} == {"income", "age"}
    assert data["model"]["name"] == "credit"
    delivery = _delivery(engine)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    # nothing left to send
    assert deliver_due(engine, now=now + timedelta(hours=1)).claimed == 0


def test_500_twice_then_200_is_delivered_once_with_one_id(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory(script=[(500, {}), (500, {}), (200, {})])
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    assert deliver_due(engine, now=now).retrying == 1
    first_retry = _delivery(engine)["next_attempt_at"]
    assert timedelta(seconds=4) <= first_retry - now <= timedelta(seconds=6)  # 5 s +- 20 %
    assert deliver_due(engine, now=now + timedelta(seconds=3)).claimed == 0  # not due yet
    assert deliver_due(engine, now=now + timedelta(seconds=7)).retrying == 1
    second_retry = _delivery(engine)["next_attempt_at"]
    assert timedelta(minutes=4) <= second_retry - now <= timedelta(minutes=7)
    assert deliver_due(engine, now=now + timedelta(minutes=7)).delivered == 1
    assert [r["answered"] for r in receiver.requests] == [500, 500, 200]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert all(r["verify_error"] is None for r in receiver.requests)
    assert len(receiver.accepted) == 1
    assert [a[0] for a in _attempts(engine)] == [500, 500, 200]
    assert _delivery(engine)["status"] == "delivered"


def test_429_retry_after_is_honoured(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory(script=[(429, {"Retry-After": "120"}), (200, {})])
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    deliver_due(engine, now=now)
    delivery = _delivery(engine)
    assert delivery["next_attempt_at"] - now == timedelta(seconds=120)
    assert delivery["last_status_code"] == 429
    assert deliver_due(engine, now=now + timedelta(seconds=100)).claimed == 0
    assert deliver_due(engine, now=now + timedelta(seconds=121)).delivered == 1


def test_huge_retry_after_is_capped(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    add_webhook(engine, "ops", receiver_factory(script=[(503, {"Retry-After": "999999"})]))
    now = datetime.now(UTC)
    _fire(engine, now)
    deliver_due(engine, now=now)
    assert _delivery(engine)["next_attempt_at"] - now == timedelta(hours=1)


def test_every_non_2xx_is_retried_and_only_410_disables_the_channel(
    alerts_env, receiver_factory
) -> None:
    """Standard Webhooks: any answer but a 2xx is retried on the schedule (a 404 or a 400 is a
    receiver's passing problem as much as a 503); a 410 Gone disables the channel at once."""
    engine = alerts_env
    receivers = {
        "bad-request": receiver_factory(script=[(400, {}), (200, {})]),
        "not-found": receiver_factory(script=[(404, {}), (200, {})]),
        "teapot": receiver_factory(script=[(418, {"Retry-After": "60"}), (200, {})]),
        "gone": receiver_factory(script=[(410, {})]),
    }
    for name, receiver in receivers.items():
        add_webhook(engine, name, receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    summary = deliver_due(engine, now=now)
    assert (summary.retrying, summary.failed, summary.channels_disabled) == (3, 1, ["gone"])
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.name, d.status, d.next_attempt_at, c.enabled FROM deliveries d "
                "JOIN channels c ON c.id = d.channel_id"
            )
        ).all()
    state = {r.name: (r.status, r.next_attempt_at - now, r.enabled) for r in rows}
    assert state["gone"][0] == "failed" and state["gone"][2] is False
    for name in ("bad-request", "not-found"):
        status, wait, enabled = state[name]
        assert status == "pending" and enabled
        assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)  # 5 s +- 20 %
    assert state["teapot"][:2] == ("pending", timedelta(seconds=60))  # Retry-After honoured
    assert deliver_due(engine, now=now + timedelta(seconds=61)).delivered == 3
    assert len(receivers["gone"].requests) == 1
    assert deliver_due(engine, now=now + timedelta(days=2)).claimed == 0


def test_redirect_is_not_followed(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    target = receiver_factory()
    redirecting = receiver_factory(script=[(307, {"Location": target.url})])
    add_webhook(engine, "ops", redirecting)
    now = datetime.now(UTC)
    _fire(engine, now)
    assert deliver_due(engine, now=now).retrying == 1
    assert target.requests == []
    delivery = _delivery(engine)
    assert delivery["status"] == "pending" and "redirect" in delivery["last_error"]


def test_failed_delivery_can_be_replayed(alerts_env, receiver_factory) -> None:
    from monitor.alerts.delivery import MAX_ATTEMPTS, replay_delivery
    from monitor.storage.engine import session_scope

    engine = alerts_env
    receiver = receiver_factory(script=[(500, {}), (200, {})])
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    with engine.begin() as conn:  # the retries are all used up but this last one
        conn.execute(sa.text("UPDATE deliveries SET attempts = :n"), {"n": MAX_ATTEMPTS - 1})
    deliver_due(engine, now=now)
    delivery = _delivery(engine)
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS
    with session_scope(engine) as session:
        replay_delivery(session, delivery["id"], now=now)
    assert deliver_due(engine, now=now + timedelta(seconds=1)).delivered == 1
    assert (
        receiver.requests[0]["headers"]["webhook-id"]
        == receiver.requests[1]["headers"]["webhook-id"]
    )


def test_restart_between_retries_delivers_from_a_new_process(
    alerts_env, receiver_factory, database_url
) -> None:
    """The first attempt fails in this process; a fresh process (a restarted service) claims
    the pending delivery from Postgres and delivers it, with the same webhook-id."""
    engine = alerts_env
    receiver = receiver_factory(script=[(503, {}), (200, {})])
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    assert deliver_due(engine, now=now).retrying == 1
    later = (now + timedelta(seconds=10)).isoformat()
    code = (
        "import json, sys; from datetime import datetime; import sqlalchemy as sa; "
        "from monitor.alerts.delivery import deliver_due; "
        f"e = sa.create_engine({database_url!r}); "
        f"s = deliver_due(e, now=datetime.fromisoformat({later!r})); "
        "print(json.dumps(s.__dict__))"
    )
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_WEBHOOK_ALLOW_PRIVATE": '["127.0.0.1"]',
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1])["delivered"] == 1
    assert [r["answered"] for r in receiver.requests] == [503, 200]
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert receiver.requests[1]["verify_error"] is None


def test_sender_dying_mid_send_is_reclaimed_after_its_lease(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    # a sender claimed the row and died before recording anything
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE deliveries SET status = 'sending', attempts = 1, lease_expires_at = :t"
            ),
            {"t": now + timedelta(seconds=60)},
        )
    assert deliver_due(engine, now=now + timedelta(seconds=30)).claimed == 0
    summary = deliver_due(engine, now=now + timedelta(seconds=61))
    assert summary.delivered == 1
    assert _delivery(engine)["attempts"] == 2


def test_deliveries_of_one_group_keep_their_order(alerts_env, receiver_factory) -> None:
    """A resolved notification never overtakes its firing one that is still being retried."""
    engine = alerts_env
    receiver = receiver_factory(script=[(503, {}), (200, {}), (200, {})])
    add_webhook(engine, "ops", receiver)
    model = make_model(engine)
    add_rule(engine, model, {**RULE, "group_interval": 0})
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = datetime.now(UTC)
    evaluate_alerts(engine, now=now)
    deliver_due(engine, now=now)  # firing: 503, retry in ~5 s
    put_results(engine, model, T0 + HOUR, drift_rows(["income"], False))
    evaluate_alerts(engine, now=now + timedelta(seconds=1))  # resolved: queued behind it
    assert deliver_due(engine, now=now + timedelta(seconds=2)).claimed == 0
    # once the firing one is through, the resolved one follows in the same call
    assert deliver_due(engine, now=now + timedelta(seconds=10)).delivered == 2
    types = [r["json"]["type"] for r in receiver.requests]
    assert types == ["drift.alert.firing", "drift.alert.firing", "drift.alert.resolved"]


def test_alertmanager_format(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "am", receiver, format="alertmanager")
    now = datetime.now(UTC)
    _fire(engine, now)
    deliver_due(engine, now=now)
    [request] = receiver.requests
    body = request["verified"]
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "am"
    assert body["commonLabels"]["alertname"] == "feature-drift"
    assert body["alerts"][0]["labels"]["column"] == "income"
    assert body["alerts"][0]["generatorURL"] == "http://monitor.test/models/credit"


def test_send_test_returns_the_receivers_answer(alerts_env, receiver_factory) -> None:
    from monitor.alerts.delivery import send_test

    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    outcome, event_id = send_test(engine, "ops")
    assert outcome.ok and outcome.status_code == 200 and outcome.response == "ok"
    [request] = receiver.requests
    assert request["verified"]["type"] == "drift.alert.test"
    assert request["headers"]["webhook-id"] == event_id
    assert _delivery(engine)["status"] == "delivered"


def test_secrets_are_encrypted_at_rest(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory()
    secret = add_webhook(engine, "ops", receiver)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM channels")).one()._mapping
    assert secret.encode() not in bytes(row["secret_encrypted"])
    assert receiver.url.encode() not in bytes(row["target_encrypted"])
    from monitor.alerts.channel_store import add_channel, get_channel, target_of
    from monitor.storage.engine import session_scope

    slack_url = receiver.url + "/T000/B000/XXXXXXXXXXXXXXXX"
    with session_scope(engine) as session:
        info, no_secret = add_channel(session, "team-slack", "slack", slack_url)
        target = target_of(get_channel(session, "team-slack"))
    assert no_secret is None
    assert target.url == slack_url
    assert "XXXX" not in info.target_display and info.target_display.endswith("...")


def test_slow_receiver_hits_the_total_timeout_and_is_retried(
    alerts_env, receiver_factory, monkeypatch
) -> None:
    import time

    from monitor.settings import get_settings

    monkeypatch.setenv("MONITOR_DELIVERY_TOTAL_TIMEOUT", "1")
    get_settings.cache_clear()
    engine = alerts_env
    receiver = receiver_factory(script=[(200, {}, 3.0), (200, {})])
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now)
    started = time.monotonic()
    summary = deliver_due(engine, now=now)
    assert time.monotonic() - started < 2.5
    assert summary.retrying == 1
    assert "timeout" in _delivery(engine)["last_error"]
    assert deliver_due(engine, now=now + timedelta(seconds=10)).delivered == 1


def test_tick_steps_report_their_work(alerts_env, receiver_factory) -> None:
    from types import SimpleNamespace

    from monitor.alerts.steps import deliver_step, evaluate_step

    engine = alerts_env
    add_webhook(engine, "ops", receiver_factory())
    model = make_model(engine)
    add_rule(engine, model, RULE)
    put_results(engine, model, T0, drift_rows(["income"], True))
    ctx = SimpleNamespace(engine=engine)
    assert evaluate_step(ctx) == 2  # one alert fired, one notification
    assert deliver_step(ctx) == 1
    assert (evaluate_step(ctx), deliver_step(ctx)) == (0, 0)


def test_concurrent_senders_never_send_one_delivery_twice(alerts_env, receiver_factory) -> None:
    """SKIP LOCKED claims: four senders draining twenty groups deliver each event once."""
    import threading

    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    model = make_model(engine)
    for i in range(20):
        add_rule(engine, model, {**RULE, "name": f"rule-{i:02d}"})
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = datetime.now(UTC)
    assert evaluate_alerts(engine, now=now).deliveries == 20
    barrier = threading.Barrier(4)
    summaries = []

    def sender() -> None:
        barrier.wait()
        summaries.append(deliver_due(engine, now=now, limit=5))

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == sum(s.delivered for s in summaries)
    deliver_due(engine, now=now)  # whatever a busy sender left over
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 20


def test_a_group_of_300_alerts_is_summarised_under_20_kb(alerts_env, receiver_factory) -> None:
    """Counts for all, as many alerts as fit, a link to the rest: not 105 KB of JSON."""
    engine = alerts_env
    receiver = receiver_factory()
    add_webhook(engine, "ops", receiver)
    now = datetime.now(UTC)
    _fire(engine, now, tuple(f"feature_with_a_long_name_{i:03d}" for i in range(300)))
    assert deliver_due(engine, now=now).delivered == 1
    [request] = receiver.requests
    assert request["verify_error"] is None
    assert len(request["body"].encode()) < 20_000
    data = request["json"]["data"]
    assert data["counts"] == {"firing": 300, "resolved": 0}
    assert len(data["alerts"]) + data["truncated_alerts"] == 300 and len(data["alerts"]) >= 10
    assert data["alerts_url"] == "http://monitor.test/alerts?model=credit"
    alert = data["alerts"][0]
    assert alert["window_end"] and alert["threshold"]["operator"] == "drifted"
