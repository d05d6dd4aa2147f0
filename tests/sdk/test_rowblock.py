"""log_batch's RowBlock: the caller's rows read in place, the same records as taking them apart,
the same COPY bytes as the per-record encoder, and the bulk path's block semantics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor import Monitor
from monitor.sdk import batch as batch_module
from monitor.sdk.postgres.encode import int4
from monitor.sdk.postgres.fast import Columns, encode_rows
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import WriteResult
from monitor.sdk.rowblock import RowBlock
from tests.sdk.conftest import count

KEYS = ("prediction", "proba", "latency_ms", "segment")
RESERVED = frozenset({"prediction", "id", "timestamp", "latency_ms", "proba", "segment"})


def _block(rows: list[dict[str, Any]], ns: int, wanted: frozenset[str] | None = None) -> RowBlock:
    ids = [r.get("id", f"gen{i}") for i, r in enumerate(rows)]
    return RowBlock(rows, ids, [ns] * len(rows), KEYS, RESERVED, wanted)


def test_records_are_the_rows_taken_apart_and_rows_are_not_changed() -> None:
    rows = [
        {"id": "a", "x": 1.0, "prediction": 0.5, "c": "k", "latency_ms": 2.0},
        {"id": "b", "x": 2.0, "prediction": 0.7, "c": "q", "segment": {"s": "1"}},
    ]
    before = [dict(r) for r in rows]
    block = _block(rows, 7)
    assert list(block) == [
        ("a", 7, {"x": 1.0, "c": "k"}, 0.5, None, 2.0, None),
        ("b", 7, {"x": 2.0, "c": "q"}, 0.7, None, None, {"s": "1"}),
    ]
    assert block[1] == list(block)[1] and list(block[1:]) == list(block)[1:]
    only_x = _block(rows, 7, frozenset({"x"}))
    assert only_x[0][2] == {"x": 1.0}
    assert rows == before


def test_uniform_columns_only_for_rows_with_the_first_rows_keys() -> None:
    rows = [{"id": f"r{i}", "x": float(i), "c": "k", "prediction": 0.5} for i in range(4)]
    names = _block(rows, 1).feature_names()
    assert names == ("x", "c")
    assert _block(rows, 1).uniform(names) == ([0.5] * 4, [None] * 4)
    # same length, another key: not uniform (the feature getters would not notice)
    odd = [*rows[:3], {"id": "r3", "x": 1.0, "c": "k", "other": 0.5}]
    assert _block(odd, 1).uniform(names) is None
    assert _block([*rows[:3], {**rows[3], "proba": [0.1, 0.9]}], 1).uniform(names) is None
    assert _block([*rows[:3], {"id": "r3", "x": 1.0, "c": "k"}], 1).uniform(names) is None


def test_block_columns_encode_like_the_per_record_path(dsn: str) -> None:
    ns = time.time_ns()
    rows = [
        {"id": f"r{i}", "x": i * 0.5, "n": i, "c": f"k{i % 3}", "prediction": 0.25 * i}
        for i in range(40)
    ]
    for latency in (None, 1.5):
        for r in rows:
            r["latency_ms"] = latency
        block = _block(rows, ns)
        with psycopg.connect(dsn, autocommit=True) as conn:
            writer = PostgresWriter(conn)
            writer.write_predictions("enc", "1", [block[0]])  # registers the shape
            model_id = writer.model_id("enc")
            fixed = (int4(model_id), int4(writer.version_id(model_id, "1")))
            schema = writer.schema(model_id)
            fast = schema.fast_plan(block.feature_names())
            assert fast is not None
            columns = block.uniform(block.feature_names())
            assert columns is not None
            column_wise = encode_rows(
                Columns(block.rows, block.ids, block.times, *columns),
                fast,
                *fixed,
                writer._texts,
                None,
                writer._segments,
                n_keys=-1,
            )
            one_by_one = [
                writer._prediction_row(model_id, "1", fixed, schema, rec, WriteResult())
                for rec in block
            ]
        assert column_wise == one_by_one


def test_log_batch_blocks_land_once_and_an_error_of_the_rows_comes_after_earlier_blocks(
    dsn: str, spool_dir: Path, pg: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_module, "BULK_BATCH", 100)
    client = Monitor("bulk", "1", dsn=dsn, spool_dir=spool_dir, batch_size=10)
    rows = [{"id": f"b{i}", "x": float(i), "c": "k", "prediction": 0.5} for i in range(250)]
    before = [dict(r) for r in rows]
    assert client.log_batch(rows) == 250
    assert rows == before  # read, never changed
    assert count(pg, "predictions") == 250

    def failing() -> Iterator[dict[str, Any]]:
        for i in range(230):
            yield {"id": f"f{i}", "x": 1.0, "c": "k", "prediction": 0.5}
        raise RuntimeError("the caller's rows broke")

    with pytest.raises(RuntimeError, match="rows broke"):
        client.log_batch(failing())
    assert count(pg, "predictions", "record_id LIKE 'f%'") == 200  # the two full blocks
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    timed = [{**r, "timestamp": at} for r in rows]
    assert client.log_batch(timed) == 250
    assert client.log_batch(timed) == 250  # a replay of rows with their times: nothing doubles
    assert count(pg, "predictions") == 450 + 250
    client.flush(10)
    stats = client.stats()
    assert stats["dropped_total"] == 0 and stats["duplicates"] == 250
    client.shutdown()
