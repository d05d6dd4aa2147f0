"""The records that travel from ``log()`` to a sink, and the rules that clean or refuse them.

``log()`` builds a :class:`PredictionRecord` (``log_actual()`` an :class:`ActualRecord`): named
tuples, the cheapest named objects Python can make, appended to a queue with no validation and
no serialisation on the caller's thread. Cleaning happens in the worker or the collector, where
every change is counted (:class:`CleanCounts`) and every refusal becomes a dead letter.

A record id is the caller's string or, when the caller gave none, a UUIDv7 kept as an ``int``
until it is written (:func:`format_id`); a caller's non-string id is turned into a string on the
caller's thread (:func:`caller_id`), so an ``int`` id always means "generated here". An event
time is an aware ``datetime`` or an ``int`` of nanoseconds since the epoch: ``time.time_ns()``
captured on the caller's thread, or a caller's number converted by :func:`caller_time`.

The rules of this module are shared by the SDK and the HTTP collector, so that one input means
one thing on both paths.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RECORD_BYTES = 256 * 1024
# Unix seconds of a numeric timestamp must be below this (the year 5138): a larger number is
# almost always milliseconds, microseconds or nanoseconds given where seconds were meant.
MAX_UNIX_SECONDS = 1e11
RESERVED_PREFIX = "@"  # result columns such as @prediction and @score; never a feature name
# Features are keyed by name in a btree (at most 2,704 bytes a row): a longer name cannot be
# registered, and no real feature needs one.
MAX_FEATURE_NAME_CHARS = 500
_getrandbits = random.getrandbits  # random re-seeds itself in a forked child
_VERSION_BITS = 0x7 << 76
_VARIANT_BITS = 0b10 << 62
_RAND_A_MASK = ((1 << 12) - 1) << 64
_RAND_B_MASK = (1 << 62) - 1


class PredictionRecord(NamedTuple):
    record_id: str | int
    event_ts: datetime | int
    features: Mapping[str, Any]
    prediction: Any = None
    proba: Mapping[Any, Any] | Sequence[Any] | float | None = None
    latency_ms: float | None = None
    segment: Mapping[str, Any] | None = None


class ActualRecord(NamedTuple):
    record_id: str | int
    event_ts: datetime | int
    actual: Any


class RecordError(ValueError):
    """A record that cannot be stored as its sender meant: refused and dead-lettered."""


@dataclass
class CleanCounts:
    """What cleaning changed in stored records, so that nothing is altered silently."""

    nonfinite: int = 0  # NaN or infinity stored as null
    stringified: int = 0  # a value of an unsupported type stored as its text
    type_errors: int = 0  # a value of the wrong kind for its feature, kept in ``extra``
    nul_removed: int = 0  # NUL characters removed from a text value (Postgres refuses them)
    keys_stringified: int = 0  # a non-string feature name stored as its text
    proba_mismatch: int = 0  # a proba whose classes are not the version's, stored as null
    features_over_cap: int = 0  # values of features beyond the model's feature cap, not stored

    def add(self, other: CleanCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def total(self) -> int:
        return sum(self.as_dict().values())


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    too_large: int = 0  # refused: over the record size cap
    rejected: int = 0  # refused by a collector (HTTP 4xx), counted by the SDK
    counts: CleanCounts = field(default_factory=CleanCounts)

    def add(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.too_large += other.too_large
        self.rejected += other.rejected
        self.counts.add(other.counts)


# --- ids and times -----------------------------------------------------------------------------


def uuid7_int(ns: int) -> int:
    """A UUIDv7 (RFC 9562) as an int: 48-bit Unix ms, version, 74 random bits, variant."""
    rand = _getrandbits(74)
    return (
        ((ns // 1_000_000) << 80)
        | _VERSION_BITS
        | ((rand << 52) & _RAND_A_MASK)
        | _VARIANT_BITS
        | (rand & _RAND_B_MASK)
    )


def format_id(record_id: Any) -> str:
    """The stored form of a record id: strings as they are, generated UUIDv7 ints as canonical
    UUID strings. Raises :class:`RecordError` for an id that cannot be stored as given."""
    if type(record_id) is str:
        if not record_id or "\x00" in record_id:
            raise RecordError("id must be a non-empty string without NUL characters")
        return record_id
    if type(record_id) is int and 0 <= record_id < 1 << 128:
        h = f"{record_id:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    raise RecordError(f"id must be a string, got {type(record_id).__name__}")


def caller_id(value: Any) -> str:
    """A caller's id that is not a ``str``, as the string the caller meant: an integer as its
    digits, a UUID in its canonical form. Anything else (None, a float, a bool, NaN...) is
    refused: a prediction needs a stable id to be joined with its label later."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():  # integer ids that pandas made floats
        return str(int(value))
    if isinstance(value, UUID):
        return str(value)
    item = getattr(value, "item", None)  # numpy integers and floats
    if callable(item) and type(value).__module__ == "numpy":
        inner = item()
        if isinstance(inner, int | float) and not isinstance(inner, bool):
            return caller_id(inner)
    raise TypeError(f"id must be a string or an integer, got {type(value).__name__} {value!r:.40}")


