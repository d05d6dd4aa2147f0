"""Rule evaluation and the Alertmanager-style lifecycle, over real results rows in Postgres."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import yaml

from monitor.alerts.evaluate import evaluate_alerts
from monitor.alerts.payloads import iso
from tests.alerts.conftest import (
    HOUR,
    T0,
    add_rule,
    add_webhook,
    drift_rows,
    make_model,
    put_results,
)

DRIFT_RULE = {
    "name": "feature-drift",
    "metric": "feature_drift",
    "condition": "drifted",
    "for": 2,
    "of": 3,
    "resolve_after": 2,
    "group_wait": "30s",
    "group_interval": "5m",
    "repeat_interval": "4h",
    "channels": ["*"],
}


def _alerts(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT column_name, state FROM alerts ORDER BY column_name, id")
            )
        ]


def _deliveries(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text(
                    "SELECT event_id, event_type, payload, channel_id FROM deliveries ORDER BY id"
                )
            )
        ]


def test_k_of_n_fires_then_resolves_after_m_clean_windows(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, DRIFT_RULE)
    add_webhook(engine, "ops", receiver_factory())
    cols = ["income", "age"]
    now = T0 + 10 * HOUR
    # window 0 drifts, window 1 clean: 1 of 3 breaching -> nothing
    put_results(engine, model, T0, drift_rows(cols, True))
    put_results(engine, model, T0 + HOUR, drift_rows(cols, False))
    evaluate_alerts(engine, now=now)
    assert _alerts(engine) == []
    # window 2 drifts: 2 of the last 3 -> firing (income and age), one event each
    put_results(engine, model, T0 + 2 * HOUR, drift_rows(cols, True))
    summary = evaluate_alerts(engine, now=now)
    assert summary.fired == 2
    assert _alerts(engine) == [("age", "firing"), ("income", "firing")]
    # re-evaluating the same windows changes nothing
    again = evaluate_alerts(engine, now=now + timedelta(seconds=1))
    assert (again.fired, again.resolved) == (0, 0)
    # one clean window is not enough (resolve_after 2)
    put_results(engine, model, T0 + 3 * HOUR, drift_rows(cols, False))
    assert evaluate_alerts(engine, now=now + timedelta(minutes=1)).resolved == 0
    put_results(engine, model, T0 + 4 * HOUR, drift_rows(cols, False))
    assert evaluate_alerts(engine, now=now + timedelta(minutes=2)).resolved == 2
    assert _alerts(engine) == [("age", "resolved"), ("income", "resolved")]
    with engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT from_state, to_state FROM alert_events ORDER BY id")
        ).all()
    assert [tuple(e) for e in events] == [
        (None, "firing"),
        (None, "firing"),
        ("firing", "resolved"),
        ("firing", "resolved"),
    ]
    # drift comes back: a new episode (new row) for the same fingerprint
    put_results(engine, model, T0 + 5 * HOUR, drift_rows(cols, True))
    put_results(engine, model, T0 + 6 * HOUR, drift_rows(cols, True))
    assert evaluate_alerts(engine, now=now + timedelta(minutes=3)).fired == 2
    assert [s for _, s in _alerts(engine)].count("firing") == 2


def test_fifty_drifting_features_make_one_grouped_notification(
    alerts_env, receiver_factory
) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1})
    add_webhook(engine, "ops", receiver_factory())
    cols = [f"f{i:02d}" for i in range(50)]
    put_results(engine, model, T0, drift_rows(cols, True))
    now = T0 + 2 * HOUR
    first = evaluate_alerts(engine, now=now)
    assert first.fired == 50
    assert _deliveries(engine) == []  # group_wait (30 s) not over yet
    evaluate_alerts(engine, now=now + timedelta(seconds=31))
    deliveries = _deliveries(engine)
    assert len(deliveries) == 1
    payload = deliveries[0]["payload"]
    assert payload["type"] == "drift.alert.firing"
    assert payload["data"]["counts"] == {"firing": 50, "resolved": 0}
    shown = payload["data"]["alerts"]
    assert len(shown) + payload["data"]["truncated_alerts"] == 50 and len(shown) >= 10
    assert payload["data"]["url"] == "http://monitor.test/models/credit"
    assert payload["data"]["alerts_url"] == "http://monitor.test/alerts?model=credit"
    first = shown[0]
    assert "wasserstein = 0.35 (threshold 0.1)" in first["annotations"]["description"]
    assert first["threshold"] == {"operator": "drifted", "value": 0.1, "applies_to": "statistic"}
    assert first["window_start"] == iso(T0) and first["window_end"] == iso(T0 + HOUR)
    # nothing new: no notification before repeat_interval, one after it
    evaluate_alerts(engine, now=now + timedelta(minutes=30))
    assert len(_deliveries(engine)) == 1
    evaluate_alerts(engine, now=now + timedelta(hours=4, minutes=1))
    assert len(_deliveries(engine)) == 2


def test_resolved_notification_after_recovery(alerts_env, receiver_factory) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1, "resolve_after": 1})
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = T0 + 2 * HOUR
    evaluate_alerts(engine, now=now)
    evaluate_alerts(engine, now=now + timedelta(seconds=30))
    put_results(engine, model, T0 + HOUR, drift_rows(["income"], False))
    evaluate_alerts(engine, now=now + timedelta(minutes=1))
    assert _alerts(engine) == [("income", "resolved")]
    assert len(_deliveries(engine)) == 1  # group_interval (5 min) since the firing message
    evaluate_alerts(engine, now=now + timedelta(minutes=6))
    deliveries = _deliveries(engine)
    assert [d["event_type"] for d in deliveries] == ["drift.alert.firing", "drift.alert.resolved"]
    resolved_alert = deliveries[1]["payload"]["data"]["alerts"][0]
    assert resolved_alert["status"] == "resolved"
    assert resolved_alert["annotations"]["description"].startswith(
        "income: within limits for the last 1 window(s); wasserstein = 0.02 at "
    )
    assert deliveries[0]["event_id"] != deliveries[1]["event_id"]
    # and nothing more afterwards
    evaluate_alerts(engine, now=now + timedelta(hours=9))
    assert len(_deliveries(engine)) == 2


def test_silence_suppresses_until_it_ends(alerts_env, receiver_factory) -> None:
    from monitor.alerts.silences import create_silence, end_silence
    from monitor.storage.engine import session_scope

    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1})
    add_webhook(engine, "ops", receiver_factory())
    now = T0 + 2 * HOUR
    with session_scope(engine) as session:
        silence = create_silence(
            session,
            matchers=["model=credit", "column=~inc.*"],
            starts_at=now - HOUR,
            ends_at=now + HOUR,
            created_by="test",
            comment="known migration",
        )
        silence_id = silence.id
    put_results(engine, model, T0, drift_rows(["income", "age"], True))
    evaluate_alerts(engine, now=now)
    evaluate_alerts(engine, now=now + timedelta(minutes=1))
    deliveries = _deliveries(engine)
    assert len(deliveries) == 1
    assert [a["column"] for a in deliveries[0]["payload"]["data"]["alerts"]] == ["age"]
    # the silenced alert is still firing (state moves, only notifications are muted)
    assert ("income", "firing") in _alerts(engine)
    with session_scope(engine) as session:
        end_silence(session, silence_id, now=now + timedelta(minutes=2))
    evaluate_alerts(engine, now=now + timedelta(minutes=7))
    deliveries = _deliveries(engine)
    assert len(deliveries) == 2
    assert {a["column"] for a in deliveries[1]["payload"]["data"]["alerts"]} == {"age", "income"}


def test_silence_of_everything_sends_nothing(alerts_env, receiver_factory) -> None:
    from monitor.alerts.silences import create_silence
    from monitor.storage.engine import session_scope

    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1})
    add_webhook(engine, "ops", receiver_factory())
    now = T0 + 2 * HOUR
    with session_scope(engine) as session:
        create_silence(
            session,
            matchers=[{"name": "alertname", "value": "feature-drift"}],
            starts_at=now - HOUR,
            ends_at=now + HOUR,
        )
    put_results(engine, model, T0, drift_rows(["income"], True))
    evaluate_alerts(engine, now=now)
    evaluate_alerts(engine, now=now + timedelta(minutes=10))
    assert _deliveries(engine) == []
    assert _alerts(engine) == [("income", "firing")]


def test_threshold_rules_segments_and_insufficient_data(alerts_env) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(
        engine,
        model,
        {
            "name": "slow",
            "metric": "latency_p95",
            "condition": "> 250",
            "severity": "critical",
            "channels": [],
        },
    )
    add_rule(
        engine,
        model,
        {
            "name": "share",
            "metric": "dataset_drift.share_drifted",
            "condition": ">= 0.5",
            "channels": [],
        },
    )
    put_results(
        engine,
        model,
        T0,
        [
            {"family": "operational", "metric": "latency_p95", "value": 300.0},
            {
                "family": "operational",
                "metric": "latency_p95",
                "value": 100.0,
                "segment": "region=eu",
            },
            {
                "family": "operational",
                "metric": "latency_p95",
                "value": 900.0,
                "segment": "region=us",
            },
            {"family": "dataset_drift", "metric": "share_drifted", "value": 0.6},
            {"family": "drift", "column": "income", "metric": "psi", "value": 0.4, "drifted": True},
        ],
    )
    # a newer window without enough data is skipped, not read as clean
    put_results(
        engine,
        model,
        T0 + HOUR,
        [
            {
                "family": "operational",
                "metric": "latency_p95",
                "value": None,
                "status": "insufficient_data",
            },
        ],
    )
    summary = evaluate_alerts(engine, now=T0 + 3 * HOUR)
    assert summary.fired == 3
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.name, a.segment, a.value, a.labels, a.annotations FROM alerts a "
                "JOIN alert_rules r ON r.id = a.rule_id ORDER BY r.name, a.segment"
            )
        ).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("share", "", 0.6),
        ("slow", "", 300.0),
        ("slow", "region=us", 900.0),
    ]
    assert rows[0][4]["drifted_columns"] == "income"
    assert rows[2][3]["segment"] == "region=us"
    assert rows[2][3]["severity"] == "critical"


def test_two_workers_never_double_notify(alerts_env, receiver_factory) -> None:
    """Concurrent evaluations of the same model: the advisory lock lets one do the work."""
    import threading

    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1, "group_wait": 0})
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income", "age"], True))
    summaries = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        summaries.append(evaluate_alerts(engine, now=T0 + 2 * HOUR))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(s.fired for s in summaries) == 2
    assert len(_deliveries(engine)) == 1
    assert all(not s.errors for s in summaries)


def test_catch_up_replays_an_episode_firing_then_resolved(alerts_env, receiver_factory) -> None:
    """Windows computed after downtime (or the demo's backfill) are walked in order: the
    episode in the middle fires and clears; receivers are told "firing" (after group_wait)
    and then "resolved" (group_interval later), never both at once and never a repeat."""
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, DRIFT_RULE)  # 2 of 3, resolve after 2, group_wait 30s, 5m
    add_webhook(engine, "ops", receiver_factory())
    for i in range(24):
        put_results(engine, model, T0 + i * HOUR, drift_rows(["income"], 6 <= i < 14))
    now = T0 + 30 * HOUR
    summary = evaluate_alerts(engine, now=now)
    assert (summary.fired, summary.resolved, summary.notifications) == (1, 0, 0)
    with engine.connect() as conn:
        fired, cleared, state = conn.execute(
            sa.text("SELECT fired_window, cleared_window, state FROM alerts")
        ).one()
    assert (fired, cleared, state) == (T0 + 7 * HOUR, T0 + 15 * HOUR, "firing")
    told = evaluate_alerts(engine, now=now + timedelta(seconds=30))
    assert (told.notifications, told.resolved) == (1, 1)  # told it fired, so it resolves
    assert evaluate_alerts(engine, now=now + timedelta(minutes=5)).notifications == 0
    assert evaluate_alerts(engine, now=now + timedelta(minutes=6)).notifications == 1
    deliveries = _deliveries(engine)
    assert [d["event_type"] for d in deliveries] == ["drift.alert.firing", "drift.alert.resolved"]
    resolved = deliveries[1]["payload"]["data"]["alerts"][0]
    assert resolved["fired_window"] == iso(T0 + 7 * HOUR)
    assert resolved["window_start"] == iso(T0 + 15 * HOUR) and resolved["value"] == 0.02
    with engine.connect() as conn:
        through = conn.execute(sa.text("SELECT evaluated_through FROM alert_rules")).scalar()
    assert through == T0 + 23 * HOUR
    again = evaluate_alerts(engine, now=now + timedelta(hours=9))
    assert (again.fired, again.resolved, again.notifications) == (0, 0, 0)


def test_description_reports_p_values_for_tests(alerts_env) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1, "channels": []})
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO results (model_id, window_start, window_end, family, column_name, "
                "metric, value, p_value, threshold, drifted) VALUES (:m, :ws, :we, 'drift', "
                "'channel', 'chi2_contingency', 4155.6, 1.5e-12, 0.01, true)"
            ),
            {"m": model, "ws": T0, "we": T0 + HOUR},
        )
    evaluate_alerts(engine, now=T0 + 2 * HOUR)
    with engine.connect() as conn:
        annotations = conn.execute(sa.text("SELECT annotations FROM alerts")).scalar_one()
    assert annotations["description"].startswith(
        "channel: chi2_contingency = 4156, p = 1.5e-12 (threshold 0.01)"
    )


def test_disabling_or_deleting_a_rule_tells_receivers_its_alerts_resolved(
    alerts_env, receiver_factory
) -> None:
    """A receiver told "firing" is told "resolved" even when the rule goes away: disabled (at
    the next evaluation) or deleted by a file's --prune (with the deletion)."""
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1, "group_wait": 0})
    rule = {"name": "kept", "metric": "feature_drift", "for": 1, "group_wait": 0, "channels": "*"}
    with session_scope(engine) as session:
        apply_rules_yaml(session, yaml.safe_dump({"model": "credit", "rules": [rule]}))
        apply_rules_yaml(
            session,
            yaml.safe_dump({"model": "credit", "rules": [{**rule, "name": "pruned"}]}),
        )
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income"], True))
    evaluate_alerts(engine, now=T0 + 2 * HOUR)
    assert len(_deliveries(engine)) == 3  # one firing per rule
    add_rule(engine, model, {**DRIFT_RULE, "for": 1, "of": 1, "enabled": False})
    assert evaluate_alerts(engine, now=T0 + 3 * HOUR).resolved == 1
    with session_scope(engine) as session:  # "kept" is deleted: the file lists only "pruned"
        assert apply_rules_yaml(
            session,
            yaml.safe_dump({"model": "credit", "rules": [{**rule, "name": "pruned"}]}),
            prune=True,
        ) == {"applied": 1, "deleted": 1}
    told = [
        (d["payload"]["data"]["rule"]["name"], d["event_type"],
         d["payload"]["data"]["alerts"][0]["resolve_reason"])
        for d in _deliveries(engine)[3:]
    ]  # fmt: skip
    assert told == [
        ("feature-drift", "drift.alert.resolved", "rule_disabled"),
        ("kept", "drift.alert.resolved", "rule_deleted"),
    ]
    assert ("income", "resolved") in _alerts(engine)


