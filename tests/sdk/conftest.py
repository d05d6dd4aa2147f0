"""Fixtures for SDK tests: a libpq DSN of the session database and row-count helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from monitor.storage.engine import libpq_url


@pytest.fixture()
def dsn(clean_db: sa.Engine, database_url: str) -> str:
    """libpq URL of the session database (emptied after the test)."""
    return libpq_url(database_url)


@pytest.fixture()
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture()
def pg(dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def count(conn: psycopg.Connection, table: str, where: str = "true") -> int:
    row = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def killable_pg() -> Iterator[object]:
    """A migrated Postgres of our own on a TCP port, that tests may stop and start."""
    from tests.sdk.killable_pg import KillablePostgres

    server = KillablePostgres()
    try:
        server.migrate()
        yield server
    finally:
        server.destroy()
