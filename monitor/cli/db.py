"""``monitor db``: migrate, roll back and check the schema."""

from __future__ import annotations

import click

from monitor.cli.common import engine_from_settings


@click.group()
def db() -> None:
    """Migrate or check the database schema."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema to REVISION (default: the newest)."""
    from monitor.storage import migrate

    engine = engine_from_settings()
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Roll the schema back to REVISION (`base` removes everything)."""
    from monitor.storage import migrate

    engine = engine_from_settings()
    migrate.downgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine) or 'base'}")


@db.command()
def check() -> None:
    """Exit 0 when the schema is up to date, else print what to run and exit 2."""
    from monitor.storage import migrate

    revision = migrate.check_schema(engine_from_settings())
    click.echo(f"schema up to date (revision {revision})")