def test_a_recomputed_window_is_evaluated_again(alerts_env, receiver_factory) -> None:
    """A window recomputed with other results (late data) completes again: the rule evaluates
    it again, and an episode it now shows in the past is reported, marked late."""
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**ONE_OF_ONE, "group_wait": 0})
    add_webhook(engine, "ops", receiver_factory())
    for i in range(4):
        put_results(engine, model, T0 + i * HOUR, drift_rows(["income"], False))
    now = T0 + 5 * HOUR
    assert evaluate_alerts(engine, now=now).fired == 0
    put_results(engine, model, T0 + HOUR, drift_rows(["income"], True))  # recomputed: drifts
    assert evaluate_alerts(engine, now=now + timedelta(minutes=1)).fired == 1
    [firing] = _deliveries(engine)
    alert = firing["payload"]["data"]["alerts"][0]
    assert alert["late"] is True and alert["fired_window"] == iso(T0 + HOUR)
    assert evaluate_alerts(engine, now=now + timedelta(minutes=2)).fired == 0


def _told(engine: sa.Engine) -> list[tuple[str, dict[str, str]]]:
    """Each message: its type and {column: status} of its alerts."""
    return [
        (d["event_type"], {a["column"]: a["status"] for a in d["payload"]["data"]["alerts"]})
        for d in _deliveries(engine)
    ]


