"""Generic webhook: the event as JSON, signed per the Standard Webhooks spec.

Headers ``webhook-id`` (the event id, stable across retries so receivers can deduplicate),
``webhook-timestamp`` (send time, seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256>``
over ``id.timestamp.body`` with the channel's ``whsec_`` secret; signing uses the
``standardwebhooks`` reference library. Option ``format: alertmanager`` sends Alertmanager's
version 4 payload instead of the event envelope (still signed).
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from monitor.alerts.channels import Outcome, Target
from monitor.alerts.channels.http import post
from monitor.alerts.payloads import alertmanager_payload
from monitor.alerts.ssrf import check_target
from monitor.errors import InputError

FORMATS = ("standard", "alertmanager")


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secret: str, event_id: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    moment = now or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, moment, body),
    }


def render_body(target: Target, event: dict[str, Any]) -> str:
    payload = event
    if target.options.get("format") == "alertmanager":
        payload = alertmanager_payload(event, target.name)
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False)


class WebhookChannel:
    kind = "webhook"
    min_interval = 0.0

    def validate(self, url: str, options: dict[str, Any]) -> None:
        check_target(url)
        fmt = options.get("format", "standard")
        if fmt not in FORMATS:
            raise InputError(f"webhook format {fmt!r}: one of {FORMATS}")

    def new_secret(self) -> str | None:
        return new_webhook_secret()

    def send(self, client: httpx.Client, target: Target, event: dict[str, Any]) -> Outcome:
        body = render_body(target, event)
        headers = {"content-type": "application/json"}
        if target.secret:
            headers = signed_headers(target.secret, event["data"]["id"], body)
        else:
            headers["webhook-id"] = event["data"]["id"]
        return post(client, target.url, body.encode(), headers)
