"""``monitor alerts``: rules from YAML, alert state, silences, deliveries, test sends, receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import engine_from_settings


@click.group()
def alerts() -> None:
    """Alert rules, alerts, silences and deliveries."""


@alerts.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--prune", is_flag=True, help="Delete file-defined rules the file no longer lists.")
def apply(path: Path, prune: bool) -> None:
    """Create or update the rules in a YAML file (model: ..., rules: [...])."""
    from monitor.alerts.rules import apply_rules_yaml
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        counts = apply_rules_yaml(session, path.read_text(), prune=prune)
    click.echo(f"{counts['applied']} rule(s) applied, {counts['deleted']} deleted")


@alerts.command()
@click.argument("model", required=False)
@click.option("--defaults", is_flag=True, help="Create the default rules MODEL lacks first.")
def rules(model: str | None, defaults: bool) -> None:
    """List rules (of MODEL, or of every model)."""
    import sqlalchemy as sa

    from monitor.alerts.rules import describe_rule, ensure_default_rules, model_id_by_name
    from monitor.storage.engine import session_scope
    from monitor.storage.tables import AlertRule, Model

    with session_scope(engine_from_settings(check_schema=True)) as session:
        stmt = sa.select(Model.name, AlertRule).join(Model, Model.id == AlertRule.model_id)
        if model:
            model_id = model_id_by_name(session, model)
            if defaults:
                created = ensure_default_rules(session, model_id)
                click.echo(f"{created} default rule(s) created", err=True)
            stmt = stmt.where(Model.id == model_id)
        for name, rule in session.execute(stmt.order_by(Model.name, AlertRule.name)):
            click.echo(f"{name}\t{describe_rule(rule)}")


@alerts.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved alerts.")
@click.option("--limit", default=100, show_default=True)
def list_(show_all: bool, limit: int) -> None:
    """List open (or all) alerts."""
    import sqlalchemy as sa

    from monitor.storage.engine import session_scope
    from monitor.storage.tables import Alert

    with session_scope(engine_from_settings(check_schema=True)) as session:
        stmt = sa.select(Alert).order_by(Alert.started_at.desc()).limit(limit)
        if not show_all:
            stmt = stmt.where(Alert.state != "resolved")
        for a in session.scalars(stmt):
            labels = a.labels
            where = "/".join(x for x in (a.column_name, a.segment) if x) or "-"
            click.echo(
                f"{a.id}\t{a.state}\t{labels.get('severity')}\t{labels.get('model')}\t"
                f"{labels.get('alertname')}\t{where}\t{a.value}\t"
                f"since {a.started_at.isoformat(timespec='seconds')}"
            )


@alerts.command()
def evaluate() -> None:
    """Evaluate every rule once now (the scheduler does this every tick)."""
    from monitor.alerts.evaluate import evaluate_alerts

    summary = evaluate_alerts(engine_from_settings(check_schema=True))
    click.echo(json.dumps(summary.__dict__))


@alerts.command()
@click.option("--limit", default=100, show_default=True)
def deliver(limit: int) -> None:
    """Send due deliveries once now (the scheduler does this every tick)."""
    from monitor.alerts.delivery import deliver_due

    summary = deliver_due(engine_from_settings(check_schema=True), limit=limit)
    click.echo(json.dumps(summary.__dict__))


@alerts.command()
@click.argument("channel")
def test(channel: str) -> None:
    """Send a drift.alert.test event to CHANNEL and print the receiver's answer."""
    from monitor.alerts.delivery import send_test

    outcome, event_id = send_test(engine_from_settings(check_schema=True), channel)
    status = outcome.status_code if outcome.status_code is not None else "-"
    click.echo(f"event {event_id}: HTTP {status}")
    if outcome.response:
        click.echo(outcome.response)
    if not outcome.ok:
        raise click.ClickException(outcome.error or "delivery failed")


@alerts.command()
@click.option("--status", type=click.Choice(["pending", "sending", "delivered", "failed"]))
@click.option("--limit", default=50, show_default=True)
def deliveries(status: str | None, limit: int) -> None:
    """List recent deliveries (failed ones can be replayed)."""
    import sqlalchemy as sa

    from monitor.alerts.delivery import list_deliveries
    from monitor.storage.engine import session_scope
    from monitor.storage.tables import Channel

    with session_scope(engine_from_settings(check_schema=True)) as session:
        channels = {c.id: c for c in session.scalars(sa.select(Channel))}
        now = datetime.now(UTC)
        for d in list_deliveries(session, status=status, limit=limit):
            channel = channels.get(d.channel_id)
            name = channel.name if channel is not None else str(d.channel_id)
            click.echo(
                f"{d.id}\t{d.status}\t{name}\t{d.event_type}\t{d.event_id}\t"
                f"attempts {d.attempts}\t{d.last_status_code or '-'}\t{d.last_error or ''}"
                f"{_when(d, channel, now)}"
            )