ONE_OF_ONE = {**DRIFT_RULE, "for": 1, "of": 1, "resolve_after": 1}


def test_a_catch_up_longer_than_repeat_interval_sends_one_message(
    alerts_env, receiver_factory
) -> None:
    """Repeats count from the real send time: a day of drifting windows evaluated at once is
    one "firing" (after group_wait), and the next one comes repeat_interval after it."""
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, ONE_OF_ONE)  # group_wait 30 s, repeat 4 h
    add_webhook(engine, "ops", receiver_factory())
    for i in range(24):
        put_results(engine, model, T0 + i * HOUR, drift_rows(["income"], True))
    now = T0 + 30 * HOUR
    for seconds in (0, 30, 31, 3600, 4 * 3600 + 29):
        evaluate_alerts(engine, now=now + timedelta(seconds=seconds))
    assert len(_deliveries(engine)) == 1
    evaluate_alerts(engine, now=now + timedelta(seconds=4 * 3600 + 30))
    assert [t for t, _ in _told(engine)] == ["drift.alert.firing", "drift.alert.firing"]


def test_a_member_resolving_while_the_group_fires_is_sent_at_group_interval(
    alerts_env, receiver_factory
) -> None:
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**ONE_OF_ONE, "group_wait": 0})  # group_interval 5 min
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income", "age"], True))
    now = T0 + 2 * HOUR
    evaluate_alerts(engine, now=now)
    put_results(engine, model, T0 + HOUR, drift_rows(["income"], False) + drift_rows(["age"], True))
    evaluate_alerts(engine, now=now + timedelta(minutes=1))  # income resolves
    assert len(_deliveries(engine)) == 1  # group_interval since the last message not over
    evaluate_alerts(engine, now=now + timedelta(minutes=5))
    assert _told(engine) == [
        ("drift.alert.firing", {"income": "firing", "age": "firing"}),
        ("drift.alert.firing", {"age": "firing", "income": "resolved"}),
    ]
    resolved = _deliveries(engine)[1]["payload"]["data"]["alerts"][1]
    assert resolved["value"] == 0.02 and resolved["resolve_reason"] == "clean"


