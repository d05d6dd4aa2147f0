"""Postgres binary COPY fields, written by hand for speed: the pieces both write paths use.

psycopg's per-value dumpers cost ~100 us per row for our two arrays; packing fields with
precompiled :mod:`struct` formats and cached encodings of repeated category strings and
segments costs a few microseconds. Format: https://www.postgresql.org/docs/current/sql-copy.html
(binary format) and the array/jsonb ``*_recv`` wire formats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from struct import Struct
from typing import Any

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
ARRAY_HEAD = _ARRAY_HEAD = Struct("!iiiii")
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
    and values without NUL, so that the careful path cleans and counts those. An empty
    segment is a null, as on the general path (:func:`monitor.sdk.postgres.careful.prediction_row`).
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
