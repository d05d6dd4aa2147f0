"""``monitor channel``: add, list, enable/disable or remove notification channels."""

from __future__ import annotations

import click

from monitor.cli.common import engine_from_settings


@click.group()
def channel() -> None:
    """Add, list or remove notification channels (webhook, slack)."""


@channel.command()
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(["webhook", "slack"]), default="webhook", show_default=True
)
@click.option("--url", required=True, help="Target URL (stored encrypted).")
@click.option("--secret", default=None, help="whsec_... signing secret (default: generated).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["standard", "alertmanager"]),
    default="standard",
    show_default=True,
    help="Webhook payload format.",
)
@click.option(
    "--default",
    "is_default",
    is_flag=True,
    help="Mark it default: the default rules (and rules naming no channel) notify it.",
)
def add(name: str, kind: str, url: str, secret: str | None, fmt: str, is_default: bool) -> None:
    """Add channel NAME; prints a webhook's signing secret once."""
    from monitor.alerts.channel_store import add_channel
    from monitor.storage.engine import session_scope

    options = {"format": fmt} if kind == "webhook" and fmt != "standard" else {}
    with session_scope(engine_from_settings(check_schema=True)) as session:
        info, new_secret = add_channel(
            session, name, kind, url, secret=secret, options=options, is_default=is_default
        )
    default = ", default" if info.is_default else ""
    click.echo(f"channel {info.id} {info.name} ({info.kind}{default}) -> {info.target_display}")
    if new_secret and not secret:
        click.echo(f"signing secret (shown only now): {new_secret}")


@channel.command(name="list")
def list_() -> None:
    """List channels (targets masked)."""
    from monitor.alerts.channel_store import list_channels
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        for c in list_channels(session):
            state = "enabled" if c.enabled else f"disabled ({c.disabled_reason})"
            default = "\tdefault" if c.is_default else ""
            click.echo(f"{c.id}\t{c.name}\t{c.kind}\t{c.target_display}\t{state}{default}")


@channel.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove channel NAME (and its delivery history)."""
    from monitor.alerts.channel_store import remove_channel
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        remove_channel(session, name)
    click.echo(f"channel {name} removed")


@channel.command()
@click.argument("name")
def enable(name: str) -> None:
    """Enable channel NAME again (e.g. after a 410 disabled it)."""
    from monitor.alerts.channel_store import set_enabled
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        set_enabled(session, name, True)
    click.echo(f"channel {name} enabled")


@channel.command()
@click.argument("name")
def disable(name: str) -> None:
    """Disable channel NAME."""
    from monitor.alerts.channel_store import set_enabled
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        set_enabled(session, name, False)
    click.echo(f"channel {name} disabled")


@channel.command(name="default")
@click.argument("name")
@click.option("--off", is_flag=True, help="Unmark it instead.")
def default_(name: str, off: bool) -> None:
    """Mark channel NAME default (the default rules notify it), or unmark it with --off."""
    from monitor.alerts.channel_store import set_default
    from monitor.storage.engine import session_scope

    with session_scope(engine_from_settings(check_schema=True)) as session:
        set_default(session, name, not off)
    click.echo(f"channel {name} {'is no longer' if off else 'is now'} a default channel")
