"""``monitor token``: create, list and revoke API tokens (stored hashed)."""

from __future__ import annotations

import click

from monitor.cli.common import engine_from_settings


@click.group()
def token() -> None:
    """Create, list or revoke API tokens."""


@token.command()
@click.option("--name", required=True, help="Who or what uses the token.")
@click.option(
    "--scope",
    type=click.Choice(["read", "ingest", "admin"]),
    default="read",
    show_default=True,
    help="read: dashboards and API (reads only); ingest: writes data (cannot read); admin: all.",
)
@click.option(
    "--models",
    default=None,
    metavar="NAME,NAME",
    help="Ingest tokens only: the models it may write to (comma-separated; default: any).",
)
def create(name: str, scope: str, models: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from monitor.storage.engine import session_scope
    from monitor.storage.tokens import create_token

    limited = models.split(",") if models is not None else None
    with session_scope(engine_from_settings(check_schema=True)) as session:
        plaintext, info = create_token(session, name, scope, limited)
    click.echo(plaintext)
    only = f", models {', '.join(info.models)}" if info.models is not None else ""
    click.echo(f"token {info.id} ({info.scope}{only}) created; it is shown only now", err=True)


@token.command(name="list")
def list_() -> None:
    """List tokens (never their values)."""
    from monitor.storage.engine import session_scope
    from monitor.storage.tokens import list_tokens

    with session_scope(engine_from_settings(check_schema=True)) as session:
        for t in list_tokens(session):
            state = "revoked" if t.revoked_at else "active"
            used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
            models = ",".join(t.models) if t.models is not None else "all models"
            click.echo(
                f"{t.id}\t{t.name}\t{t.scope}\t{models}\t{t.prefix}...\t{state}\tlast used {used}"
            )


@token.command()
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke token TOKEN_ID."""
    from monitor.errors import NotFoundError
    from monitor.storage.engine import session_scope
    from monitor.storage.tokens import revoke_token

    with session_scope(engine_from_settings(check_schema=True)) as session:
        if not revoke_token(session, token_id):
            raise NotFoundError(f"no active token with id {token_id}")
    click.echo(f"token {token_id} revoked")
