"""The writer COPYs a one-day batch straight into that day's partition, and the late-data
trigger (migration sdk2_0001, ``create_day``) still marks a computed window stale."""

from __future__ import annotations

import time

import psycopg

from monitor.sdk.postgres.writer import PostgresWriter
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


def _run(pg: psycopg.Connection, model_id: int, start_s: int, status: str = "succeeded") -> None:
    pg.execute(
        "INSERT INTO runs (model_id, job, window_start, window_end, status) VALUES "
        "(%s, 'window', to_timestamp(%s), to_timestamp(%s), %s)",
        (model_id, start_s, start_s + 3600, status),
    )


def _statuses(pg: psycopg.Connection) -> dict[tuple[int, int], str]:
    rows = pg.execute(
        "SELECT model_id, extract(epoch FROM window_start)::bigint, status FROM runs"
    ).fetchall()
    return {(m, int(s)): status for m, s, status in rows}


def test_declared_batch_marks_only_its_models_windows_in_its_span(
    dsn: str, pg: psycopg.Connection
) -> None:
    hour = 3_600_000_000_000
    ns = (time.time_ns() // (24 * hour)) * 24 * hour + 2 * hour  # 02:00 UTC today
    writer = PostgresWriter(pg)
    a, b = writer.model_id("a"), writer.model_id("b")
    h = ns // 10**9
    for model in (a, b):
        for k in range(5):  # windows 02:00 .. 06:00
            _run(pg, model, h + k * 3600)
    # model a, rows at 03:10 and 04:50: windows 03:00 and 04:00 of a only
    records = [
        ("x1", ns + hour + 600 * 10**9, {"x": 1.0}, 0.5, None, None, None),
        ("x2", ns + 2 * hour + 3000 * 10**9, {"x": 2.0}, 0.5, None, None, None),
    ]
    day = time.strftime("%Y%m%d", time.gmtime(ns / 1e9))
    assert writer._target(records) == f"predictions_p{day}"
    assert writer.write_predictions("a", "v1", records).inserted == 2
    stale = {k for k, v in _statuses(pg).items() if v == "stale"}
    assert stale == {(a, h + 3600), (a, h + 7200)}


def test_undeclared_insert_into_a_day_partition_marks_that_whole_day(
    dsn: str, pg: psycopg.Connection
) -> None:
    day_ns = (time.time_ns() // (86_400 * 10**9)) * 86_400 * 10**9
    day_s = day_ns // 10**9
    writer = PostgresWriter(pg)
    a, b = writer.model_id("a"), writer.model_id("b")
    for model in (a, b):
        _run(pg, model, day_s + 3600)  # today 01:00
        _run(pg, model, day_s - 3600)  # yesterday 23:00
    day = time.strftime("%Y%m%d", time.gmtime(day_s))
    pg.execute(
        f"INSERT INTO predictions_p{day} (model_id, event_ts, record_id, version_id) "
        "VALUES (%s, to_timestamp(%s), 'manual', 1)",
        (a, day_s + 7200),
    )
    stale = {k for k, v in _statuses(pg).items() if v == "stale"}
    # nobody declared the batch: every model's windows of that day, none of another day
    assert stale == {(a, day_s + 3600), (b, day_s + 3600)}
