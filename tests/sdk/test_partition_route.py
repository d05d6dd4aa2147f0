"""The writer COPYs a one-day batch straight into that day's partition, and the late-data
trigger (migration sdk2_0001, ``create_day``) still marks a computed window stale."""

from __future__ import annotations

import time

import psycopg

from monitor.sdk.pgwriter import PostgresWriter
from tests.sdk.conftest import count


def _records(ns: int, n: int, prefix: str) -> list[tuple[object, ...]]:
    return [
        (f"{prefix}{i}", ns + i * 1000, {"x": float(i)}, 0.5, None, None, None) for i in range(n)
    ]


def test_one_day_batch_goes_to_its_partition_and_marks_late_windows(
    dsn: str, pg: psycopg.Connection
) -> None:
    ns = (time.time_ns() // 3_600_000_000_000 - 1) * 3_600_000_000_000  # last hour's start
    writer = PostgresWriter(pg)
    model_id = writer.model_id("m")
    day = time.strftime("%Y%m%d", time.gmtime(ns / 1e9))
    assert writer._target(_records(ns, 3, "a")) == f"predictions_p{day}"
    # rows of two days (or datetimes) go through the parent
    assert writer._target(_records(ns, 1, "a") + _records(ns - 86_400 * 10**9, 1, "b")) == (
        "predictions"
    )
    pg.execute(
        "INSERT INTO runs (model_id, job, window_start, window_end, status) VALUES "
        "(%s, 'window', to_timestamp(%s), to_timestamp(%s), 'succeeded')",
        (model_id, ns // 10**9, ns // 10**9 + 3600),
    )
    result = writer.write_predictions("m", "v1", _records(ns, 5, "r"))
    assert result.inserted == 5
    assert count(pg, f"predictions_p{day}") == 5
    row = pg.execute("SELECT status, reason FROM runs").fetchone()
    assert row == ("stale", "late data")
    # a replay of the same rows (unique violation) takes the careful path: nothing doubles
    pg.execute("UPDATE runs SET status = 'succeeded', reason = NULL")
    again = writer.write_predictions("m", "v1", _records(ns, 5, "r"))
    assert again.inserted == 0 and again.duplicates == 5
    assert count(pg, "predictions") == 5
    assert pg.execute("SELECT status FROM runs").fetchone() == ("succeeded",)
