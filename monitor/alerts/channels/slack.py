"""Slack incoming webhook: one Block Kit message per notification.

Header (status, model, rule), fields (severity, counts), then what drifted with the numbers,
one line per alert, truncated with "+N more" to stay within Slack's limits (3000 characters
per section, 50 blocks, 150 for a header), and a link to the dashboard. Delivery spaces messages
to one webhook at least one second apart (``min_interval``) and honours 429 Retry-After.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from monitor.alerts.channels import Outcome, Target
from monitor.alerts.channels.http import post
from monitor.alerts.ssrf import check_target

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
MAX_LINES = 40
EMOJI = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


def _line(alert: dict[str, Any]) -> str:
    labels = alert["labels"]
    where = labels.get("column") or labels.get("metric", "")
    if alert.get("segment"):
        where += f" [{alert['segment']}]"
    mark = ":white_check_mark: " if alert["status"] == "resolved" else ""
    detail = alert.get("annotations", {}).get("description", "")
    text = detail if detail else f"{where}: value {alert.get('value')}"
    return f"• {mark}*{where}* — {text.split(': ', 1)[-1]}"


def alert_lines(alerts: list[dict[str, Any]], limit: int = SECTION_LIMIT) -> str:
    """Lines for the alerts, cut to ``limit`` characters with a final "+N more"."""
    out: list[str] = []
    used = 0
    for i, alert in enumerate(alerts):
        line = _line(alert)[:500]
        remaining = len(alerts) - i
        tail = f"\n+{remaining} more" if remaining else ""
        if len(out) >= MAX_LINES or used + len(line) + 1 + len(tail) + 12 > limit:
            out.append(f"+{remaining} more")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def render(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    rule = data["rule"]
    severity = rule.get("severity", "warning")
    status = data["status"].upper()
    if event["type"].endswith(".test"):
        status = "TEST"
    counts = data["counts"]
    title = f"{status}: {data['model']['name']} · {rule['name']}"[:HEADER_LIMIT]
    truncated = data.get("truncated_alerts", 0)
    lines = alert_lines(data["alerts"])
    if truncated:
        lines = f"{lines}\n+{truncated} more not included in this event"[:SECTION_LIMIT]
    summary = next(
        (
            a.get("annotations", {}).get("summary")
            for a in data["alerts"]
            if a.get("annotations", {}).get("summary")
        ),
        None,
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{EMOJI.get(severity, '')} {severity}"},
                {"type": "mrkdwn", "text": f"*Model*\n{data['model']['name']}"},
                {"type": "mrkdwn", "text": f"*Rule*\n{rule['name']} ({rule.get('metric', '')})"},
                {
                    "type": "mrkdwn",
                    "text": f"*Alerts*\n{counts['firing']} firing, {counts['resolved']} resolved",
                },
            ],
        },
    ]
    if summary:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": summary[:SECTION_LIMIT]}}
        )
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": lines}})
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"<{data['url']}|Open the dashboard>"},
        }
    )
    fallback = f"[{status}:{counts['firing']}] {data['model']['name']} {rule['name']} ({severity})"
    return {"text": fallback, "blocks": blocks[:50]}


class SlackChannel:
    kind = "slack"
    min_interval = 1.0

    def validate(self, url: str, options: dict[str, Any]) -> None:
        check_target(url)

    def new_secret(self) -> str | None:
        return None

    def send(self, client: httpx.Client, target: Target, event: dict[str, Any]) -> Outcome:
        body = json.dumps(render(event), separators=(",", ":"), ensure_ascii=False)
        return post(client, target.url, body.encode(), {"content-type": "application/json"})