def test_an_alert_resolving_while_silenced_is_told_resolved_when_the_silence_ends(
    alerts_env, receiver_factory
) -> None:
    from monitor.alerts.silences import create_silence, end_silence
    from monitor.storage.engine import session_scope

    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**ONE_OF_ONE, "group_wait": 0})
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income"], True))
    now = T0 + 2 * HOUR
    evaluate_alerts(engine, now=now)
    with session_scope(engine) as session:
        silence = create_silence(
            session, matchers=["column=income"], starts_at=now, ends_at=now + 2 * HOUR
        )
        silence_id = silence.id
    put_results(engine, model, T0 + HOUR, drift_rows(["income"], False))
    evaluate_alerts(engine, now=now + timedelta(minutes=10))
    assert _alerts(engine) == [("income", "resolved")]
    assert len(_deliveries(engine)) == 1  # silenced: nothing said yet
    with session_scope(engine) as session:
        end_silence(session, silence_id, now=now + timedelta(minutes=20))
    evaluate_alerts(engine, now=now + timedelta(minutes=21))
    assert _told(engine) == [
        ("drift.alert.firing", {"income": "firing"}),
        ("drift.alert.resolved", {"income": "resolved"}),
    ]
    evaluate_alerts(engine, now=now + timedelta(hours=9))
    assert len(_deliveries(engine)) == 2


