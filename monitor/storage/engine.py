"""Engines and sessions. The ORM stays inside ``monitor.storage``; callers get records back.

``database_url()`` resolves the configured URL, starting the embedded Postgres when none is set.
``session_scope()`` commits or rolls back and turns driver errors into :class:`DatabaseError`
with one readable line, so the CLI and the web can show it without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from monitor.errors import DatabaseError
from monitor.settings import get_settings
from monitor.storage.embedded import start_embedded, to_sqlalchemy_url


def database_url() -> str:
    """The SQLAlchemy URL of the configured database (the embedded one when unset)."""
    settings = get_settings()
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    return start_embedded(settings.embedded_dir)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as a plain libpq connection string (for psycopg and COPY)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> sa.Engine:
    """A pooled engine for ``url`` (default: the configured database), created once per URL."""
    return sa.create_engine(
        url or database_url(),
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 5, "application_name": "monitor"},
    )


def describe_db_error(exc: BaseException) -> str:
    """One line that says what went wrong with the database, without driver noise."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    if isinstance(exc, sa_exc.OperationalError) or "connection" in first.lower():
        return f"cannot reach the database: {first}"
    return first


@contextmanager
def session_scope(engine: sa.Engine | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error, driver errors as DatabaseError."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except sa_exc.DBAPIError as exc:
        session.rollback()
        raise DatabaseError(describe_db_error(exc)) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
