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
    c_rows = _speedups.encode_columns(*args, TextCache(), format_id)
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
    c_rows, py_rows = both(*batch)
    if c_rows is not None:
        assert c_rows == py_rows


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
    assert both([plain], ["r"], [datetime.now(UTC)], [0.5], [None])[0] is None
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
    assert by_python is not None  # C declines datetimes; the Python encoder takes them
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
        client.log({"a": 1.5, "b": 2, "x": "k9"}, 1, id="single")
        assert client.flush(10)
        client.shutdown()
    query = (
        "SELECT p.record_id, p.num, p.cat, p.prediction_num FROM predictions p"
        " JOIN models m ON m.id = p.model_id WHERE m.name = %s ORDER BY 1"
    )
    with_c = pg.execute(query, ("with-c",)).fetchall()
    assert len(with_c) == len(rows) + 1
    assert with_c == pg.execute(query, ("without-c",)).fetchall()
