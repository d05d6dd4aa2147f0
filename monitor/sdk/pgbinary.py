"""Postgres binary COPY encoding for ``predictions`` rows, written by hand for speed.

psycopg's per-value dumpers cost ~100 us per row for our two arrays; packing a whole row with
precompiled :mod:`struct` formats (one per array width) and cached encodings of repeated
category strings costs a few microseconds, which is what makes the SDK's ingest rate comparable
to a raw typed ``COPY``. Format: https://www.postgresql.org/docs/current/sql-copy.html (binary
format) and the array/jsonb ``*_recv`` wire formats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from operator import add, floordiv, itemgetter, sub
from struct import Struct
from typing import Any

from monitor.sdk.records import format_id

try:  # the uniform path in C (monitor/sdk/_speedups.c); optional, the same bytes either way
    from monitor.sdk import _speedups
except ImportError:  # built without a C compiler
    _speedups = None  # type: ignore[assignment]

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
FIELDS = b"\x00\x0c"  # 12 columns
FLOAT8_OID = 701
TEXT_OID = 25
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
PG_EPOCH_US = 946_684_800_000_000
ONE_US = timedelta(microseconds=1)
FLOAT4_MAX = 3.4028234663852886e38

I4 = _I4 = Struct("!i")
I8 = _I8 = Struct("!q")
F8 = Struct("!d")
F4 = _F4 = Struct("!f")
_ARRAY_HEAD = Struct("!iiiii")
# Null extra, prediction_num (float8) [, null prediction_cat, null proba, latency_ms (float4),
# null segment]: the tail of a row of the usual kind, one pack per row.
_PREDICTION = Struct("!iid")
_PREDICTION_LATENCY = Struct("!iidiiifi")
_CAT_HEAD = Struct("!i20s")  # an array field's length, then its 20-byte header
LEN4 = b"\x00\x00\x00\x04"
LEN8 = b"\x00\x00\x00\x08"


def int4(value: int) -> bytes:
    return LEN4 + _I4.pack(value)


def float8(value: float | None) -> bytes:
    return NULL if value is None else LEN8 + F8.pack(value)


def float4(value: float | None) -> bytes:
    return NULL if value is None else LEN4 + _F4.pack(value)


def text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    return _I4.pack(len(data)) + data


def timestamptz(value: Any) -> bytes:
    """``time.time_ns()`` ints or aware datetimes as microseconds since 2000-01-01 UTC."""
    if type(value) is int:
        return LEN8 + _I8.pack(value // 1000 - PG_EPOCH_US)
    return LEN8 + _I8.pack((value - PG_EPOCH) // ONE_US)


def jsonb(value: Mapping[str, Any] | None) -> bytes:
    if value is None:
        return NULL
    data = b"\x01" + json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    return _I4.pack(len(data)) + data


def float8_array(values: Sequence[float | None] | None) -> bytes:
    if values is None:
        return NULL
    parts = [_ARRAY_HEAD.pack(1, 0, FLOAT8_OID, len(values), 1)]
    for v in values:
        parts.append(NULL if v is None else LEN8 + F8.pack(v))
    body = b"".join(parts)
    return _I4.pack(len(body)) + body


def text_array(values: Sequence[str | None] | None) -> bytes:
    if values is None:
        return NULL
    parts = [_ARRAY_HEAD.pack(1, 0, TEXT_OID, len(values), 1)]
    parts.extend(text(v) for v in values)
    body = b"".join(parts)
    return _I4.pack(len(body)) + body


def encode_row(row: Sequence[Any]) -> bytes:
    """A row tuple in PREDICTION_COLUMNS order (values already cleaned) as a COPY tuple."""
    model_id, ts, record_id, version_id, num, cat, extra, pnum, pcat, proba, latency, seg = row
    return b"".join(
        (
            FIELDS,
            int4(model_id),
            timestamptz(ts),
            text(record_id),
            int4(version_id),
            float8_array(num),
            text_array(cat),
            jsonb(extra),
            float8(pnum),
            text(pcat),
            float8_array(proba),
            float4(latency),
            jsonb(seg),
        )
    )


class TextCache(dict[Any, bytes]):
    """Encoded array elements of category strings (they repeat a lot); None is a null element.

    A missing non-string key raises KeyError so that the caller takes the general path, where
    such values are stringified and counted.
    """

    LIMIT = 50_000

    def __init__(self) -> None:
        super().__init__()
        self[None] = NULL

    def __missing__(self, key: Any) -> bytes:
        if type(key) is not str or "\x00" in key:
            raise KeyError(key)
        data = key.encode()
        encoded = _I4.pack(len(data)) + data
        if len(self) < self.LIMIT:
            self[key] = encoded
        return encoded


class FastPlan:
    """Encodes the features of records with one tuple of names, when their slots are dense.

    Dense: the record's numeric features hold positions 0..k-1 and its categorical ones
    0..m-1 (the usual case for a model with a stable schema), so both arrays are packed
    without gaps. ``encode`` raises (TypeError, KeyError, struct.error) for anything unusual
    (None, NaN, a string in a numeric slot...), and the caller falls back to the general path.
    """

    def __init__(self, numeric: list[str], categorical: list[str]) -> None:
        self.n = len(numeric)
        self.m = len(categorical)
        self.numeric = numeric
        self.numeric_names = tuple(numeric)
        self.categorical_names = tuple(categorical)
        self.num_get = _getter(numeric)
        self.cat_get = _getter(categorical)
        self.num_struct = Struct("!" + "id" * self.n)
        self.num_head = _I4.pack(20 + 12 * self.n) + _ARRAY_HEAD.pack(1, 0, FLOAT8_OID, self.n, 1)
        self.cat_head = _ARRAY_HEAD.pack(1, 0, TEXT_OID, self.m, 1)
        self.template: list[Any] = [8, 0.0] * self.n

    def encode(self, features: Mapping[str, Any], cache: TextCache) -> tuple[bytes, bytes]:
        if self.n:
            nums = self.num_get(features)
            total = sum(nums)
            if total - total != 0.0:  # NaN or infinity somewhere: the general path counts it
                raise ValueError("non-finite")
            args = self.template.copy()
            args[1::2] = nums
            num_field = self.num_head + self.num_struct.pack(*args)
        else:
            num_field = NULL
        if self.m:
            elems = b"".join(map(cache.__getitem__, self.cat_get(features)))
            cat_field = _I4.pack(20 + len(elems)) + self.cat_head + elems
        else:
            cat_field = NULL
        return num_field, cat_field


def _getter(names: list[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    if not names:
        return lambda _: ()
    if len(names) == 1:
        only = names[0]
        return lambda d: (d[only],)
    return itemgetter(*names)


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


def finite_float(value: Any) -> bool:
    return type(value) is float and math.isfinite(value)


def datetime_micros(value: Any) -> int:
    """Microseconds since 2000-01-01 UTC of an aware ``datetime`` (exactly that type), for the
    C encoder; raises for anything else (a naive datetime, a pandas Timestamp...), which the
    Python paths then take."""
    if type(value) is not datetime or value.tzinfo is None:
        raise TypeError("not an aware datetime")
    return int((value - PG_EPOCH) // ONE_US)


class SegmentCache(dict[tuple[tuple[str, str], ...], bytes]):
    """Encoded JSONB fields of segments (``{"region": "eu"}``: few distinct ones, repeated).

    Called by the C encoder for each record's segment; raises for anything but string keys
    and values without NUL, so that the general path cleans and counts those. An empty
    segment is a null, as on the general path (:func:`monitor.sdk.pgclean.prediction_row`).
    """

    LIMIT = 10_000

    def __call__(self, segment: Any) -> bytes:
        if type(segment) is not dict:
            raise TypeError("not a dict")
        key = tuple(segment.items())
        field = self.get(key)
        if field is None:
            for k, v in key:
                if type(k) is not str or type(v) is not str or "\x00" in k or "\x00" in v:
                    raise TypeError("not a plain segment")
            field = jsonb(segment) if segment else NULL
            if len(self) < self.LIMIT:
                self[key] = field
        return field


def encode_uniform_batch(
    records: Sequence[Sequence[Any]],
    fast: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
    classes: Sequence[str] | None = None,
    segments: SegmentCache | None = None,
    partial: bool = False,
) -> Sequence[bytes | None] | None:
    """Encode a whole batch of record tuples column by column (see :func:`encode_columns`),
    when every record has the fast plan's feature names. Records with a proba or a segment
    are for the C encoder only (``classes``: the version's class order for proba mappings;
    ``segments``: the writer's :class:`SegmentCache`). Returns None for any other batch; the
    caller then encodes record by record (cleaning and counting). With ``partial`` (and the C
    encoder), a record that is not the plain case is a None in the list instead.
    """
    n = len(records)
    try:
        feats = [r[2] for r in records]
        probas = [r[4] for r in records]
        segs = [r[6] for r in records]
        ids = [r[0] for r in records]
        times = [r[1] for r in records]
        preds = [r[3] for r in records]
        lats = [r[5] for r in records]
    except Exception:
        return None
    width = fast.n + fast.m
    extras = (probas, tuple(classes) if classes is not None else None, segs, segments)
    if partial and segments is not None and _speedups is not None:  # C checks each row's keys
        columns = (feats, ids, times, preds, lats)
        return _in_c(*columns, fast, model_field, version_field, texts, extras, True, width)
    # Same names as the plan: every dict has exactly the plan's number of keys, and the
    # itemgetters raise KeyError for a missing one (4x cheaper than comparing keys).
    if list(map(len, feats)).count(width) != n:
        return None
    if probas.count(None) == n and segs.count(None) == n:
        return encode_columns(
            feats, ids, times, preds, lats, fast, model_field, version_field, texts
        )
    if segments is None:
        return None
    return _in_c(feats, ids, times, preds, lats, fast, model_field, version_field, texts, extras)


def _in_c(
    feats: list[Any],
    ids: list[Any],
    times: list[Any],
    preds: list[Any],
    lats: list[Any],
    fast: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
    extras: tuple[Any, Any, Any, Any] = (None, None, None, None),
    partial: bool = False,
    n_keys: int = -1,
) -> Sequence[bytes | None] | None:
    """The C encoder's rows (None: not built, or it declined). ``extras``: probas, the
    version's class order, segments and the :class:`SegmentCache`, or four Nones. With
    ``partial``, rows it declines are Nones; ``n_keys``: each row's exact number of keys."""
    if _speedups is None:
        return None
    return _speedups.encode_columns(
        feats,
        ids,
        times,
        preds,
        lats,
        fast.numeric_names,
        fast.categorical_names,
        FIELDS + model_field + LEN8,
        version_field + (fast.num_head if fast.n else NULL),
        fast.cat_head,
        texts,
        format_id,
        *extras,
        datetime_micros,
        partial,
        n_keys,
    )


def encode_columns(
    feats: Sequence[Mapping[str, Any]],
    ids: Sequence[Any],
    times: Sequence[Any],
    preds: Sequence[Any],
    lats: Sequence[Any],
    fast: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
    partial: bool = False,
) -> Sequence[bytes | None] | None:
    """Encode rows given as columns with C-level ``map``/``zip`` (no Python bytecode per value)
    when they hold only the usual types: numbers in numeric slots, strings in categorical ones,
    a numeric prediction, time from ``time_ns()`` or aware datetimes, finite values. ``feats``
    may hold other keys too (the caller checked which); the plan's are looked up by name.
    Returns None for anything else (the caller then goes record by record).

    The C encoder (:mod:`monitor.sdk._speedups`) does the plain case, several times faster;
    it answers None for anything unusual, and this Python code, the reference, decides. With
    ``partial``, the C encoder answers None only for the rows it declines (the caller encodes
    those one by one), not for the whole batch.
    """
    if (
        _speedups is not None
        and type(feats) is list
        and type(ids) is list
        and type(times) is list
        and type(preds) is list
        and type(lats) is list
    ):
        columns = (feats, ids, times, preds, lats)
        rows = _in_c(*columns, fast, model_field, version_field, texts, partial=partial)
        if rows is not None:
            return rows
    return encode_columns_py(
        feats, ids, times, preds, lats, fast, model_field, version_field, texts
    )


def encode_columns_py(
    feats: Sequence[Mapping[str, Any]],
    ids: Sequence[Any],
    times: Sequence[Any],
    preds: Sequence[Any],
    lats: Sequence[Any],
    fast: FastPlan,
    model_field: bytes,
    version_field: bytes,
    texts: TextCache,
) -> list[bytes] | None:
    """:func:`encode_columns` in Python: the reference for the C encoder, and its fallback."""
    n = len(feats)
    try:
        # Adjacent constant fields are joined once per batch, not per row: each row is then
        # 9 parts: [fields, model, ts] [id length] [id] [version, numeric array header]
        # [numeric values] [categorical header] [categories] [extra, prediction (one pack;
        # with the latency column, also cat, proba, latency, segment)] [constant tail, or
        # empty]. Constants are parts of their own: no per-row concatenation copies them.
        if fast.n:  # pack(8, v0, 8, v1, ...) per row; values fetched once per column
            values = [list(map(itemgetter(name), feats)) for name in fast.numeric]
            total = sum(map(sum, values))
            if total - total != 0.0:  # NaN or infinity somewhere: the general path counts it
                return None
            args: list[Any] = []
            for column in values:
                args += (repeat(8), column)
            num_head: Any = repeat(version_field + fast.num_head)
            num_fields: Any = map(fast.num_struct.pack, *args)
        else:
            num_head, num_fields = repeat(version_field + NULL), repeat(b"")
        if fast.m:  # every row's m elements in one flat pass, then joined m at a time
            elems = map(texts.__getitem__, chain.from_iterable(map(fast.cat_get, feats)))
            cats = list(map(b"".join, zip(*[elems] * fast.m, strict=False)))
            cat_head: Any = map(
                _CAT_HEAD.pack, map(add, map(len, cats), repeat(20)), repeat(fast.cat_head)
            )
            cat_body: Any = cats
        else:
            cat_head, cat_body = repeat(NULL), repeat(b"")
        total = sum(preds)
        if total - total != 0.0 or bool in map(type, preds):
            return None
        nulls, eights = repeat(-1), repeat(8)
        if lats.count(None) == n:  # extra, prediction_num; then cat, proba, latency, segment
            pred_fields: Any = map(_PREDICTION.pack, nulls, eights, preds)
            tails: Any = repeat(NULL + NULL + NULL + NULL)
        else:
            total = sum(lats)
            if total - total != 0.0:
                return None
            pred_fields = map(
                _PREDICTION_LATENCY.pack, nulls, eights, preds, nulls, nulls, repeat(4), lats, nulls
            )
            tails = repeat(b"")
        if list(map(type, ids)).count(str) == n:
            rid_bytes = list(map(str.encode, ids))
        else:
            rid_bytes = [format_id(i).encode() for i in ids]
        if b"\x00" in b"".join(rid_bytes):
            return None
        head = FIELDS + model_field + LEN8
        first = times[0] if n else None
        if type(first) is int and times.count(first) == n:  # log_batch: one time per block
            ts_fields: Any = repeat(head + _I8.pack(first // 1000 - PG_EPOCH_US))
        else:
            if list(map(type, times)).count(int) == n:
                micros: Any = map(sub, map(floordiv, times, repeat(1000)), repeat(PG_EPOCH_US))
            else:
                micros = map(floordiv, map(sub, times, repeat(PG_EPOCH)), repeat(ONE_US))
            ts_fields = map(add, repeat(head), map(_I8.pack, micros))
        return list(
            map(
                b"".join,
                zip(
                    ts_fields,
                    map(_I4.pack, map(len, rid_bytes)),
                    rid_bytes,
                    num_head,
                    num_fields,
                    cat_head,
                    cat_body,
                    pred_fields,
                    tails,
                    strict=False,  # some are endless repeats of a constant
                ),
            )
        )
    except Exception:  # anything unusual: the per-record path handles (and counts) it
        return None


def encode_usual(
    rec: Sequence[Any],
    plans: Mapping[tuple[str, ...], FastPlan | None],
    texts: TextCache,
    model_field: bytes,
    version_field: bytes,
) -> bytes:
    """One record tuple of the usual kind as a COPY tuple: a known dense shape, finite numeric
    features and prediction, string categories, time from ``time_ns()``, no proba or segment.
    Raises (:class:`Unusual`, TypeError, KeyError...) for anything else: the caller then takes
    the general path, which cleans and counts.
    """
    features = rec[2]
    fast = plans.get(tuple(features))
    if fast is None or rec[4] is not None or rec[6] is not None:
        raise Unusual
    nums = fast.num_get(features)
    total = sum(nums)
    prediction = rec[3]
    if total - total != 0.0 or prediction - prediction != 0:
        raise Unusual  # non-finite (or a non-number: TypeError) somewhere
    if type(prediction) is not float and type(prediction) is not int:
        raise Unusual
    args = fast.template.copy()
    args[1::2] = nums
    cats = b"".join(map(texts.__getitem__, fast.cat_get(features)))
    latency = rec[5]
    if latency is None:
        latency_field = NULL
    elif type(latency) is float and -FLOAT4_MAX <= latency <= FLOAT4_MAX:
        latency_field = LEN4 + _F4.pack(latency)
    else:
        raise Unusual
    rid = rec[0]
    rid_bytes = rid.encode() if type(rid) is str else format_id(rid).encode()
    ts = rec[1]
    if type(ts) is not int or b"\x00" in rid_bytes:
        raise Unusual
    return b"".join(
        (
            FIELDS,
            model_field,
            LEN8,
            _I8.pack(ts // 1000 - PG_EPOCH_US),
            _I4.pack(len(rid_bytes)),
            rid_bytes,
            version_field,
            fast.num_head,
            fast.num_struct.pack(*args),
            _I4.pack(20 + len(cats)),
            fast.cat_head,
            cats,
            NULL,
            LEN8,
            F8.pack(prediction),
            NULL,
            NULL,
            latency_field,
            NULL,
        )
    )


class Unusual(Exception):
    """A record :func:`encode_usual` does not handle."""
