"""``monitor login-link``: print a one-time browser login link (no token in the URL)."""

from __future__ import annotations

import click


@click.command(name="login-link")
@click.option(
    "--scope",
    type=click.Choice(["read", "ingest", "admin"]),
    default="admin",
    show_default=True,
    help="What the browser session may do.",
)
@click.option(
    "--name",
    default="browser login",
    show_default=True,
    help="Name of the token the session belongs to (created once per name and scope; "
    "revoking it ends every session opened this way).",
)
@click.option("--token-id", type=int, default=None, help="Log in as this existing token instead.")
@click.option(
    "--base-url", default=None, help="The dashboard's public URL (default MONITOR_BASE_URL)."
)
def login_link(scope: str, name: str, token_id: int | None, base_url: str | None) -> None:
    """Print a one-time login link: it works once, for MONITOR_LOGIN_CODE_TTL_SECONDS (10 min)."""
    from datetime import timedelta

    from monitor.cli.common import engine_from_settings
    from monitor.errors import NotFoundError
    from monitor.settings import get_settings
    from monitor.storage.engine import session_scope
    from monitor.storage.login_codes import create_login_code, login_token, token_exists

    settings = get_settings()
    with session_scope(engine_from_settings(check_schema=True)) as session:
        if token_id is None:
            token_id = login_token(session, scope, name).id
        elif not token_exists(session, token_id):
            raise NotFoundError(f"no active token with id {token_id}")
        code = create_login_code(
            session, token_id, timedelta(seconds=settings.login_code_ttl_seconds)
        )
    click.echo(login_url(base_url or settings.base_url, code))
    minutes = settings.login_code_ttl_seconds / 60
    click.echo(f"one-time link: it works once, within {minutes:g} minutes", err=True)


def login_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/login?code={code}"
