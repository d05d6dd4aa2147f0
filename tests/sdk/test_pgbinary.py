"""The C encoder (monitor/sdk/_speedups.c) against the Python one, its reference.

The rule: for any input, C answers None (then Python decides) or exactly Python's bytes.
The inputs mix the plain case with everything the Python encoder treats specially.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import Monitor
from monitor.sdk import _speedups, pgbinary
from monitor.sdk.pgbinary import FastPlan, TextCache, encode_columns, encode_columns_py, int4
from monitor.sdk.records import format_id

NUMERIC = ["a", "b", "c"]
CATEGORICAL = ["x", "y"]
PLAN = FastPlan(NUMERIC, CATEGORICAL)
FIXED = (int4(3), int4(7))
NOW = time.time_ns()

numbers = st.one_of(  # bounded: the Python encoder refuses a column whose sum overflows
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
    st.sampled_from(["cat0", "cat1", "naïve", ""]),
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=6),
)
odd_categories = st.one_of(categories, st.none(), st.integers(), st.floats(), st.just("a\x00b"))
ids = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(max_value=-1),
    st.just("bad\ud800"),
)


@st.composite
def batches(draw: st.DrawFn, plain: bool) -> tuple[list[Any], ...]:
    n = draw(st.integers(min_value=1, max_value=6))
    num = numbers if plain else st.one_of(numbers, odd_numbers)
    cat = categories if plain else odd_categories
    feats: list[Any] = []
    for _ in range(n):
        row: dict[str, Any] = {k: draw(num) for k in NUMERIC}
        row.update({k: draw(cat) for k in CATEGORICAL})
        if not plain and draw(st.booleans()):
            row.pop(draw(st.sampled_from(NUMERIC + CATEGORICAL)))
        feats.append(row)
    record_ids = [f"r{i}" for i in range(n)] if plain else [draw(ids) for _ in range(n)]
    kind = draw(st.sampled_from(["constant", "varying", "datetime"] if not plain else ["c", "v"]))
    if kind in ("constant", "c"):
        times: list[Any] = [NOW] * n
    elif kind in ("varying", "v"):
        times = [NOW + draw(st.integers(-(10**12), 10**12)) for _ in range(n)]
    else:
        times = [datetime.now(UTC)] * n
    preds = [draw(num) for _ in range(n)]
    if draw(st.booleans()):
        lats: list[Any] = [None] * n
    else:
        lats = [draw(num if plain else st.one_of(numbers, odd_numbers)) for _ in range(n)]
        if plain:
            lats = [max(-1e38, min(1e38, float(v))) for v in lats]
    return feats, record_ids, times, preds, lats


def both(feats: list[Any], *columns: list[Any]) -> tuple[list[bytes] | None, list[bytes] | None]:
    args = (
        feats,
        *columns,
        PLAN.numeric_names,
        PLAN.categorical_names,
        pgbinary.FIELDS + FIXED[0] + pgbinary.LEN8,
        FIXED[1] + PLAN.num_head,
        PLAN.cat_head,
    )
    c_rows = _speedups.encode_columns(
        *args, TextCache(), format_id, None, None, None, None, pgbinary.datetime_micros
    )
    py_rows = encode_columns_py(feats, *columns, PLAN, *FIXED, TextCache())
    return c_rows, py_rows


def test_the_extension_is_built() -> None:
    """The package builds it where a C compiler exists (CI does): a silent fallback would hide
    a broken build behind 3-4x slower ingest."""
    assert pgbinary._speedups is _speedups


@settings(max_examples=300, deadline=None)
@given(batches(plain=True))
def test_plain_batches_encode_in_c_to_the_same_bytes(batch: tuple[list[Any], ...]) -> None:
    c_rows, py_rows = both(*batch)
    assert py_rows is not None
    assert c_rows == py_rows


@settings(max_examples=600, deadline=None)
@given(batches(plain=False))
def test_any_batch_is_either_left_to_python_or_encoded_identically(
    batch: tuple[list[Any], ...],
) -> None:
    """C may take a batch the Python column encoder declines as a whole (each row with its
    own kind of latency or time); each of its rows must then be that row encoded alone by
    Python. In partial mode, the rows it declines are Nones and the others the same."""
    c_rows, py_rows = both(*batch)
    alone = [both(*[[column[i]] for column in batch])[1] for i in range(len(batch[0]))]
    if c_rows is not None:
        if py_rows is not None:
            assert c_rows == py_rows
        assert c_rows == [row[0] if row else None for row in alone]
    partial = encode_columns(*batch, PLAN, *FIXED, TextCache(), True)
    assert partial is not None and len(partial) == len(batch[0])
    for row, reference in zip(partial, alone, strict=True):
        assert row is None or [row] == reference


def test_unusual_values_are_left_to_python() -> None:
    plain = {"a": 1.0, "b": 2, "c": -3.5, "x": "u", "y": "v"}
    cases: list[dict[str, Any]] = [
        {**plain, "a": math.nan},
        {**plain, "b": True},
        {**plain, "c": "1.0"},
        {**plain, "x": 5},
        {**plain, "y": "a\x00b"},
        {k: v for k, v in plain.items() if k != "a"},
    ]
    for row in cases:
        assert both([row], ["r"], [NOW], [0.5], [None])[0] is None, row
    assert both([plain], ["r\x00"], [NOW], [0.5], [None])[0] is None
    assert both([plain], ["r"], [datetime.now()], [0.5], [None])[0] is None  # naive
    assert both([plain], ["r"], [NOW], [True], [None])[0] is None
    assert both([plain], ["r"], [NOW], [0.5], [1e39])[0] is None
    c_rows, py_rows = both([plain], ["r"], [NOW], [0.5], [None])
    assert c_rows is not None and c_rows == py_rows


def test_encode_columns_uses_c_and_falls_back_to_python() -> None:
    plain = {"a": 1.0, "b": 2, "c": -3.5, "x": "u", "y": None}
    rows = encode_columns([plain], [2**100], [NOW], [1], [0.25], PLAN, *FIXED, TextCache())
    assert rows == encode_columns_py(
        [plain], [2**100], [NOW], [1], [0.25], PLAN, *FIXED, TextCache()
    )
    at = [datetime(2026, 1, 2, tzinfo=UTC)]
    by_python = encode_columns([plain], ["r"], at, [1.0], [None], PLAN, *FIXED, TextCache())
    assert by_python is not None  # aware datetimes: C takes them too, with the same bytes
    assert by_python == encode_columns_py(
        [plain], ["r"], at, [1.0], [None], PLAN, *FIXED, TextCache()
    )


def test_the_sdk_stores_the_same_rows_with_and_without_the_c_encoder(
    dsn: str, spool_dir: Path, pg: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"id": f"r{i}", "a": i * 0.5, "b": i, "x": f"k{i % 3}", "prediction": i % 2}
        for i in range(3000)
    ]
    for model, accelerated in (("with-c", True), ("without-c", False)):
        if not accelerated:
            monkeypatch.setattr(pgbinary, "_speedups", None)
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


def test_records_with_proba_and_segment_encode_in_c_like_the_general_path(dsn: str) -> None:
    """C takes batches with a proba (a mapping over the version's classes, or a sequence) and
    a segment (string keys and values); its bytes are the general path's, record by record,
    or it declines. Random batches mix the plain case with what the general path cleans."""
    import random

    from monitor.sdk.pgbinary import SegmentCache, encode_uniform_batch
    from monitor.sdk.pgwriter import PostgresWriter
    from monitor.sdk.records import WriteResult

    rng = random.Random(11)
    plain_probas: list[Any] = [
        None,
        {"a": 0.2, "b": 0.3, "c": 0.5},
        {"c": 0.1, "a": 0.6, "b": 0.3},
        [0.25, 0.75],
        (1, 0.0, 0.5),
    ]
    odd_probas: list[Any] = [
        {"a": 0.2, "b": 0.8},  # a class missing
        {"a": 0.2, "b": 0.3, "c": 0.4, "d": 0.1},  # a new class
        {0: 0.5, 1: 0.5, 2: 0.0},  # keys that are not strings
        {"a": math.nan, "b": 0.5, "c": 0.5},
        [True, 0.5],
        [],
        "0.5",
        0.5,
    ]
    plain_segments: list[Any] = [None, {}, {"region": "eu"}, {"region": "ümlaut", "tier": "x"}]
    odd_segments: list[Any] = [{"region": 5}, {7: "a"}, {"r": "a\x00b"}, {"r": None}, ["eu"]]
    ns = time.time_ns()
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        seed_record = (
            "s0",
            ns,
            {"a1": 1.0, "k": "x"},
            1,
            {"a": 0.1, "b": 0.2, "c": 0.7},
            None,
            None,
        )
        writer.write_predictions("encp", "1", [seed_record])  # registers the shape and classes
        model_id = writer.model_id("encp")
        fixed = (int4(model_id), int4(writer.version_id(model_id, "1")))
        schema = writer.schema(model_id)
        fast = schema.fast[("a1", "k")]
        assert fast is not None
        classes = writer._versions[(model_id, "1")][1]
        assert classes == ["a", "b", "c"]
        taken = declined = 0
        for round_no in range(400):
            odd = round_no % 2 == 1
            batch = []
            for i in range(rng.randint(1, 6)):
                probas = plain_probas + (odd_probas if odd and rng.random() < 0.3 else [])
                segments = plain_segments + (odd_segments if odd and rng.random() < 0.3 else [])
                batch.append(
                    (
                        f"r{round_no}-{i}",
                        rng.choice(
                            [
                                ns + rng.randint(0, 10**9),
                                datetime.fromtimestamp(rng.randint(0, 2**31), UTC),
                            ]
                            + ([datetime(2026, 1, 2, 3)] if odd else [])  # naive: general path
                        ),
                        {"a1": rng.uniform(-5, 5), "k": rng.choice(["x", "y", "z"])},
                        rng.choice([0, 1, 0.5, -2.25] + ([True] if odd else [])),
                        rng.choice(probas),
                        rng.choice([None, 1.5, 20.0]),
                        rng.choice(segments),
                    )
                )
            result = WriteResult()
            try:
                by_record: list[bytes] | None = [
                    writer._prediction_row(model_id, "1", fixed, schema, r, result) for r in batch
                ]
            except Exception:  # the general path refuses it (a dead letter): C must decline
                by_record = None
            in_c = encode_uniform_batch(
                batch, fast, *fixed, writer._texts, classes=classes, segments=SegmentCache()
            )
            if in_c is None:
                declined += 1
            else:
                assert by_record is not None, batch
                taken += 1
                assert in_c == by_record, batch
        assert taken > 150 and declined > 50, (taken, declined)
