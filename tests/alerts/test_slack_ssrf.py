"""Slack messages (Block Kit, truncation, pacing, 429) and the SSRF guard."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from tests.alerts.conftest import T0, add_rule, drift_rows, make_model, put_results


def _slack(engine: sa.Engine, name: str, url: str) -> None:
    from monitor.alerts.channel_store import add_channel
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        add_channel(session, name, "slack", url)


def test_slack_block_kit_message_truncated_with_more(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory()
    _slack(engine, "ml-alerts", receiver.url)
    model = make_model(engine)
    add_rule(
        engine,
        model,
        {
            "name": "feature-drift",
            "metric": "feature_drift",
            "condition": "drifted",
            "group_wait": 0,
            "severity": "critical",
            "channels": ["ml-alerts"],
        },
    )
    put_results(engine, model, T0, drift_rows([f"feature_{i:03d}" for i in range(120)], True))
    now = datetime.now(UTC)
    evaluate_alerts(engine, now=now)
    assert deliver_due(engine, now=now).delivered == 1
    [request] = receiver.requests
    message = request["json"]
    blocks = message["blocks"]
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    assert "FIRING" in blocks[0]["text"]["text"] and "credit" in blocks[0]["text"]["text"]
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    assert "critical" in fields and "120 firing" in fields
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert all(len(s) <= 3000 for s in sections)
    listing = next(s for s in sections if "feature_000" in s)
    assert "wasserstein = 0.35 (threshold 0.1)" in listing
    assert listing.rstrip().splitlines()[-1].startswith("+") and "more" in listing
    shown = listing.count("• ")
    assert shown + int(listing.rsplit("+", 1)[1].split()[0]) == 120
    assert "<http://monitor.test/models/credit|" in sections[-1]
    assert message["text"].startswith("[FIRING:120]")


def test_slack_paced_one_per_second_and_429_honoured(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    receiver = receiver_factory(script=[(200, {}), (429, {"Retry-After": "30"}), (200, {})])
    _slack(engine, "ml-alerts", receiver.url)
    model = make_model(engine)
    for name in ("a", "b", "c"):
        add_rule(
            engine,
            model,
            {
                "name": name,
                "metric": "feature_drift",
                "condition": "drifted",
                "group_wait": 0,
                "channels": ["ml-alerts"],
            },
        )
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = datetime.now(UTC)
    assert evaluate_alerts(engine, now=now).deliveries == 3
    started = time.monotonic()
    summary = deliver_due(engine, now=now)
    elapsed = time.monotonic() - started
    # the first is sent, the second gets 429 (and the third is pushed behind the throttle)
    assert summary.delivered == 1 and summary.retrying == 1
    assert len(receiver.requests) == 2
    assert elapsed >= 0.95  # two messages to one webhook are >= 1 s apart
    with engine.connect() as conn:
        pending = (
            conn.execute(sa.text("SELECT next_attempt_at FROM deliveries WHERE status = 'pending'"))
            .scalars()
            .all()
        )
    assert len(pending) == 2 and all(p >= now + timedelta(seconds=30) for p in pending)
    assert deliver_due(engine, now=now + timedelta(seconds=20)).claimed == 0
    assert deliver_due(engine, now=now + timedelta(seconds=31)).delivered == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/",
        "http://[::1]:9/hook",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:9/",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ],
)
def test_ssrf_targets_refused_by_default(url: str) -> None:
    from monitor.alerts.ssrf import check_target
    from monitor.errors import InputError

    with pytest.raises(InputError):
        check_target(url, allow=[])


def test_allow_list_permits_named_hosts_and_networks() -> None:
    from monitor.alerts.ssrf import BlockedTarget, check_target

    check_target("http://127.0.0.1:9/hook", allow=["127.0.0.1"])
    check_target("http://10.1.2.3/hook", allow=["10.0.0.0/8"])
    check_target("http://localhost:9/hook", allow=["localhost", "::1", "127.0.0.1"])
    with pytest.raises(BlockedTarget):
        check_target("http://10.1.2.3/hook", allow=["127.0.0.1"])
    check_target("http://93.184.215.14/hook", allow=[])  # a public address passes


def test_blocked_channel_refused_at_add_and_at_send(
    alerts_env, receiver_factory, monkeypatch
) -> None:
    from monitor.alerts.channel_store import add_channel
    from monitor.errors import InputError
    from monitor.settings import get_settings
    from monitor.storage.engine import session_scope

    engine = alerts_env
    receiver = receiver_factory()
    with session_scope(engine) as session:
        add_channel(session, "ops", "webhook", receiver.url)
    monkeypatch.setenv("MONITOR_WEBHOOK_ALLOW_PRIVATE", "[]")
    get_settings.cache_clear()
    with pytest.raises(InputError, match="private"), session_scope(engine) as session:
        add_channel(session, "other", "webhook", "http://127.0.0.1:1/x")
    # a channel added while allowed is refused at send time once the allow-list no longer has it
    model = make_model(engine)
    add_rule(
        engine, model, {"name": "d", "metric": "feature_drift", "group_wait": 0, "channels": "*"}
    )
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = datetime.now(UTC)
    evaluate_alerts(engine, now=now)
    assert deliver_due(engine, now=now).failed == 1
    assert receiver.requests == []


def test_dns_rebinding_reaches_only_the_address_that_was_checked(alerts_env, monkeypatch) -> None:
    """A resolver that answers 127.0.0.1 (allowed) and then 127.0.0.2 (an internal service,
    not allowed): each connection resolves once and connects to the address it checked, so
    the internal service is never reached, whatever the resolver says next."""
    import socket as socket_module

    from tests.alerts.conftest import add_channel, recording_server

    with recording_server("127.0.0.1") as hook:
        port = hook.server_address[1]
        with recording_server("127.0.0.2", port) as internal:
            answers = ["127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"]
            asked: list[str] = []
            real = socket_module.getaddrinfo

            def rebinding(host, *args, **kwargs):
                if host != "hooks.example.test":
                    return real(host, *args, **kwargs)
                asked.append(answers[len(asked)])
                return real(asked[-1], *args, **kwargs)

            monkeypatch.setattr(socket_module, "getaddrinfo", rebinding)
            engine = alerts_env
            add_channel(engine, "ops", f"http://hooks.example.test:{port}/hook")  # lookup 1
            model = make_model(engine)
            add_rule(engine, model, {"name": "a", "metric": "feature_drift", "group_wait": 0,
                                     "channels": "*"})  # fmt: skip
            put_results(engine, model, T0, drift_rows(["income"], True))
            now = datetime.now(UTC)
            evaluate_alerts(engine, now=now)
            assert deliver_due(engine, now=now).delivered == 1  # lookup 2: 127.0.0.1
            assert internal.requests == []
            assert [r["host"] for r in hook.requests] == [f"hooks.example.test:{port}"]
            assert len(asked) == 2  # one lookup per connection: the one that was checked
            # the name now points inward: the next send is refused at connect time
            add_rule(engine, model, {"name": "b", "metric": "feature_drift", "group_wait": 0,
                                     "channels": "*"})  # fmt: skip
            evaluate_alerts(engine, now=now + timedelta(seconds=1))
            summary = deliver_due(engine, now=now + timedelta(seconds=1))
            assert summary.failed == 1 and len(asked) == 3
            assert internal.requests == []
            with engine.connect() as conn:
                error = conn.execute(
                    sa.text("SELECT last_error FROM deliveries ORDER BY id DESC LIMIT 1")
                ).scalar_one()
            assert "resolves to 127.0.0.2" in error


def test_ipv6_loopback_is_allowed_when_the_allow_list_names_it(alerts_env, monkeypatch) -> None:
    from monitor.alerts.ssrf import BlockedTarget, check_target
    from monitor.settings import get_settings
    from tests.alerts.conftest import add_channel, recording_server

    check_target("http://[::ffff:127.0.0.1]:9/", allow=["127.0.0.1"])  # mapped form of it
    check_target("http://[0:0:0:0:0:0:0:1]:9/", allow=["[::1]"])
    check_target("http://localhost:9/", allow=["127.0.0.1", "::1"])
    for url in ("http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://[::1]/"):
        with pytest.raises(BlockedTarget):
            check_target(url, allow=["203.0.113.0/24"])
    monkeypatch.setenv("MONITOR_WEBHOOK_ALLOW_PRIVATE", '["::1"]')
    get_settings.cache_clear()
    engine = alerts_env
    with recording_server("::1") as hook:
        add_channel(engine, "v6", f"http://[::1]:{hook.server_address[1]}/hook")
        model = make_model(engine)
        add_rule(engine, model, {"name": "a", "metric": "feature_drift", "group_wait": 0,
                                 "channels": "*"})  # fmt: skip
        put_results(engine, model, T0, drift_rows(["income"], True))
        now = datetime.now(UTC)
        evaluate_alerts(engine, now=now)
        assert deliver_due(engine, now=now).delivered == 1
        assert len(hook.requests) == 1


def _worst_event() -> dict:
    from monitor.alerts.payloads import build_event

    evil = "<!channel> <https://evil.example|click me> & <@U123>"
    alerts = []
    for i in range(120):
        column = f"{evil} feature {i} " + "x" * 900
        alerts.append(
            {
                "fingerprint": f"fp{i}",
                "status": "firing" if i % 3 else "resolved",
                "labels": {"alertname": "r" * 2100, "model": evil, "column": column},
                "annotations": {"summary": evil * 100, "description": f"{column}: {evil * 40}"},
                "column": column,
                "segment": f"region={evil}",
                "value": 0.5,
                "threshold": {"operator": ">", "value": 0.1},
                "window_start": None,
                "window_end": None,
                "started_at": None,
                "resolved_at": None,
            }
        )
    return build_event(
        event_id="msg_test",
        now=datetime.now(UTC),
        model={"id": 1, "name": evil + "m" * 300},
        rule={"id": 1, "name": evil + "r" * 2100, "metric": evil, "severity": "critical"},
        alerts=alerts,
    )


def test_slack_message_escapes_user_text_and_keeps_every_block_kit_limit() -> None:
    import re

    from monitor.alerts.channels.slack import render

    message = render(_worst_event())
    blocks = message["blocks"]
    assert len(blocks) <= 50 and len(message["text"]) <= 3000
    texts = [message["text"]]
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
            continue
        if "fields" in block:
            assert len(block["fields"]) <= 10
            for f in block["fields"]:
                assert len(f["text"]) <= 2000
                texts.append(f["text"])
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000
            texts.append(block["text"]["text"])
    links = []
    for text in texts:
        assert "<!channel>" not in text and "<@U123>" not in text and "<https://evil" not in text
        links += re.findall(r"<([^>]*)>", text)
        assert not re.search(r"&(?!amp;|lt;|gt;)", text)  # every & is an entity, none cut
    # the one link is ours: the dashboard, the model name percent-encoded in its URL
    [only] = links
    url, label = only.split("|")
    assert "/models/%3C%21channel%3E%20%3Chttps%3A%2F%2Fevil.example%7Cclick" in url
    assert label == "Open the dashboard"


def test_slack_needs_https_unless_the_host_is_allowed(alerts_env) -> None:
    from monitor.errors import InputError

    with pytest.raises(InputError, match="https"):
        _slack(alerts_env, "public-http", "http://93.184.215.14/services/T/B/X")
    _slack(alerts_env, "public-https", "https://93.184.215.14/services/T/B/X")
    _slack(alerts_env, "local-relay", "http://127.0.0.1:9/services/T/B/X")  # on the allow-list
