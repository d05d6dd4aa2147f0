"""Migrations on a real Postgres: a full round trip, and no drift between models and migrations."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monitor.errors import DatabaseError, SchemaOutOfDateError
from monitor.storage import migrate
from monitor.storage.tables import metadata
from tests.pg import fresh_database

EXPECTED_TABLES = {
    "models",
    "model_versions",
    "features",
    "predictions",
    "actuals",
    "baselines",
    "baseline_profiles",
    "window_profiles",
    "results",
    "runs",
    "alert_rules",
    "alerts",
    "alert_events",
    "silences",
    "channels",
    "deliveries",
    "delivery_attempts",
    "api_tokens",
    "web_sessions",
    "dead_letters",
    "sdk_reports",
}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_round_trip(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        assert _tables(engine) >= EXPECTED_TABLES

        migrate.downgrade(engine, "base")
        assert migrate.current_revision(engine) is None
        assert _tables(engine) == set()

        migrate.upgrade(engine)
        assert _tables(engine) >= EXPECTED_TABLES
        engine.dispose()


def test_migrated_schema_matches_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_name": migrate.include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_column_collations_match_models(engine: sa.Engine) -> None:
    """Alembic's autogenerate does not compare collations; this does (record ids are "C")."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
        ).all()
        partitions = conn.execute(
            sa.text(
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'predictions'::regclass"
            )
        ).scalars()
        partitions = list(partitions)
    actual = {(t, c): coll for t, c, coll in rows}
    expected = {
        (table.name, column.name): getattr(column.type, "collation", None)
        for table in metadata.tables.values()
        for column in table.columns
    }
    assert {k: actual.get(k) for k in expected} == expected
    assert expected[("predictions", "record_id")] == "C"
    assert expected[("actuals", "record_id")] == "C"
    assert partitions and all(actual[(p, "record_id")] == "C" for p in partitions)


def test_predictions_is_partitioned_with_a_default(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        strategy = conn.execute(
            sa.text(
                "SELECT partstrat FROM pg_partitioned_table p JOIN pg_class c "
                "ON c.oid = p.partrelid WHERE c.relname = 'predictions'"
            )
        ).scalar()
        default = conn.execute(sa.text("SELECT to_regclass('predictions_default')")).scalar()
    assert strategy == "r"
    assert default == "predictions_default"


def test_check_schema_names_the_command_on_an_empty_database(pg_admin_url: str) -> None:
    with fresh_database(pg_admin_url) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with pytest.raises(SchemaOutOfDateError, match="monitor db upgrade"):
            migrate.check_schema(engine)
        migrate.upgrade(engine)
        assert migrate.check_schema(engine) == migrate.head_revision()
        engine.dispose()


def test_unreachable_database_is_one_clear_error() -> None:
    engine = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(DatabaseError, match="cannot reach the database"):
        migrate.check_schema(engine)
