"""Read one window's rows once, fast, into numpy arrays per feature slot.

A window can hold millions of rows; building Python tuples costs microseconds a row, and text
formats cost the server as much again to print as the client to parse. So the window is read
with one ``COPY (SELECT ...) TO STDOUT (FORMAT BINARY)`` whose every field has a fixed width:
numbers as float8 (NULL sent as NaN), text as its 64-bit hash (``hashtextextended``, NULL as 0).
Every row then has the same byte layout and the stream decodes with one ``np.frombuffer`` per
chunk, no Python per row. Hashes are turned back into labels from a per-model cache seeded with
the baseline's categories; only labels never seen before (new categories, new segments) cost a
lookup query, which reads the window again filtered on those hashes. Rows holding values of the
wrong type (``extra``) carry their record id's hash, and one small query names the features.

A label whose 64-bit hash is exactly 0 would read as null (probability 2^-64).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from numpy.typing import NDArray

HASH = "hashtextextended({}, 0)"
CHUNK_ROWS = 65_536
_LABELS: dict[int, dict[int, str]] = {}
"""Per model: text hash -> label, for every label seen (bounded below)."""
MAX_CACHED_LABELS = 200_000


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


def _field(expr: str, kind: str) -> tuple[str, str]:
    if kind == "f8":
        return f"coalesce(({expr})::float8, 'NaN')", ">f8"
    if kind == "i4":
        return f"coalesce(({expr})::int4, 0)", ">i4"
    return f"coalesce({HASH.format(expr)}, 0)", ">i8"


def _copy_out(
    conn: psycopg.Connection[Any], sql: str, chunk_bytes: int = 8 << 20
) -> Iterator[bytes]:
    """Stream ``COPY ... TO STDOUT`` in large chunks, straight from libpq.

    Postgres sends one message per row; psycopg's COPY iterator costs several microseconds per
    message in Python, more than decoding the whole row. Reading libpq's messages in a tight
    loop and handing numpy chunks of megabytes keeps the per-row cost at a fraction of that.
    """
    from psycopg import pq

    pg = conn.pgconn
    pg.send_query(sql.encode())
    result = pg.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        message = pg.error_message.decode(errors="replace").strip()
        while pg.get_result() is not None:
            pass
        raise psycopg.DatabaseError(message or "COPY did not start")
    buffer = bytearray()
    while True:
        nbytes, data = pg.get_copy_data(0)
        if nbytes == -1:
            break
        if nbytes == -2:
            raise psycopg.DatabaseError(pg.error_message.decode(errors="replace").strip())
        buffer += data
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    failed = None
    while (result := pg.get_result()) is not None:
        if result.status != pq.ExecStatus.COMMAND_OK:
            failed = result.error_message.decode(errors="replace").strip()
    if failed:
        raise psycopg.DatabaseError(failed)
    if buffer:
        yield bytes(buffer)


def _decode(chunks: Iterable[bytes], dtype: np.dtype[Any]) -> dict[str, NDArray[Any]]:
    """Fields of a fixed-width binary COPY stream as native arrays, decoded chunk by chunk."""
    width = dtype.itemsize
    names = [n for n in dtype.names or () if n != "count" and not n.startswith("len_")]
    parts: dict[str, list[NDArray[Any]]] = {n: [] for n in names}
    pending = b""
    header: int | None = None

    def take(buffer: bytes) -> bytes:
        usable = len(buffer) // width * width
        if usable:
            rows = np.frombuffer(buffer, dtype=dtype, count=usable // width)
            for n in names:
                parts[n].append(rows[n].astype(rows[n].dtype.newbyteorder("=")))
        return buffer[usable:]

    for block in chunks:
        buffer = pending + block if pending else block
        if header is None:
            if len(buffer) < 19:
                pending = buffer
                continue
            header = 19 + int.from_bytes(buffer[15:19], "big")
            buffer = buffer[header:]
        pending = take(buffer)
    if header is None:
        raise ValueError("not a binary COPY stream")
    if len(pending) != 2:  # what is left is the trailer, int16 -1
        raise ValueError(f"binary COPY stream ended with {len(pending)} stray bytes")
    return {
        n: np.concatenate(p) if p else np.empty(0, dtype=dtype[n].newbyteorder("="))
        for n, p in parts.items()
    }


def _labels(
    conn: psycopg.Connection[Any],
    model_id: int,
    hashes: dict[str, NDArray[np.int64]],
    exprs: dict[str, str],
    where: str,
    known: Callable[[], Iterable[str]],
) -> dict[int, str]:
    """hash -> label for every hash in ``hashes``, from the cache or one lookup query."""
    cache = _LABELS.setdefault(model_id, {})
    if len(cache) > MAX_CACHED_LABELS:
        cache.clear()
    new_known = [] if cache else [k for k in known() if k is not None]
    if new_known:
        cache.update(
            conn.execute(
                f"SELECT {HASH.format('x')}, x FROM unnest(%s::text[]) AS x", (new_known,)
            ).fetchall()
        )
    missing: dict[str, NDArray[np.int64]] = {}
    for name, values in hashes.items():
        unknown = np.array([h for h in values.tolist() if h and h not in cache], dtype=np.int64)
        if unknown.size:
            missing[name] = unknown
    if missing:
        cases = ", ".join(f"({exprs[name]})" for name in missing)
        wanted = sorted({int(h) for v in missing.values() for h in v.tolist()})
        cache.update(
            conn.execute(
                f"SELECT DISTINCT {HASH.format('v.label')}, v.label FROM predictions p"
                f" CROSS JOIN LATERAL (VALUES {cases}) AS v(label) WHERE {where}"
                f" AND {HASH.format('v.label')} = ANY(%s::int8[])",
                (wanted,),
            ).fetchall()
        )
    return cache


def _coded(hashes: NDArray[np.int64], labels: dict[int, str]) -> Coded:
    codes, uniques = pd.factorize(hashes, sort=False)
    names = [labels.get(int(h), "") for h in uniques.tolist()]
    null = [i for i, h in enumerate(uniques.tolist()) if h == 0]
    codes = codes.astype(np.int32)
    if null:
        codes[codes == null[0]] = -1
        codes[codes > null[0]] -= 1
        del names[null[0]]
    return Coded(codes=codes, labels=names)


def read_window(
    conn: psycopg.Connection[Any],
    model_id: int,
    start: datetime,
    end: datetime,
    slots: list[FeatureSlot] | None = None,
    known_labels: Callable[[], Iterable[str]] = tuple,
) -> WindowData:
    """Read the rows of ``[start, end)`` for a model: one fixed-width binary COPY."""
    slots = load_slots(conn, model_id) if slots is None else slots
    text_exprs: dict[str, str] = {}
    fields: list[tuple[str, str, str]] = []  # name, SQL, numpy type
    for i, slot in enumerate(slots):
        if slot.kind == "numeric":
            fields.append((f"n{i}", *_field(f"num[{slot.position + 1}]", "f8")))
        else:
            text_exprs[f"c{i}"] = f"p.cat[{slot.position + 1}]"
            fields.append((f"c{i}", *_field(f"cat[{slot.position + 1}]", "i8")))
    text_exprs["prediction_cat"] = "p.prediction_cat"
    text_exprs["segment"] = "p.segment::text"
    fields += [
        ("prediction_num", *_field("prediction_num", "f8")),
        ("prediction_cat", *_field("prediction_cat", "i8")),
        ("score", *_field(_score_expression(conn, model_id) or "NULL", "f8")),
        ("latency", *_field("latency_ms", "f8")),
        ("segment", *_field("segment::text", "i8")),
        ("version", *_field("version_id", "i4")),
        (
            "extra",
            f"CASE WHEN extra IS NULL THEN 0 ELSE coalesce({HASH.format('record_id')}, 1) END",
            ">i8",
        ),
    ]
    dtype = np.dtype(
        [("count", ">i2")]
        + [item for name, _, typ in fields for item in ((f"len_{name}", ">i4"), (name, typ))]
    )
    where = (
        f"p.model_id = {int(model_id)} AND p.event_ts >= '{start.isoformat()}'"
        f" AND p.event_ts < '{end.isoformat()}'"
    )
    select = ", ".join(sql for _, sql, _ in fields)
    rows = _decode(
        _copy_out(
            conn,
            f"COPY (SELECT {select} FROM predictions p WHERE {where}) TO STDOUT (FORMAT BINARY)",
        ),
        dtype,
    )
    n = len(rows["version"])
    data = WindowData(n=n)
    hashes = {name: pd.unique(rows[name]) for name in text_exprs}
    labels = _labels(conn, model_id, hashes, text_exprs, where, known_labels) if n else {}
    for i, slot in enumerate(slots):
        if slot.kind == "numeric":
            data.numeric[slot.name] = rows[f"n{i}"]
        else:
            data.categorical[slot.name] = _coded(rows[f"c{i}"], labels)
    if not n:
        return data
    data.prediction_num = rows["prediction_num"]
    data.prediction_cat = _coded(rows["prediction_cat"], labels)
    data.score = rows["score"]
    data.latency = rows["latency"]
    data.versions = rows["version"]
    data.segments = _segment_codes(_coded(rows["segment"], labels))
    extra = rows["extra"]
    if extra.any():
        data.type_errors = _type_errors(conn, where, extra)
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


def _type_errors(
    conn: psycopg.Connection[Any], where: str, extra: NDArray[np.int64]
) -> dict[str, NDArray[np.bool_]]:
    """Per feature, the rows whose value did not fit the feature's kind (kept in ``extra``)."""
    rows = conn.execute(
        f"SELECT {HASH.format('p.record_id')}, k FROM predictions p"
        f" CROSS JOIN LATERAL jsonb_object_keys(p.extra) AS k WHERE {where}"
        " AND p.extra IS NOT NULL AND jsonb_typeof(p.extra) = 'object'"
    ).fetchall()
    masks: dict[str, NDArray[np.bool_]] = {}
    for record_hash, key in rows:
        hit = extra == (record_hash or 1)
        masks[key] = masks[key] | hit if key in masks else hit
    return masks
