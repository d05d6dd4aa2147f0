"""Daily range partitions of ``predictions``: create ahead, attach safely, drop past retention.

A default partition catches rows whose day has no partition yet (old replays, clock skew), so an
insert never fails for want of a partition. Creating a day whose rows already sit in the default
partition would be refused by Postgres, so :func:`create_day` moves those rows into the new table
before attaching it, in one transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

PARENT = "predictions"
DEFAULT = "predictions_default"
LATE_DATA_TRIGGER = "predictions_late_data"
LATE_BATCH_TRIGGER = "predictions_late_batch"  # day partitions (migration ingest_0002)
_DAY_NAME = re.compile(r"^predictions_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1)).isoformat()


def list_days(conn: sa.Connection) -> list[date]:
    """Days that have their own partition, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
        ),
        {"parent": PARENT},
    ).scalars()
    days = []
    for name in rows:
        match = _DAY_NAME.match(name)
        if match:
            days.append(datetime.strptime(match.group(1), "%Y%m%d").date())
    return sorted(days)


def ensure_default(conn: sa.Connection) -> None:
    conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {DEFAULT} PARTITION OF {PARENT} DEFAULT"))


def create_day(conn: sa.Connection, day: date) -> bool:
    """Create the partition for ``day`` if missing; returns True when it was created."""
    name = partition_name(day)
    exists = conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": name}).scalar()
    if exists:
        return False
    lo, hi = _bounds(day)
    # Serialise concurrent creators (workers, demo, upgrade) on a transaction-level lock.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})
    if conn.execute(sa.text("SELECT to_regclass(:n)"), {"n": name}).scalar():
        return False
    conn.execute(sa.text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    conn.execute(
        sa.text(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE event_ts >= :lo AND event_ts < :hi "
            f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        {"lo": lo, "hi": hi},
    )
    conn.execute(
        sa.text(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{lo}') TO ('{hi}')"
        )
    )
    add_late_data_trigger(conn, name)
    return True


def add_late_data_trigger(conn: sa.Connection, table: str) -> None:
    """A late-data trigger on a new day partition, so COPY straight into it (the SDK's fast
    path) marks computed windows stale too. A statement trigger fires only for the table named
    in the statement: rows routed through the parent fire only the parent's.

    From migration ingest_0002 on it is ``predictions_late_batch``: no transition table, the
    writer declares its batch (see that migration). Before it, the parent's transition-table
    trigger (sdk2_0001); before jobs_0001 (no trigger function yet), none.
    """
    if conn.execute(sa.text("SELECT to_regproc('monitor_mark_late_batch')")).scalar() is not None:
        conn.execute(
            sa.text(
                f"CREATE OR REPLACE TRIGGER {LATE_BATCH_TRIGGER} AFTER INSERT ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION monitor_mark_late_batch()"
            )
        )
        return
    if conn.execute(sa.text("SELECT to_regproc('monitor_mark_late_windows')")).scalar() is None:
        return
    conn.execute(
        sa.text(
            f"CREATE OR REPLACE TRIGGER {LATE_DATA_TRIGGER} AFTER INSERT ON {table} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION monitor_mark_late_windows()"
        )
    )


def ensure_partitions(
    conn: sa.Connection,
    *,
    first: date | None = None,
    last: date | None = None,
    ahead_days: int = 7,
) -> list[date]:
    """Make sure each day in ``[first, last]`` has a partition (default: yesterday .. +ahead)."""
    today = datetime.now(UTC).date()
    first = first or today - timedelta(days=1)
    last = last or today + timedelta(days=ahead_days)
    ensure_default(conn)
    created = []
    day = first
    while day <= last:
        if create_day(conn, day):
            created.append(day)
        day += timedelta(days=1)
    return created


def drop_before(conn: sa.Connection, cutoff: date) -> list[date]:
    """Drop day partitions wholly before ``cutoff`` and old rows of the default partition."""
    dropped = []
    for day in list_days(conn):
        if day < cutoff:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
            dropped.append(day)
    lo, _ = _bounds(cutoff)
    conn.execute(sa.text(f"DELETE FROM {DEFAULT} WHERE event_ts < :lo"), {"lo": lo})
    return dropped