def _when(delivery: Any, channel: Any, now: datetime) -> str:
    """When a pending delivery is tried next (or why it will not be)."""
    if delivery.status == "pending":
        if channel is not None and not channel.enabled:
            return f"\tnot sent: channel disabled ({channel.disabled_reason})"
        wait = (delivery.next_attempt_at - now).total_seconds()
        at = delivery.next_attempt_at.astimezone(UTC).isoformat(timespec="seconds")
        return f"\tnext try {at}" + (f" (in {_span(wait)})" if wait > 0 else " (due now)")
    if delivery.status == "sending" and delivery.lease_expires_at is not None:
        at = delivery.lease_expires_at.astimezone(UTC).isoformat(timespec="seconds")
        return f"\tsending (claimed until {at})"
    return ""


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@alerts.command()
@click.argument("delivery_id", type=int)
def replay(delivery_id: int) -> None:
    """Queue DELIVERY_ID again (same event id, so receivers can deduplicate)."""
    from monitor.alerts.delivery import replay_delivery
    from monitor.storage.engine import session_scope
    from monitor.storage.tables import Channel

    with session_scope(engine_from_settings(check_schema=True)) as session:
        delivery = replay_delivery(session, delivery_id)
        channel = session.get(Channel, delivery.channel_id)
        name = channel.name if channel is not None else delivery.channel_id
    click.echo(f"delivery {delivery_id} queued again for channel {name} (same webhook-id)")


@alerts.group()
def silence() -> None:
    """Create, list or end silences."""


@silence.command(name="add")
@click.option(
    "-m",
    "--match",
    "matchers",
    multiple=True,
    required=True,
    help="name=value, name!=value, name=~regex or name!~regex (repeatable).",
)
@click.option("--duration", default="2h", show_default=True, help="e.g. 30m, 2h, 1d.")
@click.option("--comment", default=None)
@click.option("--by", "created_by", default=None, help="Who creates it.")
def silence_add(
    matchers: tuple[str, ...], duration: str, comment: str | None, created_by: str | None
) -> None:
    """Silence alerts whose labels match every matcher, for DURATION."""
    from datetime import UTC, datetime, timedelta

    from monitor.alerts.rules import parse_duration
    from monitor.alerts.silences import create_silence
    from monitor.storage.engine import session_scope

    ends = datetime.now(UTC) + timedelta(seconds=parse_duration(duration))
    with session_scope(engine_from_settings(check_schema=True)) as session:
        s = create_silence(
            session, matchers=list(matchers), ends_at=ends, comment=comment, created_by=created_by
        )
        click.echo(f"silence {s.id} until {s.ends_at.isoformat(timespec='seconds')}")


@silence.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include ended silences.")
def silence_list(show_all: bool) -> None:
    """List active (or all) silences."""
    from monitor.alerts.silences import list_silences, matchers_of
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        for s in list_silences(session, active_only=not show_all):
            text = ",".join(str(m) for m in matchers_of(s.matchers))
            click.echo(
                f"{s.id}\t{text}\tuntil {s.ends_at.isoformat(timespec='seconds')}\t"
                f"{s.created_by or ''}\t{s.comment or ''}"
            )


@silence.command(name="end")
@click.argument("silence_id", type=int)
def silence_end(silence_id: int) -> None:
    """End silence SILENCE_ID now."""
    from monitor.alerts.silences import end_silence
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        end_silence(session, silence_id)
    click.echo(f"silence {silence_id} ended")


@alerts.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--secret", default=None, help="whsec_... to verify Standard Webhooks signatures.")
@click.option("--max-requests", type=int, default=None, help="Exit after this many requests.")
def receiver(host: str, port: int, secret: str | None, max_requests: int | None) -> None:
    """Run a local webhook receiver that verifies signatures and prints every event."""
    from monitor.alerts.receiver import serve

    serve(host, port, secret, max_requests=max_requests, echo=click.echo)
