"""Daily partitions: created ahead, rows from the default partition moved, old days dropped."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from monitor.storage import partitions


def _insert(conn: sa.Connection, ts: datetime, record_id: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO predictions (model_id, event_ts, record_id, version_id, num) "
            "VALUES (1, :ts, :rid, 1, ARRAY[1.0])"
        ),
        {"ts": ts, "rid": record_id},
    )


def _rows_in(conn: sa.Connection, table: str) -> int:
    return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_upgrade_creates_partitions_ahead(clean_db: sa.Engine) -> None:
    today = datetime.now(UTC).date()
    with clean_db.connect() as conn:
        days = partitions.list_days(conn)
    assert today in days
    assert today + timedelta(days=7) in days


def test_creating_a_day_moves_its_rows_out_of_the_default(clean_db: sa.Engine) -> None:
    day = date(2001, 2, 3)
    ts = datetime(2001, 2, 3, 12, tzinfo=UTC)
    with clean_db.begin() as conn:
        _insert(conn, ts, "a")
        _insert(conn, ts + timedelta(days=1), "b")  # another day: stays in the default
        assert _rows_in(conn, "predictions_default") == 2
        assert partitions.create_day(conn, day) is True
        assert partitions.create_day(conn, day) is False
        assert _rows_in(conn, partitions.partition_name(day)) == 1
        assert _rows_in(conn, "predictions_default") == 1
        assert _rows_in(conn, "predictions") == 2


def test_drop_before_removes_old_days_and_old_default_rows(clean_db: sa.Engine) -> None:
    with clean_db.begin() as conn:
        partitions.ensure_partitions(conn, first=date(2001, 1, 1), last=date(2001, 1, 3))
        _insert(conn, datetime(2001, 1, 1, 5, tzinfo=UTC), "old")
        _insert(conn, datetime(2000, 6, 1, tzinfo=UTC), "older-in-default")
        _insert(conn, datetime(2001, 1, 3, 5, tzinfo=UTC), "kept")
        dropped = partitions.drop_before(conn, date(2001, 1, 3))
        assert dropped == [date(2001, 1, 1), date(2001, 1, 2)]
        ids = conn.execute(sa.text("SELECT record_id FROM predictions")).scalars().all()
    assert ids == ["kept"]
    with clean_db.begin() as conn:
        partitions.drop_before(conn, date(2001, 1, 4))
