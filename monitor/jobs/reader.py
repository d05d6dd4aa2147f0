"""Read one window's rows once, fast, into numpy arrays per feature slot.

Why CSV through pyarrow rather than row tuples: a window can hold millions of rows, and building
Python tuples costs microseconds per row. Postgres streams ``COPY (SELECT num[1], ..., cat[1],
...) TO STDOUT (FORMAT CSV)``, one column per feature slot, and pyarrow's multithreaded C++ CSV
reader parses the stream in blocks straight into typed columns (float64 with NaN for nulls,
dictionary-encoded strings). The server does one index range scan of the window's partition;
nothing row-by-row happens in Python.

NULL and the empty string stay distinct: Postgres writes NULL unquoted-empty and ``''`` quoted.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from pyarrow import csv as pacsv


@dataclass(frozen=True)
class FeatureSlot:
    name: str
    kind: str  # numeric | categorical: where the SDK stored it
    position: int


@dataclass
class Coded:
    """A dictionary-encoded text column: ``codes`` index ``labels``; -1 is null."""

    codes: NDArray[np.int32]
    labels: list[str]

    def counts(self, mask: NDArray[np.bool_] | None = None) -> tuple[dict[str, int], int]:
        """Category counts and nulls, optionally for the rows in ``mask``."""
        codes = self.codes if mask is None else self.codes[mask]
        nulls = int((codes < 0).sum())
        bins = np.bincount(codes[codes >= 0], minlength=len(self.labels))
        return {self.labels[i]: int(c) for i, c in enumerate(bins.tolist()) if c}, nulls


@dataclass
class WindowData:
    """Everything the window job needs from the window's rows, read once."""

    n: int
    numeric: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    categorical: dict[str, Coded] = field(default_factory=dict)
    prediction_num: NDArray[np.float64] | None = None
    prediction_cat: Coded | None = None
    score: NDArray[np.float64] | None = None
    latency: NDArray[np.float64] | None = None
    segments: Coded | None = None  # labels are canonical segment keys
    versions: NDArray[np.int32] | None = None
    type_errors: dict[str, NDArray[np.bool_]] = field(default_factory=dict)

    def segment_masks(self, min_rows: int) -> Iterator[tuple[str, NDArray[np.bool_]]]:
        """(segment key, row mask) for each segment with at least ``min_rows`` rows."""
        if self.segments is None:
            return
        bins = np.bincount(
            self.segments.codes[self.segments.codes >= 0], minlength=len(self.segments.labels)
        )
        for i, count in enumerate(bins.tolist()):
            if count >= min_rows and self.segments.labels[i]:
                yield self.segments.labels[i], self.segments.codes == i


def load_slots(conn: psycopg.Connection[Any], model_id: int) -> list[FeatureSlot]:
    rows = conn.execute(
        "SELECT name, kind, position FROM features WHERE model_id = %s ORDER BY kind, position",
        (model_id,),
    ).fetchall()
    return [FeatureSlot(name, kind, pos) for name, kind, pos in rows]


def _score_expression(conn: psycopg.Connection[Any], model_id: int) -> str | None:
    """SQL for the positive class's probability, per version's class order (binary models)."""
    model = conn.execute("SELECT positive_class FROM models WHERE id = %s", (model_id,)).fetchone()
    positive = model[0] if model and model[0] is not None else "1"
    cases = []
    for version_id, classes in conn.execute(
        "SELECT id, classes FROM model_versions WHERE model_id = %s AND classes IS NOT NULL",
        (model_id,),
    ).fetchall():
        if positive in classes:
            cases.append(f"WHEN {int(version_id)} THEN proba[{classes.index(positive) + 1}]")
        elif len(classes) == 1:
            cases.append(f"WHEN {int(version_id)} THEN proba[1]")
    if not cases:
        return "CASE WHEN cardinality(proba) = 1 THEN proba[1] END"
    return f"CASE version_id {' '.join(cases)} END"


def _code(column: pa.ChunkedArray) -> Coded:
    encoded = pc.dictionary_encode(column.combine_chunks() if column.num_chunks else column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    indices = encoded.indices.fill_null(-1)
    return Coded(
        codes=indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False),
        labels=[str(v) for v in encoded.dictionary.to_pylist()],
    )


