"""The fast write path's encoder: records of the plain kind, column-wise, into COPY tuples.

Plain: a features dict with exactly the names of a :class:`FastPlan` (a dense shape of the
model's schema) holding finite numbers in numeric slots and strings (or None) in categorical
ones, a numeric prediction, a finite latency or none, a proba over the version's classes (or a
list of numbers) or none, a segment of strings or none, an event time from ``time_ns()`` or an
aware datetime, and a non-empty id. Every other record is a ``None`` in the answer, and the
careful path (:mod:`monitor.sdk.postgres.careful`) cleans, counts or refuses it.

Two implementations write the same bytes for the same records, row by row, and decline the
same rows: :func:`encode_rows_py` (the reference, here) and the C twin
(``monitor/sdk/postgres/_speedups.c``), built by ``pip install`` where a C compiler exists.
The C one is several times faster, and the worker shares the GIL with the serving code (see
``benchmarks/worker_encoding.py``); tests check that both agree on random batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from monitor.sdk.postgres.encode import (
    ARRAY_HEAD,
    F4,
    F8,
    FIELDS,
    FLOAT4_MAX,
    FLOAT8_OID,
    I4,
    I8,
    LEN8,
    NULL,
    PG_EPOCH_US,
    TEXT_OID,
    SegmentCache,
    TextCache,
    datetime_micros,
)
from monitor.sdk.records import format_id

try:  # the C twin; optional, the same bytes either way
    from monitor.sdk.postgres import _speedups
except ImportError:  # built without a C compiler
    _speedups = None  # type: ignore[assignment]

MAX_CLASSES = 64  # a longer proba takes the careful path
INT4_HALF = (1 << 31) // 2  # ids and category arrays longer than this take the careful path
I8_MIN, I8_MAX = -(1 << 63), (1 << 63) - 1


class FastPlan:
    """The numeric and categorical feature names of a dense record shape, in slot order.

    Dense: the shape's numeric features hold positions 0..k-1 of ``num`` and its categorical
    ones 0..m-1 of ``cat`` (the usual case for a model with a stable schema), so both arrays
    are written without gaps.
    """

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str]) -> None:
        self.numeric = tuple(numeric)
        self.categorical = tuple(categorical)
        self.n = len(self.numeric)
        self.m = len(self.categorical)
        self.num_head = I4.pack(20 + 12 * self.n) + ARRAY_HEAD.pack(1, 0, FLOAT8_OID, self.n, 1)
        self.cat_head = ARRAY_HEAD.pack(1, 0, TEXT_OID, self.m, 1)


def fast_plan(plan: Sequence[tuple[str | None, int]], names: Sequence[str]) -> FastPlan | None:
    """A :class:`FastPlan` for a record shape, or None when its slots are not dense."""
    numeric: dict[int, str] = {}
    categorical: dict[int, str] = {}
    for name, (kind, pos) in zip(names, plan, strict=True):
        if kind == "numeric":
            numeric[pos] = name
        elif kind == "categorical":
            categorical[pos] = name
        else:
            return None
    if sorted(numeric) != list(range(len(numeric))):
        return None
    if sorted(categorical) != list(range(len(categorical))):
        return None
    return FastPlan(
        [numeric[i] for i in range(len(numeric))], [categorical[i] for i in range(len(categorical))]
    )


class Columns:
    """A batch as columns (lists): what both encoders read."""

    __slots__ = ("feats", "ids", "lats", "preds", "probas", "segments", "times")

    def __init__(
        self,
        feats: list[Any],
        ids: list[Any],
        times: list[Any],
        preds: list[Any],
        lats: list[Any],
        probas: list[Any] | None = None,
        segments: list[Any] | None = None,
    ) -> None:
        self.feats, self.ids, self.times, self.preds, self.lats = feats, ids, times, preds, lats
        self.probas, self.segments = probas, segments

    @classmethod
    def of(cls, records: Sequence[Sequence[Any]]) -> Columns:
        """Columns of prediction records ``(id, event_ts, features, prediction, proba,
        latency_ms, segment)``."""
        return cls(
            [r[2] for r in records],
            [r[0] for r in records],
            [r[1] for r in records],
            [r[3] for r in records],
            [r[5] for r in records],
            [r[4] for r in records],
            [r[6] for r in records],
        )


def encode_rows(
    columns: Columns,
    plan: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
    classes: Sequence[str] | None,
    segments: SegmentCache,
    n_keys: int | None = None,
) -> list[bytes | None]:
    """The COPY tuple of each plain record, None for the others (see the module docstring).

    ``n_keys``: each features dict has exactly this many keys (the plan's, by default); -1:
    do not count (the caller checked, e.g. a RowBlock whose dicts hold other columns too).
    """
    keys = plan.n + plan.m if n_keys is None else n_keys
    order = tuple(classes) if classes is not None else None
    if _speedups is not None:
        return _speedups.encode_rows(
            columns.feats,
            columns.ids,
            columns.times,
            columns.preds,
            columns.lats,
            columns.probas,
            columns.segments,
            plan.numeric,
            plan.categorical,
            FIELDS + model_field + LEN8,
            version_field + (plan.num_head if plan.n else NULL),
            plan.cat_head,
            texts,
            format_id,
            order,
            segments,
            datetime_micros,
            keys,
        )
    return encode_rows_py(
        columns, plan, model_field, version_field, texts, order, segments, keys
    )


def encode_rows_py(
    columns: Columns,
    plan: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
    order: tuple[str, ...] | None,
    segments: SegmentCache,
    n_keys: int,
) -> list[bytes | None]:
    """:func:`encode_rows` in Python: the reference for the C twin, and its fallback."""
    head = FIELDS + model_field + LEN8
    version_num_head = version_field + (plan.num_head if plan.n else NULL)
    n = len(columns.feats)
    probas = columns.probas or [None] * n
    segs = columns.segments or [None] * n
    out: list[bytes | None] = []
    for i in range(n):
        try:
            row = _row(
                columns.feats[i],
                columns.ids[i],
                columns.times[i],
                columns.preds[i],
                columns.lats[i],
                probas[i],
                segs[i],
                plan,
                head,
                version_num_head,
                texts,
                order,
                segments,
                n_keys,
            )
        except Exception:  # anything unusual is the careful path's
            row = None
        out.append(row)
    return out


def _plain(value: Any) -> float | None:
    """A finite float from a float (or subclass) or an exact int, else None."""
    if isinstance(value, float):
        number = float.__float__(value)  # the C double, as C reads it (also of subclasses)
    elif type(value) is int:
        number = float(value)  # OverflowError for a huge int: not plain
    else:
        return None
    return number if math.isfinite(number) else None


def _row(
    feat: Any,
    rid: Any,
    ts: Any,
    pred: Any,
    lat: Any,
    proba: Any,
    segment: Any,
    plan: FastPlan,
    head: bytes,
    version_num_head: bytes,
    texts: TextCache,
    order: tuple[str, ...] | None,
    segments: SegmentCache,
    n_keys: int,
) -> bytes | None:
    if type(feat) is not dict or (n_keys >= 0 and len(feat) != n_keys):
        return None
    nums = []
    for name in plan.numeric:
        value = _plain(feat[name])
        if value is None:
            return None
        nums.append(value)
    if not math.isfinite(sum(nums)):  # a row whose sum overflows (C's rule too)
        return None
    elements = []
    for name in plan.categorical:
        element = texts[feat[name]]
        if type(element) is not bytes:
            return None
        elements.append(element)
    prediction = _plain(pred)
    if prediction is None:
        return None
    latency: float | None = None
    if lat is not None:
        latency = _plain(lat)
        if latency is None or abs(latency) > FLOAT4_MAX:
            return None
    proba_values = _proba(proba, order)
    if type(ts) is int:
        if not I8_MIN <= ts <= I8_MAX:
            return None
        micros = ts // 1000 - PG_EPOCH_US
    else:
        micros = datetime_micros(ts)
    segment_field = NULL
    if segment is not None:
        segment_field = segments(segment)
        if type(segment_field) is not bytes:
            return None
    text = rid if type(rid) is str else format_id(rid)
    if type(text) is not str:
        return None
    rid_bytes = text.encode()  # UnicodeEncodeError for a lone surrogate: not plain
    cats = b"".join(elements)
    if not rid_bytes or b"\x00" in rid_bytes or len(rid_bytes) > INT4_HALF or len(cats) > INT4_HALF:
        return None
    parts = [head, I8.pack(micros), I4.pack(len(rid_bytes)), rid_bytes, version_num_head]
    for value in nums:
        parts.append(LEN8)
        parts.append(F8.pack(value))
    if plan.m:
        parts += [I4.pack(20 + len(cats)), plan.cat_head, cats]
    else:
        parts.append(NULL)
    parts += [NULL, LEN8, F8.pack(prediction), NULL]
    if proba_values is None:
        parts.append(NULL)
    else:
        k = len(proba_values)
        parts.append(I4.pack(20 + 12 * k) + ARRAY_HEAD.pack(1, 0, FLOAT8_OID, k, 1))
        for value in proba_values:
            parts.append(LEN8)
            parts.append(F8.pack(value))
    parts.append(NULL if latency is None else b"\x00\x00\x00\x04" + F4.pack(latency))
    parts.append(segment_field)
    return b"".join(parts)


def _proba(proba: Any, order: tuple[str, ...] | None) -> list[float] | None:
    """The proba's values (None: a null proba); raises ValueError when it is not plain."""
    if proba is None:
        return None
    if type(proba) is dict:
        if not order or len(order) > MAX_CLASSES or len(proba) != len(order):
            raise ValueError("not the version's classes")
        items = [proba[name] for name in order]  # KeyError: another class
    elif type(proba) is list or type(proba) is tuple:
        if not 0 < len(proba) <= MAX_CLASSES:
            raise ValueError("empty or too long")
        items = list(proba)
    else:
        raise ValueError("not a dict, list or tuple")
    values = [_plain(item) for item in items]
    if None in values:
        raise ValueError("not plain numbers")
    return values  # type: ignore[return-value]


__all__ = ["Columns", "FastPlan", "encode_rows", "encode_rows_py", "fast_plan"]