def timestamp_from_number(value: float) -> datetime:
    """The one rule for numeric timestamps (SDK and collector): Unix seconds, UTC.

    A number of 1e11 or more is refused (the year 5138: it is milliseconds, microseconds or
    nanoseconds given where seconds were meant), as are negative and non-finite numbers.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError("timestamp must be a finite number of Unix seconds")
    if value < 0:
        raise RecordError(f"timestamp {value!r} is before 1970: give Unix seconds")
    if value >= MAX_UNIX_SECONDS:
        unit = _unit_hint(value)
        shown = f"{value:.6g}" if value < 1e300 else f"of {len(str(int(value)))} digits"
        raise RecordError(
            f"timestamp {shown} is too large for Unix seconds (it looks like {unit}): "
            "give seconds, or an ISO 8601 string"
        )
    return EPOCH + timedelta(seconds=value)


def _unit_hint(value: float) -> str:
    if value < 1e14:
        return "milliseconds"
    if value < 1e17:
        return "microseconds"
    if value < 1e20:
        return "nanoseconds"
    return "no time unit at all"


def caller_time(value: Any) -> datetime:
    """A caller's ``timestamp`` as an event time: aware datetimes as they are, naive ones as
    UTC, pandas Timestamps as datetimes, numbers as Unix seconds (:func:`timestamp_from_number`),
    strings as ISO 8601. Raises for anything else."""
    if type(value) is datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    convert = getattr(value, "to_pydatetime", None)  # pandas Timestamp (a datetime subclass)
    if callable(convert):
        if value != value:  # NaT
            raise RecordError("timestamp is NaT")
        return caller_time(convert())
    if isinstance(value, datetime):
        return caller_time(datetime.fromisoformat(value.isoformat()))
    if isinstance(value, str):
        return parse_iso(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timestamp_from_number(value)
    item = getattr(value, "item", None)  # numpy numbers
    if callable(item) and type(value).__module__ == "numpy":
        return caller_time(item())
    raise TypeError(f"timestamp must be a datetime, got {type(value).__name__}")


def parse_iso(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RecordError(f"timestamp {text[:40]!r} is not ISO 8601") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def as_datetime(value: Any) -> datetime:
    """An event time as an aware datetime: ``int`` nanoseconds (internal), or what
    :func:`caller_time` accepts."""
    if type(value) is int:
        return EPOCH + timedelta(microseconds=value // 1000)
    return caller_time(value)


# --- values ------------------------------------------------------------------------------------


def is_missing(value: Any) -> bool:
    """None, and pandas' missing markers (``pd.NA``, ``pd.NaT``), without importing pandas."""
    if value is None:
        return True
    kind = type(value)
    return kind.__name__ in ("NAType", "NaTType") and kind.__module__.startswith("pandas")


def feature_kind(value: Any) -> str | None:
    """``numeric`` for numbers, booleans and Decimals, ``categorical`` for anything else, None
    for a missing value."""
    if is_missing(value):
        return None
    if isinstance(value, bool | int | float | Decimal):
        return "numeric"
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        return "numeric" if value.dtype.kind in "biuf" else "categorical"
    return "categorical"


def as_float(value: Any, counts: CleanCounts) -> float | None:
    """A finite float, or None (NaN and infinities are counted; JSON and stats reject them)."""
    if is_missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        counts.type_errors += 1
        return None
    if not math.isfinite(number):
        counts.nonfinite += 1
        return None
    return number


def as_text(value: Any, counts: CleanCounts) -> str | None:
    """A text value; NUL characters (which Postgres refuses) are removed and counted, values of
    other types are stringified and counted."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        if "\x00" in value:
            counts.nul_removed += 1
            return value.replace("\x00", "")
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        counts.nonfinite += 1
        return None
    if not isinstance(value, bool | int | float):
        counts.stringified += 1
    try:
        text = str(value)
    except Exception:
        counts.type_errors += 1
        return None
    if "\x00" in text:
        counts.nul_removed += 1
        text = text.replace("\x00", "")
    return text


def feature_name(name: Any, counts: CleanCounts) -> str:
    """A feature name as stored: strings as they are, other keys as their text (counted).
    Raises :class:`RecordError` for names no feature may have (empty, with NUL characters, or
    starting with ``@``, which marks result columns such as ``@prediction``)."""
    if type(name) is not str:
        if isinstance(name, bool) or not isinstance(name, str | int | float):
            raise RecordError(f"feature names must be strings, got {type(name).__name__}")
        counts.keys_stringified += 1
        name = str(name)
    if not name or "\x00" in name or name.startswith(RESERVED_PREFIX):
        raise RecordError(
            f"invalid feature name {name[:60]!r}: must be non-empty, without NUL characters, "
            f"and not start with {RESERVED_PREFIX!r}"
        )
    if len(name) > MAX_FEATURE_NAME_CHARS:
        raise RecordError(
            f"feature name {name[:40]!r}... is longer than {MAX_FEATURE_NAME_CHARS} characters"
        )
    return name


def record_to_wire(rec: Any) -> dict[str, Any]:
    """A record as the JSON object the collector accepts (for dead letters, spool and HTTP)."""
    if isinstance(rec, Mapping):
        return dict(rec)
    if type(rec) is ActualRecord:
        return {"id": _id_text(rec[0]), "timestamp": _ts_text(rec[1]), "actual": rec[2]}
    return {
        "id": _id_text(rec[0]),
        "timestamp": _ts_text(rec[1]),
        "features": dict(rec[2]) if isinstance(rec[2], Mapping) else rec[2],
        "prediction": rec[3],
        "proba": rec[4],
        "latency_ms": rec[5],
        "segment": rec[6],
    }


def _id_text(value: Any) -> Any:
    try:
        return format_id(value)
    except RecordError:
        return value if isinstance(value, str) else repr(value)


def _ts_text(value: Any) -> Any:
    try:
        return as_datetime(value).isoformat()
    except Exception:
        return value if isinstance(value, str | int | float) else repr(value)
