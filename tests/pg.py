"""Test databases on a real Postgres: the server from MONITOR_TEST_DATABASE_URL, else embedded.

Each test session gets its own freshly created database (so parallel sessions on one machine
never share state) and drops it at the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from monitor.storage.embedded import start_embedded, to_sqlalchemy_url


def server_url(tmp_root: Path) -> str:
    """URL of a maintenance database on the test server (starting the embedded one if needed)."""
    url = os.environ.get("MONITOR_TEST_DATABASE_URL")
    if url:
        return to_sqlalchemy_url(url)
    return start_embedded(tmp_root / "embedded-pg")


@contextmanager
def fresh_database(admin_url: str, prefix: str = "monitor_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_all(engine: sa.Engine, attempts: int = 5) -> None:
    """Empty every table. Retried when Postgres picks the TRUNCATE as a deadlock victim (a
    worker thread of the test that just ended may still be finishing its last transaction)."""
    from monitor.storage.tables import metadata

    names = ", ".join(t.name for t in metadata.sorted_tables)
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        except sa.exc.OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
