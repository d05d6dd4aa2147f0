"""Fixtures shared by the whole suite: a real, migrated Postgres database per test session.

Postgres comes from MONITOR_TEST_DATABASE_URL (CI points it at the machine's server) or else an
embedded one started once per session. A test that needs Postgres never skips: if the server
cannot be reached, the fixture errors and the test fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.pg import fresh_database, server_url, truncate_all


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("monitor")


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(session_tmp: Path) -> Iterator[None]:
    """Keep every test's MONITOR_HOME (spools, embedded data, keys) inside the session tmp dir."""
    old = os.environ.get("MONITOR_HOME")
    os.environ["MONITOR_HOME"] = str(session_tmp / "home")
    yield
    if old is None:
        os.environ.pop("MONITOR_HOME", None)
    else:
        os.environ["MONITOR_HOME"] = old


@pytest.fixture(scope="session")
def pg_admin_url(session_tmp: Path) -> str:
    return server_url(session_tmp)


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    """URL of this session's migrated database."""
    from monitor.storage import migrate

    with fresh_database(pg_admin_url) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(database_url, pool_size=5, max_overflow=10)
    yield eng
    eng.dispose()


@pytest.fixture()
def clean_db(engine: sa.Engine) -> Iterator[sa.Engine]:
    """The session database, emptied after the test."""
    yield engine
    truncate_all(engine)


@pytest.fixture()
def settings_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """Point get_settings() and get_engine() at the session database for this test."""
    from monitor.settings import get_settings
    from monitor.storage.engine import get_engine

    monkeypatch.setenv("MONITOR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()
