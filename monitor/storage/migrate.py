"""Schema migrations with Alembic, driven from code (``monitor db ...``) and checked at startup.

The migration scripts live in ``migrations/`` at the repository root; an installed wheel carries
them as ``monitor._migrations``. Partitions of ``predictions`` are not part of the models, so
:func:`include_name` hides them from autogenerate comparisons.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import exc as sa_exc

from monitor.errors import DatabaseError, SchemaOutOfDateError
from monitor.storage.engine import describe_db_error

PARTITION_NAME = re.compile(r"^predictions_(p\d{8}|default)$")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave partitions (created by maintenance, not by migrations) out of schema comparisons."""
    return not (type_ == "table" and name is not None and PARTITION_NAME.match(name))


def script_location() -> str:
    source_tree = Path(__file__).resolve().parents[2] / "migrations"
    if (source_tree / "env.py").exists():
        return str(source_tree)
    return str(resources.files("monitor._migrations"))


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location())
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(describe_db_error(exc)) from exc


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` (default the newest), then make sure partitions exist."""
    from monitor.storage.partitions import ensure_partitions

    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        if revision == "head":
            with engine.begin() as conn:
                ensure_partitions(conn)
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(describe_db_error(exc)) from exc


def downgrade(engine: sa.Engine, revision: str) -> None:
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), revision)
    except sa_exc.DBAPIError as exc:
        raise DatabaseError(describe_db_error(exc)) from exc


def check_schema(engine: sa.Engine) -> str:
    """Return the revision, or raise SchemaOutOfDateError naming the command that fixes it."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"the database schema is at revision {current or 'none (empty database)'} but this "
            f"version of monitor needs {head}: run `monitor db upgrade`"
        )
    return current
