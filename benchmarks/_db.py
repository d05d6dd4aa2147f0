"""A throw-away migrated database for a benchmark run (on the server given by --dsn)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def bench_database(admin_dsn: str) -> Iterator[str]:
    name = f"monitor_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)
    try:
        from monitor.storage import migrate

        params = psycopg.conninfo.conninfo_to_dict(dsn)
        url = sa.engine.URL.create(
            "postgresql+psycopg",
            username=str(params.get("user") or "postgres"),
            host=str(params.get("host") or "127.0.0.1"),
            port=int(params.get("port") or 5432),
            database=name,
        )
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(engine)
        engine.dispose()
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
