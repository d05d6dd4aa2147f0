"""The SDK contract against a real Postgres: never raises, bounded queue, batching, cleaning,
idempotent writes, dead letters, stats, log_actual joins, log_batch."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import monitor
from monitor import Monitor
from tests.sdk.conftest import count


def _client(dsn: str, spool_dir: Path, **kw: object) -> Monitor:
    return Monitor("fraud", "2026-11", dsn=dsn, spool_dir=spool_dir, **kw)  # type: ignore[arg-type]


def test_before_init_calls_are_counted_noops() -> None:
    monitor.shutdown()
    before = monitor.stats()["dropped"]["not_initialized"]
    monitor.log({"a": 1.0}, 0.5)
    monitor.log_actual("x", 1)
    assert monitor.log_batch([{"a": 1.0, "prediction": 1}]) == 0
    assert monitor.flush() is True
    stats = monitor.stats()
    assert stats["initialized"] is False
    assert stats["dropped"]["not_initialized"] == before + 3


def test_configuration_errors_raise_at_init(spool_dir: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Monitor("m", "v")
    with pytest.raises(ValueError, match="model"):
        Monitor("", "v", dsn="postgresql://x@127.0.0.1/db")
    with pytest.raises(psycopg.ProgrammingError):
        Monitor("m", "v", dsn="host=127.0.0.1 nonsense_option=1 =bad")
    with pytest.raises(ValueError, match="http"):
        Monitor("m", "v", url="ftp://collector")


def test_log_lands_with_features_prediction_and_registration(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    ts = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    client.log(
        {"amount": 12.5, "country": "DE", "n": 3, "flag": True},
        0.91,
        id="r1",
        timestamp=ts,
        latency_ms=3.5,
        segment={"region": "eu"},
        proba={"1": 0.91, "0": 0.09},
    )
    client.log({"amount": 1.0, "country": "FR", "new_feature": "x"}, "yes", id="r2")
    assert client.flush(10) is True
    row = pg.execute(
        "SELECT p.event_ts, p.num, p.cat, p.prediction_num, p.proba, p.latency_ms, p.segment, "
        "v.version, v.classes FROM predictions p JOIN model_versions v ON v.id = p.version_id "
        "WHERE record_id = 'r1'"
    ).fetchone()
    assert row is not None
    event_ts, num, cat, pred, proba, latency, segment, version, classes = row
    assert event_ts == ts and version == "2026-11" and classes == ["0", "1"]
    slots = dict(pg.execute("SELECT name, kind || ':' || position FROM features").fetchall())
    assert slots["amount"].startswith("numeric") and slots["country"].startswith("categorical")
    assert num[int(slots["amount"].split(":")[1])] == 12.5
    assert num[int(slots["flag"].split(":")[1])] == 1.0
    assert cat[int(slots["country"].split(":")[1])] == "DE"
    assert pred == 0.91 and proba == [0.09, 0.91] and latency == 3.5
    assert segment == {"region": "eu"}
    # A feature the schema did not know was registered, not dropped; string prediction kept.
    assert "new_feature" in slots
    r2 = pg.execute(
        "SELECT cat, prediction_cat, event_ts FROM predictions WHERE record_id = 'r2'"
    ).fetchone()
    assert r2 is not None and "x" in r2[0] and r2[1] == "yes"
    assert abs(r2[2] - datetime.now(UTC)) < timedelta(minutes=1)  # default: now, UTC
    stats = client.stats()
    assert stats["enqueued"] == 2 and stats["exported"] == 2 and stats["dropped_total"] == 0
    assert client.shutdown(5) is True


def test_generated_ids_are_uuid7_and_unique(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    for i in range(500):
        client.log({"x": float(i)}, 0)
    assert client.flush(10)
    ids = [r[0] for r in pg.execute("SELECT record_id FROM predictions").fetchall()]
    assert len(set(ids)) == 500
    import uuid

    assert all(uuid.UUID(i).version == 7 for i in ids)
    client.shutdown()


def test_never_raises_and_strict_mode_reraises(dsn: str, spool_dir: Path) -> None:
    client = _client(dsn, spool_dir)
    client.log(None, 1)  # type: ignore[arg-type]
    client.log(42, 1)  # type: ignore[arg-type]
    assert client.stats()["dropped"]["invalid"] == 2
    strict = _client(dsn, spool_dir, strict=True)
    with pytest.raises(TypeError):
        strict.log(42, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO 8601"):
        strict.log({"a": 1}, 1, timestamp="yesterday")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        strict.log_actual(None, 1)  # type: ignore[arg-type]
    client.shutdown()
    strict.shutdown()


def test_queue_overflow_drops_oldest_and_counts(dsn: str, spool_dir: Path) -> None:
    # The worker is busy (we hold its lock, as a long export would): nothing leaves the queue
    # while we overfill it.
    client = _client(dsn, spool_dir, queue_size=100, batch_size=10_000, interval=3600)
    with client._worker.export_lock:
        for i in range(250):
            client.log({"x": float(i)}, 0, id=f"r{i}")
        stats = client.stats()
        assert [r[0] for r in list(client._worker.queue)[:1]] == ["r150"]  # the oldest went
    assert stats["enqueued"] == 250
    assert stats["dropped"]["queue_full"] == 150
    assert client.flush(10)
    assert client.stats()["exported"] == 100
    client.shutdown()


def test_batches_by_size_and_by_interval(dsn: str, spool_dir: Path, pg: psycopg.Connection) -> None:
    import time

    client = _client(dsn, spool_dir, batch_size=50, interval=0.3)
    for i in range(120):
        client.log({"x": float(i)}, 0)
    deadline = time.monotonic() + 5
    while count(pg, "predictions") < 120 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(pg, "predictions") == 120  # 2 full batches + the rest by the interval
    client.shutdown()


def test_bad_values_are_cleaned_and_counted(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    class Weird:
        def __str__(self) -> str:
            return "weird"

    client = _client(dsn, spool_dir, max_record_bytes=10_000)
    client.log({"a": math.nan, "b": math.inf, "c": "ok\x00"}, math.nan, id="nan")
    client.log({"a": 1.0, "b": 2.0, "c": Weird()}, Weird(), id="weird")
    client.log({"a": "not a number", "b": 1.0, "c": "x"}, 1, id="mismatch")
    client.log({"a": 1.0, "big": "x" * 20_000}, 1, id="huge")
    client.log({"a": 1.0}, 1, id="float4", latency_ms=1e300)
    assert client.flush(10)
    stats = client.stats()
    assert stats["cleaned"]["nonfinite"] == 4  # a, b, prediction, latency 1e300
    assert stats["cleaned"]["stringified"] == 2
    assert stats["cleaned"]["type_errors"] == 1
    assert stats["dropped"]["too_large"] == 1
    rows = dict(pg.execute("SELECT record_id, extra FROM predictions").fetchall())
    assert set(rows) == {"nan", "weird", "mismatch", "float4"}
    assert rows["mismatch"] == {"a": "not a number"}  # kept, not dropped
    client.shutdown()


def test_rejected_rows_are_bisected_into_dead_letters(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    for i in range(40):
        client.log({"x": float(i)}, 0, id=f"ok{i}")
    # Refused by the encoder (a lone surrogate is not UTF-8) and by the database (a jsonb
    # key it cannot hold: NUL is removed and counted, the record kept); a time that is not
    # one is refused by log() itself (counted as invalid).
    client.log({"x": 1.0}, 0, id="nul-key", segment={"re\x00gion": "eu"})
    client.log({"x": 1.0, "c": "\ud800"}, 0, id="bad2")
    client.log({"x": 1.0}, 0, id="bad3", timestamp="not-a-time")  # type: ignore[arg-type]
    assert client.flush(10)
    assert count(pg, "predictions") == 41  # the good neighbours all landed
    letters = pg.execute("SELECT kind, record, error FROM dead_letters ORDER BY id").fetchall()
    assert [r[1].split('"id":')[1][2:6] for r in letters] == ["bad2"]
    assert {r[0] for r in letters} == {"prediction"}
    stats = client.stats()
    assert stats["dead_letters"] == 1 and stats["dropped"] == {"invalid": 1}
    assert stats["cleaned"]["nul_removed"] == 1
    assert "not ISO 8601" in (stats["last_error"] or "")
    segment = pg.execute("SELECT segment FROM predictions WHERE record_id = 'nul-key'").fetchone()
    assert segment == ({"region": "eu"},)
    client.shutdown()


def test_replay_is_idempotent(dsn: str, spool_dir: Path, pg: psycopg.Connection) -> None:
    from monitor.sdk.postgres.writer import PostgresWriter
    from monitor.sdk.records import PredictionRecord

    ts = datetime(2026, 11, 20, tzinfo=UTC)
    recs = [PredictionRecord(f"r{i}", ts, {"x": float(i)}, 1) for i in range(100)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        first = writer.write_predictions("fraud", "v1", recs[:60])
        again = writer.write_predictions("fraud", "v1", recs)  # overlaps: the replay path
        dup_in_batch = writer.write_predictions("fraud", "v1", [recs[0], recs[0]])
    assert (first.inserted, first.duplicates) == (60, 0)
    assert (again.inserted, again.duplicates) == (40, 60)
    assert (dup_in_batch.inserted, dup_in_batch.duplicates) == (0, 2)
    assert count(pg, "predictions") == 100


def test_log_actual_joins_before_or_after_prediction(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    client.log_actual("early", 1)  # label first
    assert client.flush(10)
    client.log({"x": 1.0}, 0.7, id="early")
    client.log({"x": 2.0}, 0.2, id="late")
    assert client.flush(10)
    client.log_actual("late", "no")
    client.log_actual("late", 0)  # a correction: the latest wins
    assert client.flush(10)
    joined = dict(
        pg.execute(
            "SELECT p.record_id, coalesce(a.actual_num::text, a.actual_cat) FROM predictions p "
            "JOIN actuals a USING (model_id, record_id)"
        ).fetchall()
    )
    assert joined == {"early": "1", "late": "0"}
    client.shutdown()


def test_sixteen_threads_exact_count(dsn: str, spool_dir: Path, pg: psycopg.Connection) -> None:
    client = _client(dsn, spool_dir, queue_size=100_000)
    per_thread = 2_000

    def work(t: int) -> None:
        for i in range(per_thread):
            client.log({"x": float(i), "t": str(t)}, 0, id=f"{t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(30)
    stats = client.stats()
    assert stats["enqueued"] == 16 * per_thread == stats["exported"]
    assert stats["dropped_total"] == 0
    assert count(pg, "predictions") == 16 * per_thread
    client.shutdown()


def test_log_batch_from_records_and_dataframe(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    import pandas as pd

    client = _client(dsn, spool_dir, queue_size=500)
    rows = [{"id": f"b{i}", "x": float(i), "c": "a", "prediction": i % 2} for i in range(2_000)]
    assert client.log_batch(rows) == 2_000  # waits for room instead of dropping
    frame = pd.DataFrame(
        {
            "id": ["d1", "d2"],
            "x": [1.0, 2.0],
            "timestamp": pd.to_datetime(["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"]),
            "prediction": [0.1, 0.9],
        }
    )
    assert client.log_batch(frame) == 2
    assert client.flush(20)
    assert count(pg, "predictions") == 2_002
    assert client.stats()["dropped_total"] == 0
    ts = pg.execute("SELECT event_ts FROM predictions WHERE record_id = 'd2'").fetchone()
    assert ts is not None and ts[0] == datetime(2026, 11, 20, 11, tzinfo=UTC)
    client.shutdown()


def test_facade_and_stats_report_to_server(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    monitor.init(model="fraud", version="2026-11", dsn=dsn, spool_dir=spool_dir)
    monitor.log({"x": 1.0}, 1, id="f1")
    monitor.log_actual("f1", 1)
    assert monitor.flush(10)
    stats = monitor.stats()
    assert stats["initialized"] and stats["exported"] == 2
    assert monitor.shutdown(5)
    report = pg.execute("SELECT instance, stats FROM sdk_reports").fetchone()
    assert report is not None and report[1]["exported"] == 2
    assert report[0] == stats["instance"]


def test_several_models_in_one_process(dsn: str, spool_dir: Path, pg: psycopg.Connection) -> None:
    a = Monitor("model-a", "1", dsn=dsn, spool_dir=spool_dir)
    b = Monitor("model-b", "7", dsn=dsn, spool_dir=spool_dir)
    a.log({"x": 1.0}, 1)
    b.log({"y": "q"}, "z")
    assert a.flush(10) and b.flush(10)
    names = pg.execute(
        "SELECT m.name, v.version FROM predictions p JOIN models m ON m.id = p.model_id "
        "JOIN model_versions v ON v.id = p.version_id ORDER BY 1"
    ).fetchall()
    assert names == [("model-a", "1"), ("model-b", "7")]
    a.shutdown()
    b.shutdown()


def test_mutation_after_log_does_not_change_the_record(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    features = {"x": 1.0}
    client.log(features, 0, id="m")
    features["x"] = 99.0
    assert client.flush(10)
    row = pg.execute("SELECT num FROM predictions WHERE record_id = 'm'").fetchone()
    assert row is not None and row[0] == [1.0]
    client.shutdown()


def test_fast_and_general_encodings_store_the_same_values(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    ts = datetime(2026, 11, 21, 8, 30, 15, 123456, tzinfo=UTC)
    features = {"x": 1.25, "y": -3.0, "n": 7, "c": "DE", "d": "ümlaut"}
    for i in range(3):  # fast path (after the first batch registered the shape)
        client.log(features, 0.75, id=f"fast{i}", timestamp=ts, latency_ms=2.5)
    client.flush(10)
    client.log(features, 0.75, id="fast-again", latency_ms=2.5)
    client.log(features, 0.75, id="general", timestamp=ts, latency_ms=2.5, segment={"r": "eu"})
    client.log(features, 1, id="int-prediction")
    assert client.flush(10)
    rows = {
        r[0]: r[1:]
        for r in pg.execute(
            "SELECT record_id, num, cat, prediction_num, latency_ms, event_ts FROM predictions"
        ).fetchall()
    }
    assert rows["fast0"][:4] == rows["general"][:4] == rows["fast-again"][:4]
    assert rows["fast0"][4] == rows["general"][4] == ts
    assert rows["fast0"][0] == [1.25, -3.0, 7.0] and rows["fast0"][1] == ["DE", "ümlaut"]
    assert rows["int-prediction"][2] == 1.0
    client.shutdown()
