"""The alerts migrations on a database with data: existing installations keep their behaviour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.storage import migrate
from tests.pg import fresh_database


def _before() -> str:
    """The revision the alerts migrations of this issue follow (re-chained at merges)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    down = script.get_revision("alerts_0002").down_revision
    assert isinstance(down, str)
    return down


@pytest.mark.slow  # a fresh database migrated up, then down (9 s)
def test_upgrade_keeps_routing_alert_state_and_evaluated_windows(pg_admin_url: str) -> None:
    window = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    before = _before()
    with fresh_database(pg_admin_url) as url:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        migrate.upgrade(engine, before)
        with engine.begin() as conn:
            model = conn.execute(
                sa.text("INSERT INTO models (name) VALUES ('credit') RETURNING id")
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO channels (name, kind, target_encrypted, target_display) "
                    "VALUES ('ops', 'webhook', '\\x00', 'https://x')"
                )
            )
            rule = conn.execute(
                sa.text(
                    "INSERT INTO alert_rules (model_id, name, metric, operator, channels, source,"
                    " evaluated_through) VALUES (:m, 'feature-drift', 'drift.*', 'drifted',"
                    " '{*}', 'default', :w) RETURNING id"
                ),
                {"m": model, "w": window},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO results (model_id, window_start, window_end, family, "
                    "column_name, metric, value, drifted) "
                    "VALUES (:m, :w, :e, 'drift', 'income', 'psi', 0.4, true)"
                ),
                {"m": model, "w": window, "e": window + timedelta(hours=1)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO alerts (rule_id, model_id, fingerprint, state, column_name, "
                    "labels, window_start, last_notified_at) VALUES (:r, :m, 'fp', 'firing', "
                    "'income', '{}', :w, now())"
                ),
                {"r": rule, "m": model, "w": window},
            )
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT is_default FROM channels")).scalar_one() is True
            assert conn.execute(sa.text("SELECT channels FROM alert_rules")).scalar_one() == [
                "@default"
            ]
            alert = conn.execute(
                sa.text("SELECT fired_window, notified, cleared_window FROM alerts")
            ).one()
            assert tuple(alert) == (window, "firing", None)
            completion = conn.execute(sa.text("SELECT seq FROM result_completions")).scalar_one()
            seen = conn.execute(sa.text("SELECT seq FROM alert_rule_windows")).scalar_one()
            assert seen == completion  # the rule does not evaluate its old windows again
        migrate.downgrade(engine, before)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT channels FROM alert_rules")).scalar_one() == ["*"]
            assert conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar_one() == 1
        engine.dispose()
