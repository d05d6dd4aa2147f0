"""Property: however batches are replayed (repeats, overlaps, any order, duplicates inside a
batch), the table ends up holding each record exactly once with its values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import PredictionRecord

BASE = datetime(2026, 11, 20, tzinfo=UTC)
RECORDS = [
    PredictionRecord(
        f"id{i}", BASE + timedelta(minutes=i), {"x": float(i), "c": f"c{i % 3}"}, i % 2
    )
    for i in range(40)
]

batches = st.lists(
    st.lists(st.integers(min_value=0, max_value=len(RECORDS) - 1), min_size=1, max_size=25),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=batches)
def test_any_replay_lands_each_record_once(dsn: str, plan: list[list[int]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE predictions")
        writer = PostgresWriter(conn)
        written = 0
        for batch in plan:
            result = writer.write_predictions("prop", "1", [RECORDS[i] for i in batch])
            assert result.inserted + result.duplicates == len(batch)
            written += result.inserted
        expected = {i for batch in plan for i in batch}
        rows = conn.execute("SELECT record_id, num[1], event_ts FROM predictions").fetchall()
    assert written == len(expected) == len(rows)
    assert {r[0] for r in rows} == {f"id{i}" for i in expected}
    for record_id, x, ts in rows:
        i = int(record_id[2:])
        assert x == float(i) and ts == RECORDS[i][1]