def _floats(column: pa.ChunkedArray) -> NDArray[np.float64]:
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


class _CopyStream(io.RawIOBase):
    """A file object over COPY TO STDOUT blocks, so pyarrow parses while Postgres streams."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = bytes(next(self._blocks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def read_window(
    conn: psycopg.Connection[Any],
    model_id: int,
    start: datetime,
    end: datetime,
    slots: list[FeatureSlot] | None = None,
) -> WindowData:
    """Read the rows of ``[start, end)`` for a model: one COPY, parsed column-wise."""
    slots = load_slots(conn, model_id) if slots is None else slots
    exprs: list[tuple[str, str, pa.DataType]] = []
    for i, slot in enumerate(slots):
        if slot.kind == "numeric":
            exprs.append((f"n{i}", f"num[{slot.position + 1}]", pa.float64()))
        else:
            exprs.append((f"c{i}", f"cat[{slot.position + 1}]", pa.string()))
    score = _score_expression(conn, model_id)
    exprs += [
        ("prediction_num", "prediction_num", pa.float64()),
        ("prediction_cat", "prediction_cat", pa.string()),
        ("score", score or "NULL::float8", pa.float64()),
        ("latency", "latency_ms", pa.float64()),
        ("segment", "segment::text", pa.string()),
        ("version", "version_id", pa.int32()),
        ("extra", "extra::text", pa.string()),
    ]
    select = ", ".join(expr for _, expr, _ in exprs)
    sql = (
        f"COPY (SELECT {select} FROM predictions WHERE model_id = {int(model_id)} "
        f"AND event_ts >= '{start.isoformat()}' AND event_ts < '{end.isoformat()}') "
        "TO STDOUT (FORMAT CSV)"
    )
    names = [name for name, _, _ in exprs]
    with conn.cursor() as cur, cur.copy(sql) as copy:
        reader = pacsv.open_csv(
            io.BufferedReader(_CopyStream(iter(copy)), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: typ for name, _, typ in exprs},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        table = reader.read_all()
    data = WindowData(n=table.num_rows)
    for i, slot in enumerate(slots):
        if slot.kind == "numeric":
            data.numeric[slot.name] = _floats(table.column(f"n{i}"))
        else:
            data.categorical[slot.name] = _code(table.column(f"c{i}"))
    if table.num_rows == 0:
        return data
    data.prediction_num = _floats(table.column("prediction_num"))
    data.prediction_cat = _code(table.column("prediction_cat"))
    data.score = _floats(table.column("score"))
    data.latency = _floats(table.column("latency"))
    data.versions = table.column("version").to_numpy().astype(np.int32, copy=False)
    data.segments = _segment_codes(_code(table.column("segment")))
    extra = table.column("extra")
    if extra.null_count < len(extra):
        data.type_errors = _type_errors(extra)
    return data


def _segment_codes(raw: Coded) -> Coded:
    """Re-code segment JSON texts by their canonical key (equal keys share one code)."""
    keys: dict[str, int] = {}
    remap = np.empty(len(raw.labels) + 1, dtype=np.int32)
    remap[-1] = -1
    for i, text in enumerate(raw.labels):
        remap[i] = keys.setdefault(_segment_key(text), len(keys))
    return Coded(codes=remap[raw.codes], labels=list(keys))


def _segment_key(text: str) -> str:
    from monitor.storage.vocabulary import segment_key

    try:
        value = json.loads(text)
    except ValueError:
        return ""
    return segment_key(value) if isinstance(value, dict) else ""


def _type_errors(extra: pa.ChunkedArray) -> dict[str, NDArray[np.bool_]]:
    """Per feature, the rows whose value did not fit the feature's kind (kept in ``extra``)."""
    values = extra.to_pylist()
    masks: dict[str, NDArray[np.bool_]] = {}
    for row, text in enumerate(values):
        if text is None:
            continue
        try:
            keys = json.loads(text)
        except ValueError:
            continue
        for key in keys if isinstance(keys, dict) else ():
            if key not in masks:
                masks[key] = np.zeros(len(values), dtype=bool)
            masks[key][row] = True
    return masks
