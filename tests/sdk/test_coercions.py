"""Inputs that used to be stored wrongly with nothing counted (issue 13, "Coercions"): each is now
stored as the caller meant, or refused and counted; strict mode raises for every case counted."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor import Monitor
from tests.sdk.conftest import count


def _client(dsn: str, spool_dir: Path, **kw: Any) -> Monitor:
    return Monitor("coerce", "1", dsn=dsn, spool_dir=spool_dir, **kw)


def _row(pg: psycopg.Connection, sql: str, *args: Any) -> tuple[Any, ...]:
    row = pg.execute(sql, args).fetchone()
    assert row is not None, sql
    return tuple(row)


def test_numeric_timestamps_are_unix_seconds_and_other_units_are_refused(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    client = _client(dsn, spool_dir)
    client.log({"x": 1.0}, 0, id="s", timestamp=1_765_000_000)  # type: ignore[arg-type]
    client.log({"x": 1.0}, 0, id="f", timestamp=1_765_000_000.25)  # type: ignore[arg-type]
    client.log({"x": 1.0}, 0, id="iso", timestamp="2025-12-06T05:46:40Z")  # type: ignore[arg-type]
    client.log({"x": 1.0}, 0, id="ms", timestamp=1_765_000_000_000)  # type: ignore[arg-type]
    client.log({"x": 1.0}, 0, id="neg", timestamp=-5)  # type: ignore[arg-type]
    client.log_actual("s", 1, timestamp=1_765_000_000)  # type: ignore[arg-type]
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    at = datetime(2025, 12, 6, 5, 46, 40, tzinfo=UTC)
    times = dict(pg.execute("SELECT record_id, event_ts FROM predictions").fetchall())
    assert times == {"s": at, "iso": at, "f": at.replace(microsecond=250_000)}
    assert _row(pg, "SELECT event_ts FROM actuals WHERE record_id = 's'") == (at,)
    assert stats["dropped"] == {"invalid": 2}
    assert "milliseconds" in str(stats["last_error"]) or "1970" in str(stats["last_error"])


def test_ids_are_stored_as_the_caller_meant(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    import pandas as pd

    client = _client(dsn, spool_dir)
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    client.log({"x": 1.0}, 0, id=12345)  # type: ignore[arg-type]
    client.log({"x": 2.0}, 0, id=key)  # type: ignore[arg-type]
    client.log({"x": 3.0}, 0, id=1.5)  # type: ignore[arg-type]  # not an id: refused
    client.log_actual(12345, 1)  # type: ignore[arg-type]
    client.log_actual(None, 1)  # type: ignore[arg-type]  # used to be stored as "None"
    frame = pd.DataFrame(
        {"id": [7.0, math.nan, math.nan, 9.0], "x": [1.0, 2.0, 3.0, 4.0], "prediction": 0}
    )
    assert client.log_batch(frame) == 4
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    ids = {r[0] for r in pg.execute("SELECT record_id FROM predictions").fetchall()}
    generated = ids - {"12345", str(key), "7", "9"}
    assert ids >= {"12345", str(key), "7", "9"} and len(generated) == 2  # NaN: new ids each
    assert all(uuid.UUID(i).version == 7 for i in generated)
    assert {r[0] for r in pg.execute("SELECT record_id FROM actuals").fetchall()} == {"12345"}
    assert stats["dropped"] == {"invalid": 2} and stats["duplicates"] == 0


def test_values_of_other_types_are_stored_as_meant_or_counted(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    import pandas as pd

    client = _client(dsn, spool_dir)
    client.log({"d": Decimal("1.5"), "na": 1.0, "c": "k"}, 0, id="shape")
    assert client.flush(10)
    client.log({"d": Decimal("2.25"), "na": pd.NA, "c": pd.NaT}, 0, id="missing")
    client.log({1: 0.5, "d": 1.0}, 0, id="int-key")  # type: ignore[dict-item]
    client.log({"d": 1.0}, 1, id="classes", proba={"0": 0.2, "1": 0.8})  # names the classes
    assert client.flush(10)
    client.log({"d": 1.0}, 1, id="unknown-classes", proba={"cat": 0.9, "dog": 0.1})
    client.log({"d": 1.0}, 1, id="one-class-missing", proba={"1": 0.8})
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    numeric = "SELECT name, position FROM features WHERE kind = 'numeric'"
    slots = dict(pg.execute(numeric).fetchall())
    num, cat, extra = _row(
        pg, "SELECT num, cat, extra FROM predictions WHERE record_id = 'missing'"
    )
    assert num[slots["d"]] == 2.25 and num[slots["na"]] is None  # a number; a null
    assert cat == [None] and extra is None  # NaT: a null, not the text "NaT"
    assert "1" in slots and stats["cleaned"]["keys_stringified"] == 1
    probas = dict(pg.execute("SELECT record_id, proba FROM predictions WHERE proba IS NOT NULL"))
    assert set(probas) == {"classes"}  # the first proba named the classes; the other is counted
    assert stats["cleaned"]["proba_mismatch"] == 2
    assert stats["cleaned"]["stringified"] == 0 and stats["cleaned"]["type_errors"] == 0


# Each case: a first record, then one that the worker cleans, counts or refuses; and where
# stats() shows it. Strict mode must raise for the second record of each.
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("nan value", {"features": {"x": math.nan}}, "cleaned.nonfinite"),
    ("inf prediction", {"prediction": math.inf}, "cleaned.nonfinite"),
    ("unsupported type", {"features": {"x": 1.0, "o": object()}}, "cleaned.stringified"),
    ("kind changes", {"features": {"x": "text"}}, "cleaned.type_errors"),
    ("nul in text", {"features": {"x": 1.0, "c": "a\x00b"}}, "cleaned.nul_removed"),
    ("int key", {"features": {"x": 1.0, 2: 1.0}}, "cleaned.keys_stringified"),
    ("nul in name", {"features": {"x\x00": 1.0}}, "dead_letters"),
    ("reserved name", {"features": {"@score": 1.0}}, "dead_letters"),
    ("empty id", {"id": ""}, "dead_letters"),
    ("float id", {"id": 1.5}, "dropped.invalid"),
    ("milliseconds", {"timestamp": 1_765_000_000_000}, "dropped.invalid"),
    ("huge latency", {"latency_ms": 1e300}, "cleaned.nonfinite"),
    ("other classes", {"proba": {"a": 0.5, "b": 0.5}}, "cleaned.proba_mismatch"),
    ("too large", {"features": {"x": 1.0, "big": "y" * 300_000}}, "dropped.too_large"),
    ("not a mapping", {"features": [1, 2]}, "dropped.invalid"),
]


def _log(client: Monitor, **kw: Any) -> None:
    args: dict[str, Any] = {"features": {"x": 1.0}, "prediction": 0.5, "proba": None} | kw
    client.log(
        args.pop("features"),
        args.pop("prediction"),
        **args,
    )


def _counted(stats: dict[str, Any], where: str) -> int:
    group, _, name = where.partition(".")
    value = stats[group]
    return int(value.get(name, 0) if name else value)


@pytest.mark.parametrize(("case", "record", "where"), CASES, ids=[c[0] for c in CASES])
def test_what_stats_counts_strict_mode_raises(
    dsn: str, spool_dir: Path, case: str, record: dict[str, Any], where: str
) -> None:
    lenient = _client(dsn, spool_dir / "lenient")
    _log(lenient, id="first", proba={"0": 0.4, "1": 0.6})
    assert lenient.flush(10)
    _log(lenient, **record)
    assert lenient.flush(10)
    counted = _counted(lenient.stats(), where)
    lenient.shutdown()
    assert counted >= 1, (case, lenient.stats())

    strict = _client(dsn, spool_dir / "strict", strict=True)
    _log(strict, id="first", proba={"0": 0.4, "1": 0.6})
    with pytest.raises((TypeError, ValueError)):
        _log(strict, **record)
    strict.shutdown()


def test_counts_do_not_leak_between_records(
    dsn: str, spool_dir: Path, pg: psycopg.Connection
) -> None:
    """The plain records around an odd one are stored exactly and counted as exported."""
    client = _client(dsn, spool_dir)
    for i in range(10):
        client.log({"x": float(i)}, 0.5, id=f"p{i}")
    client.log({"x": math.nan}, 0.5, id="odd")
    assert client.flush(10)
    stats = client.stats()
    client.shutdown()
    assert count(pg, "predictions") == 11 and stats["exported"] == 11
    assert stats["cleaned"]["nonfinite"] == 1
