"""Slack incoming webhook: one Block Kit message per notification.

Header (status, model, rule), fields (severity, counts), then what drifted with the numbers,
one line per alert, truncated with "+N more", and a link to the dashboard. Delivery spaces
messages to one webhook at least one second apart (``min_interval``) and honours 429
Retry-After.

Everything a user controls (model, rule, feature, segment and category names, annotations) is
escaped for mrkdwn (``&``, ``<``, ``>``), so a feature named ``<!channel>`` cannot ping a
channel and ``<https://evil.example|click me>`` cannot pose as a link; the only links are the
ones built here. Every field is cut to Block Kit's limits after escaping (an entity is never
cut in half): Slack answers a message over a limit with a 400, and that message would never
arrive.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from monitor.alerts.channels import Outcome, Target
from monitor.alerts.channels.http import post
from monitor.alerts.ssrf import allow_list, allowed, check_target, check_url
from monitor.errors import InputError
from monitor.settings import get_settings

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks)
HEADER_LIMIT = 150  # header block, plain_text
SECTION_LIMIT = 3000  # section block text
FIELD_LIMIT = 2000  # each section field
MAX_FIELDS = 10
MAX_BLOCKS = 50
FALLBACK_LIMIT = 3000  # top-level text (notifications, unfurl-free clients)
LINE_LIMIT = 500
MAX_LINES = 40
EMOJI = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


def escape(text: Any) -> str:
    """mrkdwn escaping: Slack's three control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` (already escaped) in at most ``limit`` characters, ending with an ellipsis when
    cut, never inside an ``&amp;``-style entity."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + "…"


def mrkdwn(text: Any, limit: int) -> str:
    return cut(escape(text), limit)


def plain(text: Any, limit: int) -> str:
    """plain_text is not parsed for mentions or links: no escaping, only the length."""
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def link(url: str, label: str) -> str:
    """A link we build: the URL escaped (``&`` in a query), the label escaped."""
    return f"<{escape(url)}|{escape(label)}>"


def _line(alert: dict[str, Any]) -> str:
    labels = alert.get("labels", {})
    where = labels.get("column") or labels.get("metric", "")
    if alert.get("segment"):
        where += f" [{alert['segment']}]"
    mark = ":white_check_mark: " if alert.get("status") == "resolved" else ""
    detail = alert.get("annotations", {}).get("description", "")
    text = detail.split(": ", 1)[-1] if detail else f"value {alert.get('value')}"
    return f"• {mark}*{mrkdwn(where, 200)}* — {mrkdwn(text, LINE_LIMIT)}"


def alert_lines(alerts: list[dict[str, Any]], extra: int = 0, limit: int = SECTION_LIMIT) -> str:
    """Lines for the alerts within ``limit`` characters, ending "+N more" for the rest (and
    for ``extra`` alerts the event itself left out)."""
    out: list[str] = []
    used = 0
    for i, alert in enumerate(alerts):
        line = _line(alert)
        rest = len(alerts) - i + extra
        if len(out) >= MAX_LINES or used + len(line) + 1 + len(f"+{rest} more") > limit:
            out.append(f"+{rest} more")
            return "\n".join(out)
        out.append(line)
        used += len(line) + 1
    if extra:
        out.append(f"+{extra} more")
    return "\n".join(out)


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": cut(f"*{title}*\n{value}", FIELD_LIMIT)}


def render(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    rule = data["rule"]
    severity = str(rule.get("severity", "warning"))
    status = str(data["status"]).upper()
    if event["type"].endswith(".test"):
        status = "TEST"
    counts = data["counts"]
    model = data["model"]["name"]
    title = plain(f"{status}: {model} · {rule['name']}", HEADER_LIMIT)
    lines = alert_lines(data["alerts"], extra=int(data.get("truncated_alerts", 0)))
    summary = next(
        (
            a.get("annotations", {}).get("summary")
            for a in data["alerts"]
            if a.get("annotations", {}).get("summary")
        ),
        None,
    )
    fields = [
        _field("Severity", f"{EMOJI.get(severity, '')} {escape(severity)}"),
        _field("Model", escape(model)),
        _field("Rule", f"{escape(rule['name'])} ({escape(rule.get('metric', ''))})"),
        _field("Alerts", f"{counts['firing']} firing, {counts['resolved']} resolved"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {"type": "section", "fields": fields[:MAX_FIELDS]},
    ]
    if summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(summary, SECTION_LIMIT)}}
        )
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines}})
    dashboard = link(str(data["url"]), "Open the dashboard")
    if len(dashboard) > SECTION_LIMIT:  # a model name of thousands of characters
        dashboard = link(f"{get_settings().base_url.rstrip('/')}/alerts", "Open the alerts")
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": dashboard}})
    fallback = mrkdwn(
        f"[{status}:{counts['firing']}] {model} {rule['name']} ({severity})", FALLBACK_LIMIT
    )
    return {"text": fallback, "blocks": blocks[:MAX_BLOCKS]}


class SlackChannel:
    kind = "slack"
    min_interval = 1.0

    def validate(self, url: str, options: dict[str, Any]) -> None:
        """An https URL (it is a credential), unless its host is on the private allow-list
        (a local relay or test receiver); then the SSRF check."""
        host, _ = check_url(url)
        addresses = check_target(url)
        allow = allow_list()
        if not url.lower().startswith("https://") and not all(
            allowed(host, ip, allow) for ip in addresses
        ):
            raise InputError(
                "a Slack webhook URL must be https:// (plain http only for hosts on "
                "MONITOR_WEBHOOK_ALLOW_PRIVATE)"
            )

    def new_secret(self) -> str | None:
        return None

    def send(self, client: httpx.Client, target: Target, event: dict[str, Any]) -> Outcome:
        body = json.dumps(render(event), separators=(",", ":"), ensure_ascii=False)
        return post(client, target.url, body.encode(), {"content-type": "application/json"})
