"""Alerts in the demo: default rules for the demo model and a local webhook receiver.

``setup_demo_alerts`` starts a receiver on 127.0.0.1 (a free port, in a daemon thread of the
demo process), points a ``demo-webhook`` channel at it (a default channel, so the default
rules notify it; created with a fresh ``whsec_`` secret the first time; re-pointed on later
starts so its delivery history stays), and
appends every verified event to ``<home>/webhook-received.jsonl`` while logging one line per
event. The demo's process-local allow-list gains 127.0.0.1 for this: production settings are
untouched. The scheduler's tick (``evaluate_alerts`` + ``deliver_due``) does the rest.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from monitor.alerts.channel_store import (
    add_channel,
    get_channel,
    secret_of,
    set_default,
    set_target,
)
from monitor.alerts.channels.webhook import new_webhook_secret
from monitor.alerts.receiver import BackgroundReceiver, Received
from monitor.alerts.rules import ensure_default_rules, model_id_by_name
from monitor.errors import NotFoundError
from monitor.settings import get_settings
from monitor.storage.engine import session_scope

log = logging.getLogger(__name__)
CHANNEL = "demo-webhook"
LOG_FILE = "webhook-received.jsonl"


@dataclass
class DemoAlerts:
    receiver: BackgroundReceiver
    log_path: Path
    channel: str = CHANNEL

    @property
    def url(self) -> str:
        return self.receiver.url

    def received(self) -> list[dict[str, object]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def close(self) -> None:
        self.receiver.close()

    def state(self, engine: sa.Engine) -> dict[str, int]:
        """Alerts by state, with the cleared ones still to be told and the rules in error."""
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT count(*) FILTER (WHERE state = 'firing' AND cleared_window IS NULL),"
                    " count(*) FILTER (WHERE state = 'firing' AND cleared_window IS NOT NULL),"
                    " count(*) FILTER (WHERE state = 'resolved'),"
                    " count(*) FILTER (WHERE annotations ? 'late'),"
                    " (SELECT count(*) FROM alert_rules WHERE error IS NOT NULL)"
                    " FROM alerts"
                )
            ).one()
        keys = ("firing", "cleared_to_tell", "resolved", "late", "rule_errors")
        return dict(zip(keys, map(int, row), strict=True))


def _allow_loopback() -> None:
    settings = get_settings()
    if "127.0.0.1" not in settings.webhook_allow_private:
        settings.webhook_allow_private = [*settings.webhook_allow_private, "127.0.0.1"]


def setup_demo_alerts(engine: sa.Engine, model_name: str, home: Path) -> DemoAlerts:
    """Default rules for ``model_name`` and a running local receiver wired as a channel."""
    _allow_loopback()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / LOG_FILE
    lock = threading.Lock()

    with session_scope(engine) as session:
        ensure_default_rules(session, model_id_by_name(session, model_name))
        try:
            secret = secret_of(get_channel(session, CHANNEL))
        except NotFoundError:
            secret = None

    def on_request(received: Received) -> None:
        event = received.json() or {}
        data = event.get("data", {}) if isinstance(event, dict) else {}
        log.info(
            "demo webhook received %s %s (%s): %s firing, %s resolved, %s",
            received.webhook_id,
            event.get("type"),
            received.verdict,
            data.get("counts", {}).get("firing"),
            data.get("counts", {}).get("resolved"),
            data.get("group_key"),
        )
        record = {
            "received_at": received.received_at,
            "webhook_id": received.webhook_id,
            "verified": received.verified,
            "event": event,
        }
        with lock, log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    if secret is None:
        secret = new_webhook_secret()
        receiver = BackgroundReceiver(secret, on_request)
        with session_scope(engine) as session:
            add_channel(session, CHANNEL, "webhook", receiver.url, secret=secret, is_default=True)
    else:
        receiver = BackgroundReceiver(secret, on_request)
        with session_scope(engine) as session:
            set_target(session, CHANNEL, receiver.url)
            set_default(session, CHANNEL, True)
    return DemoAlerts(receiver=receiver, log_path=log_path)