def _runs(engine: sa.Engine, model: int, windows: range, status: str = "succeeded") -> None:
    with engine.begin() as conn:
        for i in windows:
            conn.execute(
                sa.text(
                    "INSERT INTO runs (model_id, job, window_start, window_end, status) "
                    "VALUES (:m, 'window', :ws, :we, :s) ON CONFLICT (model_id, job, window_start) "
                    "DO UPDATE SET status = EXCLUDED.status"
                ),
                {"m": model, "ws": T0 + i * HOUR, "we": T0 + (i + 1) * HOUR, "s": status},
            )


def test_an_alert_whose_data_stops_resolves_with_reason_no_data(
    alerts_env, receiver_factory
) -> None:
    """Traffic stops: windows keep completing (volume 0) but bring no drift result. After
    MONITOR_ALERT_NO_DATA_WINDOWS (3) finished windows without one, the drift alert resolves
    with reason no_data instead of repeating forever; windows still pending (a catch-up that
    has not reached them) do not count."""
    engine = alerts_env
    model = make_model(engine)
    add_rule(engine, model, {**ONE_OF_ONE, "group_wait": 0, "group_interval": 0})
    add_webhook(engine, "ops", receiver_factory())
    put_results(engine, model, T0, drift_rows(["income"], True))
    _runs(engine, model, range(1))
    now = T0 + 10 * HOUR
    evaluate_alerts(engine, now=now)
    volume_only = [{"family": "operational", "metric": "volume", "value": 0.0}]
    for i in (1, 2, 3):
        put_results(engine, model, T0 + i * HOUR, volume_only)
    _runs(engine, model, range(1, 4))
    _runs(engine, model, range(2, 3), status="pending")  # the catch-up has not reached it
    evaluate_alerts(engine, now=now + timedelta(minutes=1))
    assert _alerts(engine) == [("income", "firing")]
    _runs(engine, model, range(2, 3))
    evaluate_alerts(engine, now=now + timedelta(minutes=2))
    assert _alerts(engine) == [("income", "resolved")]
    assert _told(engine) == [
        ("drift.alert.firing", {"income": "firing"}),
        ("drift.alert.resolved", {"income": "resolved"}),
    ]
    resolved = _deliveries(engine)[1]["payload"]["data"]["alerts"][0]
    assert resolved["resolve_reason"] == "no_data"
    assert "no data in the 3 window(s) after" in resolved["annotations"]["description"]
