"""The embedded default: a real Postgres under MONITOR_HOME, migrated and usable."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.settings import get_settings
from monitor.storage import migrate
from monitor.storage.embedded import stop_embedded
from monitor.storage.engine import database_url


def test_without_a_url_an_embedded_postgres_starts_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONITOR_DATABASE_URL", raising=False)
    monkeypatch.setenv("MONITOR_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        url = database_url()
        assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(engine)
        assert migrate.check_schema(engine) == migrate.head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW server_version_num")).scalar_one() >= "160000"
        engine.dispose()
    finally:
        stop_embedded(tmp_path / "home" / "pgdata")
        get_settings.cache_clear()
