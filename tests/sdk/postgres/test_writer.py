"""The writer's bulk path over two connections: both are used, and each row lands once even when
one connection fails after the other committed, or dies between blocks."""

from __future__ import annotations

import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from monitor import Monitor
from monitor.sdk.postgres.writer import LANE_MIN_ROWS, UNIFORM_CHUNK, PostgresWriter
from monitor.sdk.rowblock import RowBlock
from tests.sdk.conftest import count

N = LANE_MIN_ROWS * 2
KEYS = ("prediction", "proba", "latency_ms", "segment")
RESERVED = frozenset({"prediction", "id", "timestamp", "latency_ms", "proba", "segment"})
assert N % (2 * UNIFORM_CHUNK) == 0  # whole chunks, as many on each connection


def _rows(prefix: str, n: int = N, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i:06d}", "x": float(i), "c": f"k{i % 7}", "prediction": 0.25, **extra}
        for i in range(n)
    ]


def _lane_pid(client: Monitor) -> int:
    lane = client.exporter._writer.lane_connection  # type: ignore[attr-defined]
    assert lane is not None, "the bulk block did not use the second connection"
    return int(lane.info.backend_pid)


def test_a_bulk_block_streams_over_two_connections(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = Monitor("lanes", "1", dsn=dsn, spool_dir=spool_dir)
    assert client.log_batch(_rows("a")) == N
    main_pid = client.exporter._conn.info.backend_pid  # type: ignore[attr-defined]
    assert _lane_pid(client) != main_pid
    assert count(pg, "predictions") == N
    assert count(pg, "predictions", "num[1] = substr(record_id, 2)::int") == N  # rows intact
    single = Monitor("lanes", "1", dsn=dsn, spool_dir=spool_dir / "one", bulk_connections=1)
    assert single.log_batch(_rows("b")) == N
    assert single.exporter._writer.lane_connection is None  # type: ignore[attr-defined]
    assert count(pg, "predictions") == 2 * N
    for c in (client, single):
        assert c.flush(10) and c.stats()["dropped_total"] == 0
        c.shutdown()


def test_one_connection_failing_after_the_other_committed_still_lands_each_row_once(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """Chunks alternate between the connections, the first chunk on the main one, whose
    transaction commits last. A row already in the table makes that commit fail after the
    second connection committed its half: the careful path then writes the whole block again
    and skips what is there."""
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    client = Monitor("lanes", "1", dsn=dsn, spool_dir=spool_dir)
    rows = _rows("d", timestamp=at)
    assert client.log_batch(rows[:1]) == 1  # r000000 is in the main connection's first chunk
    assert client.log_batch(rows) == N
    _lane_pid(client)
    assert count(pg, "predictions") == N
    assert count(pg, "predictions", "record_id = 'd000000'") == 1
    assert count(pg, "dead_letters") == 0
    assert client.flush(10)
    stats = client.stats()
    # The second connection's half (every other chunk) and the row that was there come back
    # as duplicates; the stats count the block's rows once each.
    assert stats["exported"] == 1 + N and stats["duplicates"] == 1 + N // 2
    assert stats["dropped_total"] == 0
    client.shutdown()


def test_a_lost_second_connection_spools_the_block_and_the_replay_lands_once(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = Monitor("lanes", "1", dsn=dsn, spool_dir=spool_dir)
    assert client.log_batch(_rows("e")) == N
    pg.execute("SELECT pg_terminate_backend(%s)", (_lane_pid(client),))
    assert client.log_batch(_rows("f")) == N  # the lane is dead: the block goes to the spool
    assert client.flush(30), client.stats()
    assert count(pg, "predictions") == 2 * N
    assert count(pg, "predictions", "record_id LIKE 'f%'") == N
    stats = client.stats()
    assert stats["dropped_total"] == 0 and stats["replayed_records"] >= N
    client.shutdown()


def test_after_fork_the_child_leaves_the_parents_second_connection_alone(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = Monitor("lanes", "1", dsn=dsn, spool_dir=spool_dir)
    assert client.log_batch(_rows("p")) == N
    lane = _lane_pid(client)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            own = client.log_batch(_rows("c")) == N and _lane_pid(client) != lane
            code = 0 if own and client.flush(10) and client.stats()["exported"] == N else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.log_batch(_rows("q")) == N  # over the same second connection, still open
    assert _lane_pid(client) == lane
    assert client.flush(10)
    stats = client.stats()
    assert stats["export_failures"] == 0 and stats["replayed_records"] == 0
    assert count(pg, "predictions") == 3 * N
    client.shutdown()


def test_a_second_connection_that_cannot_open_leaves_the_block_to_the_first(
    dsn: str, pg: psycopg.Connection
) -> None:
    def refused() -> psycopg.Connection:  # a real failure: nothing listens on port 1
        return psycopg.connect("postgresql://monitor@127.0.0.1:1/none", connect_timeout=2)

    ns = time.time_ns()
    rows = _rows("g")
    block = RowBlock(rows, [r["id"] for r in rows], [ns] * N, KEYS, RESERVED, None)
    block.while_committing = lambda: None
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn, connect_lane=refused)
        result = writer.write_predictions("lanes", "1", block)
        assert result.inserted == N and writer.lane_connection is None
        assert writer.lane() is None  # not retried at once (LANE_RETRY)
    assert count(pg, "predictions") == N


def test_one_odd_record_costs_only_its_own_row_the_careful_path(dsn: str) -> None:
    """A NaN in one record of a chunk: the fast encoder takes the others, the careful encoder
    that one (and counts the NaN); every row is what the careful encoder makes of its record."""
    from monitor.sdk.postgres.encode import int4
    from monitor.sdk.records import WriteResult

    ns = time.time_ns()
    chunk = [
        (f"o{i}", ns + i, {"x": float(i), "c": "k"}, 1, {"0": 0.4, "1": 0.6}, 2.0, {"r": "eu"})
        for i in range(100)
    ]
    chunk[50] = (*chunk[50][:2], {"x": math.nan, "c": "k"}, *chunk[50][3:])
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        writer.write_predictions("odd", "1", chunk[:1])  # registers the shape and classes
        model_id = writer.model_id("odd")
        fixed = (int4(model_id), int4(writer.version_id(model_id, "1")))
        schema = writer.schema(model_id)
        mixed = writer._encode_fast(model_id, "1", fixed, schema, chunk)
        assert [i for i, row in enumerate(mixed) if row is None] == [50]
        result = WriteResult()
        rows = writer._encode_chunk(model_id, "1", fixed, schema, chunk, result, [])
        reference = WriteResult()
        assert rows == [
            writer._prediction_row(model_id, "1", fixed, schema, rec, reference) for rec in chunk
        ]
        assert result.counts.nonfinite == reference.counts.nonfinite == 1
