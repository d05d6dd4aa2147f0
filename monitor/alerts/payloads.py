"""The event a notification carries, and its Alertmanager (version 4) rendering.

The event is what the outbox stores (``deliveries.payload``) and what the webhook channel sends
as its body, in the Standard Webhooks envelope ``{"type", "timestamp", "data"}``. Channels
render it (Slack blocks, Alertmanager JSON) at send time, so a replay sends the same content.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from monitor.settings import get_settings

FIRING = "drift.alert.firing"
RESOLVED = "drift.alert.resolved"
TEST = "drift.alert.test"
MAX_EVENT_BYTES = 20_000
"""An event stays under this (JSON): a group of hundreds of alerts is summarised (counts, the
first alerts, a link to the rest) instead of sent whole."""
ALERTS_BUDGET = 15_000  # of which the alerts may take this much
TEXT_LIMIT = 1000  # one label or annotation value in an event
CORE_LABELS = ("alertname", "model", "severity", "metric", "column", "segment")


def new_event_id(now: datetime | None = None) -> str:
    """A unique, time-ordered id (``msg_`` + ms timestamp + random): the ``webhook-id``."""
    moment = now or datetime.now(UTC)
    return f"msg_{int(moment.timestamp() * 1000):012x}{secrets.token_hex(8)}"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def model_url(model_name: str) -> str:
    """The dashboard page of a model (the link every notification carries)."""
    return f"{get_settings().base_url.rstrip('/')}/models/{quote(model_name, safe='')}"


def common_labels(alerts: Sequence[dict[str, Any]]) -> dict[str, str]:
    if not alerts:
        return {}
    first = dict(alerts[0]["labels"])
    return {k: val for k, val in first.items() if all(a["labels"].get(k) == val for a in alerts)}


def _size(obj: Any) -> int:
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str))


def _cut_texts(values: dict[str, Any], keep: Sequence[str] | None = None) -> dict[str, Any]:
    items = values.items() if keep is None else ((k, values[k]) for k in keep if k in values)
    return {
        str(k): (v[: TEXT_LIMIT - 1] + "…" if isinstance(v, str) and len(v) > TEXT_LIMIT else v)
        for k, v in items
    }


def _fit(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert with long texts cut; one still too large keeps only its core labels and its
    summary and description."""
    out = {
        **alert,
        "labels": _cut_texts(alert.get("labels") or {}),
        "annotations": _cut_texts(alert.get("annotations") or {}),
    }
    if _size(out) > ALERTS_BUDGET // 4:
        out["labels"] = _cut_texts(alert.get("labels") or {}, CORE_LABELS)
        out["annotations"] = _cut_texts(
            alert.get("annotations") or {}, ("summary", "description", "late")
        )
    return out


def build_event(
    *,
    event_id: str,
    now: datetime,
    model: dict[str, Any],
    rule: dict[str, Any],
    alerts: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The envelope for one group notification (alerts already serialised). Firing alerts come
    first; ``counts`` covers them all, ``alerts`` as many as fit in :data:`ALERTS_BUDGET`
    (``truncated_alerts`` says how many were left out, ``alerts_url`` lists them all)."""
    ordered = sorted(
        alerts, key=lambda a: (a["status"] != "firing", a.get("column") or "", a.get("segment"))
    )
    firing = sum(1 for a in ordered if a["status"] == "firing")
    kept: list[dict[str, Any]] = []
    used = 0
    for alert in ordered:
        fitted = _fit(alert)
        size = _size(fitted) + 1
        if kept and used + size > ALERTS_BUDGET:
            break
        kept.append(fitted)
        used += size
    base = get_settings().base_url.rstrip("/")
    return {
        "type": FIRING if firing else RESOLVED,
        "timestamp": iso(now),
        "data": {
            "id": event_id,
            "status": "firing" if firing else "resolved",
            "group_key": f"model={model['name']}/rule={rule['name']}",
            "model": model,
            "rule": rule,
            "url": model_url(model["name"]),
            "alerts_url": f"{base}/alerts?model={quote(str(model['name']), safe='')}",
            "counts": {"firing": firing, "resolved": len(ordered) - firing},
            "common_labels": _cut_texts(common_labels(ordered)),
            "alerts": kept,
            "truncated_alerts": len(ordered) - len(kept),
        },
    }


def test_event(channel_name: str, now: datetime | None = None) -> dict[str, Any]:
    """A ``drift.alert.test`` event for ``monitor alerts test CHANNEL``."""
    moment = now or datetime.now(UTC)
    event_id = new_event_id(moment)
    labels = {"alertname": "test", "model": "test", "severity": "info"}
    return {
        "type": TEST,
        "timestamp": iso(moment),
        "data": {
            "id": event_id,
            "status": "firing",
            "group_key": f"test/{channel_name}",
            "model": {"id": None, "name": "test"},
            "rule": {
                "id": None,
                "name": "test",
                "metric": "test",
                "condition": "test",
                "severity": "info",
            },
            "url": get_settings().base_url,
            "counts": {"firing": 1, "resolved": 0},
            "common_labels": labels,
            "alerts": [
                {
                    "fingerprint": "test",
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"Test notification for channel {channel_name}"},
                    "column": "",
                    "segment": "",
                    "value": None,
                    "threshold": None,
                    "window_start": None,
                    "window_end": None,
                    "fired_window": None,
                    "started_at": iso(moment),
                    "resolved_at": None,
                    "resolve_reason": None,
                    "late": False,
                }
            ],
            "truncated_alerts": 0,
        },
    }


def alertmanager_payload(event: dict[str, Any], receiver: str) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) for tools that already read it."""
    data = event["data"]
    alerts = [
        {
            "status": a["status"],
            "labels": a["labels"],
            "annotations": a.get("annotations", {}),
            "startsAt": a.get("started_at") or data.get("timestamp"),
            "endsAt": a.get("resolved_at") or "0001-01-01T00:00:00Z",
            "generatorURL": data["url"],
            "fingerprint": a["fingerprint"],
        }
        for a in data["alerts"]
    ]
    group_labels = {
        k: data["common_labels"][k] for k in ("alertname", "model") if k in data["common_labels"]
    }
    return {
        "version": "4",
        "groupKey": data["group_key"],
        "truncatedAlerts": data.get("truncated_alerts", 0),
        "status": data["status"],
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": data["common_labels"],
        "commonAnnotations": common_labels(
            [{"labels": a.get("annotations", {})} for a in data["alerts"]]
        ),
        "externalURL": get_settings().base_url,
        "alerts": alerts,
    }
