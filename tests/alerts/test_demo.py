"""The demo's alert path: default rules, the in-process receiver, firing then resolved."""

from __future__ import annotations

from datetime import timedelta

from monitor.alerts.delivery import deliver_due
from monitor.alerts.evaluate import evaluate_alerts
from tests.alerts.conftest import HOUR, T0, drift_rows, make_model, put_results


def test_demo_receiver_gets_firing_then_resolved(alerts_env, tmp_path, monkeypatch) -> None:
    from monitor.alerts.demo import setup_demo_alerts
    from monitor.settings import get_settings

    monkeypatch.setenv("MONITOR_WEBHOOK_ALLOW_PRIVATE", "[]")  # the demo allows its own receiver
    get_settings.cache_clear()
    engine = alerts_env
    model = make_model(engine, "credit-default")
    demo = setup_demo_alerts(engine, "credit-default", tmp_path)
    try:
        features = ["income", "utilisation", "age", "purpose"]
        for i in range(30):
            drifting = ["income", "utilisation"] if 10 <= i < 20 else []
            rows = drift_rows(drifting, True) + drift_rows(
                [f for f in features if f not in drifting], False
            )
            rows.append({"family": "operational", "metric": "volume", "value": 500.0})
            put_results(engine, model, T0 + i * HOUR, rows)
        now = T0 + 31 * HOUR
        summary = evaluate_alerts(engine, now=now)
        assert summary.fired == 2 and not summary.errors
        # told "firing" after group_wait, "resolved" after group_interval
        assert evaluate_alerts(engine, now=now + timedelta(seconds=30)).resolved == 2
        evaluate_alerts(engine, now=now + timedelta(minutes=6))
        assert deliver_due(engine, now=now + timedelta(minutes=6)).delivered == 2
        received = demo.received()
        assert [r["event"]["type"] for r in received] == [
            "drift.alert.firing",
            "drift.alert.resolved",
        ]
        assert all(r["verified"] for r in received)
        firing = received[0]["event"]["data"]
        assert firing["rule"]["name"] == "feature-drift"
        assert {a["column"] for a in firing["alerts"]} == {"income", "utilisation"}
        # a second start re-points the same channel (same secret) at the new receiver
        demo.close()
        demo = setup_demo_alerts(engine, "credit-default", tmp_path)
        from monitor.alerts.delivery import send_test

        outcome, _ = send_test(engine, "demo-webhook")
        assert outcome.ok
        assert demo.received()[-1]["verified"] is True
    finally:
        demo.close()
