"""The fast encoder: its C twin against the Python reference, and both against the careful path.

The rules: for any batch, C and Python give the same answer row by row (the same bytes, or
None for the same declined rows); a row they take is the careful path's bytes for that record.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import Monitor
from monitor.sdk.postgres import fast
from monitor.sdk.postgres.encode import SegmentCache, TextCache, int4
from monitor.sdk.postgres.fast import Columns, FastPlan, encode_rows, encode_rows_py
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import PredictionRecord, WriteResult

NUMERIC = ["a", "b", "c"]
CATEGORICAL = ["x", "y"]
PLAN = FastPlan(NUMERIC, CATEGORICAL)
FIXED = (int4(3), int4(7))
ORDER = ("n", "p")
NOW = time.time_ns()

numbers = st.one_of(
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=-(2**60), max_value=2**60),
)
odd_numbers = st.one_of(
    st.floats(),  # NaN, infinities
    st.integers(),  # beyond float range too
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.sampled_from([1e308, -1e308, 3.5e38, 1e-320]),
)
categories = st.one_of(
    st.sampled_from(["cat0", "cat1", "naïve", "", None]),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=6),
)
odd_categories = st.one_of(categories, st.integers(), st.floats(), st.just("a\x00b"), st.just([]))
ids = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(max_value=-1),
    st.sampled_from(["bad\ud800", "", "a\x00"]),
    st.floats(),
)
probas = st.one_of(
    st.none(),
    st.fixed_dictionaries({"n": numbers, "p": numbers}),
    st.lists(numbers, min_size=1, max_size=4),
    st.tuples(numbers, numbers),
)
odd_probas = st.one_of(
    probas,
    st.fixed_dictionaries({"n": odd_numbers, "p": numbers}),
    st.fixed_dictionaries({"n": numbers}),  # a class missing
    st.fixed_dictionaries({"n": numbers, "p": numbers, "q": numbers}),  # a new class
    st.just({0: 0.5, 1: 0.5}),  # keys that are not strings
    st.lists(odd_numbers, max_size=3),
    st.sampled_from(["0.5", 0.5, [0.5] * 65]),
)
segments = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.sampled_from(["region", "tier"]), st.sampled_from(["eu", "us", "ü"])),
)
odd_segments = st.one_of(
    segments,
    st.sampled_from([{"region": 5}, {7: "a"}, {"r": "a\x00b"}, {"r": None}, ["eu"], {"r": []}]),
)
times = st.one_of(
    st.integers(min_value=NOW - 10**15, max_value=NOW + 10**15),
    st.datetimes(timezones=st.just(UTC)),
)
odd_times = st.one_of(
    times,
    st.datetimes(),  # naive
    st.integers(),  # beyond int8 too
    st.text(max_size=5),
)


@st.composite
def batches(draw: st.DrawFn, plain: bool) -> Columns:
    n = draw(st.integers(min_value=1, max_value=6))
    num = numbers if plain else st.one_of(numbers, odd_numbers)
    cat = categories if plain else odd_categories
    feats: list[Any] = []
    for _ in range(n):
        row: dict[Any, Any] = {k: draw(num) for k in NUMERIC}
        row.update({k: draw(cat) for k in CATEGORICAL})
        if not plain and draw(st.integers(0, 4)) == 0:
            row.pop(draw(st.sampled_from(NUMERIC + CATEGORICAL)))
        if not plain and draw(st.integers(0, 4)) == 0:
            row["extra"] = 1.0
        feats.append(row if plain or draw(st.integers(0, 9)) else list(row.items()))
    constant = draw(st.booleans())
    first = draw(times if plain else odd_times)
    return Columns(
        feats,
        [f"r{i}" for i in range(n)] if plain else [draw(ids) for _ in range(n)],
        [first] * n if constant else [draw(times if plain else odd_times) for _ in range(n)],
        [draw(num) for _ in range(n)],
        [draw(st.one_of(st.none(), st.floats(-1e38, 1e38)) if plain else st.one_of(
            st.none(), numbers, odd_numbers)) for _ in range(n)],
        [draw(probas if plain else odd_probas) for _ in range(n)],
        [draw(segments if plain else odd_segments) for _ in range(n)],
    )  # fmt: skip


def both(columns: Columns) -> tuple[list[bytes | None], list[bytes | None]]:
    c_rows = encode_rows(columns, PLAN, *FIXED, TextCache(), ORDER, SegmentCache())
    py_rows = encode_rows_py(
        columns, PLAN, *FIXED, TextCache(), ORDER, SegmentCache(), PLAN.n + PLAN.m
    )
    return c_rows, py_rows


def test_the_extension_is_built() -> None:
    """The package builds it where a C compiler exists (CI does): a silent fallback would hide
    a broken build behind a several times slower worker."""
    assert fast._speedups is not None


@settings(max_examples=300, deadline=None)
@given(batches(plain=True))
def test_plain_batches_encode_identically_in_c_and_python(columns: Columns) -> None:
    c_rows, py_rows = both(columns)
    assert None not in py_rows
    assert c_rows == py_rows


@settings(max_examples=600, deadline=None)
@given(batches(plain=False))
def test_c_and_python_take_and_decline_the_same_rows(columns: Columns) -> None:
    c_rows, py_rows = both(columns)
    assert c_rows == py_rows


def test_unusual_records_are_declined() -> None:
    plain = {"a": 1.0, "b": 2, "c": -3.5, "x": "u", "y": "v"}

    def one(**kw: Any) -> bytes | None:
        column = {"feats": plain, "ids": "r", "times": NOW, "preds": 0.5, "lats": None} | kw
        rows = encode_rows(
            Columns(*[[column[k]] for k in ("feats", "ids", "times", "preds", "lats")]),
            PLAN,
            *FIXED,
            TextCache(),
            ORDER,
            SegmentCache(),
        )
        return rows[0]

    assert one() is not None
    for feats in (
        {**plain, "a": math.nan},
        {**plain, "b": True},
        {**plain, "c": "1.0"},
        {**plain, "x": 5},
        {**plain, "y": "a\x00b"},
        {k: v for k, v in plain.items() if k != "a"},
        {**plain, "extra": 1.0},
    ):
        assert one(feats=feats) is None, feats
    assert one(ids="r\x00") is None
    assert one(ids="") is None
    assert one(times=datetime.now()) is None  # naive
    assert one(preds=True) is None
    assert one(lats=1e39) is None


def test_rows_taken_are_the_careful_paths_bytes(dsn: str) -> None:
    """On random batches mixing plain and odd records, each row the fast encoder takes equals
    the careful encoder's bytes for that record (what the database stores does not depend
    on the path), and it takes most plain ones."""
    rng = random.Random(11)
    ns = time.time_ns()
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        seed = PredictionRecord("s0", ns, {"a1": 1.0, "k": "x"}, 1, {"a": 0.1, "b": 0.9})
        writer.write_predictions("encp", "1", [seed])  # registers the shape and classes
        model_id = writer.model_id("encp")
        fixed = (int4(model_id), int4(writer.version_id(model_id, "1")))
        schema = writer.schema(model_id)
        plan = schema.fast_plan(("a1", "k"))
        assert plan is not None
        classes = writer._versions[(model_id, "1")][1]
        taken = declined = 0
        for round_no in range(300):
            odd = round_no % 2 == 1
            batch = [
                PredictionRecord(
                    f"r{round_no}-{i}",
                    rng.choice(
                        [ns + rng.randint(0, 10**9), datetime.fromtimestamp(2**30 + i, UTC)]
                        + ([datetime(2026, 1, 2, 3)] if odd else [])
                    ),
                    {"a1": rng.choice([rng.uniform(-5, 5), 3] + ([math.nan, None] if odd else [])),
                     "k": rng.choice(["x", "y", None] + ([5] if odd else []))},
                    rng.choice([0, 1, 0.5, -2.25] + ([True, math.inf] if odd else [])),
                    rng.choice([None, {"a": 0.2, "b": 0.8}, [0.5, 0.5]]
                               + ([{"a": 1.0}, {0: 0.2, 1: 0.8}] if odd else [])),
                    rng.choice([None, 1.5, 20]),
                    rng.choice([None, {"r": "eu"}, {}] + ([{"r": 5}] if odd else [])),
                )
                for i in range(rng.randint(1, 6))
            ]
            rows = encode_rows(
                Columns.of(batch), plan, *fixed, writer._texts, classes, writer._segments
            )
            for record, row in zip(batch, rows, strict=True):
                if row is None:
                    declined += 1
                    continue
                taken += 1
                careful = writer._prediction_row(
                    model_id, "1", fixed, schema, record, WriteResult()
                )
                assert row == careful, record
        assert taken > 300 and declined > 100, (taken, declined)


def test_the_sdk_stores_the_same_rows_with_and_without_the_c_twin(
    dsn: str, spool_dir: Path, pg: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"id": f"r{i}", "a": i * 0.5, "b": i, "x": f"k{i % 3}", "prediction": i % 2}
        for i in range(3000)
    ]
    for model, accelerated in (("with-c", True), ("without-c", False)):
        if not accelerated:
            monkeypatch.setattr(fast, "_speedups", None)
        client = Monitor(model, "1", dsn=dsn, spool_dir=spool_dir / model)
        assert client.log_batch(rows) == len(rows)
        for i in range(300):  # log()'s worker path, with proba and segment
            client.log(
                {"a": 1.5 * i, "b": i, "x": f"k{i % 4}"},
                i % 2,
                id=f"single{i}",
                proba={"0": 0.25, "1": 0.75} if i % 3 else [0.5, 0.5],
                segment={"region": ["eu", "us"][i % 2]} if i % 5 else None,
                latency_ms=2.5 if i % 7 else None,
            )
        assert client.flush(10)
        assert client.stats()["dropped_total"] == 0
        client.shutdown()
    query = (
        "SELECT p.record_id, p.num, p.cat, p.prediction_num, p.proba, p.segment, p.latency_ms"
        " FROM predictions p JOIN models m ON m.id = p.model_id WHERE m.name = %s ORDER BY 1"
    )
    with_c = pg.execute(query, ("with-c",)).fetchall()
    assert len(with_c) == len(rows) + 300
    assert sum(1 for r in with_c if r[4] is not None and r[5] is not None) > 100
    assert with_c == pg.execute(query, ("without-c",)).fetchall()
