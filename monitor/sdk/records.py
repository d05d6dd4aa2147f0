"""Plain records that travel from ``log()`` to an exporter, and their cleaning rules.

``log()`` only builds one of these (a tuple: the cheapest object Python can make) and appends
it to a queue: no validation, no serialisation on the caller's thread. Cleaning (non-finite
numbers to null, unknown types to strings) happens in the worker or the collector, where it is
counted.

A record id is the caller's string or, when the caller gave none, a UUIDv7 kept as an ``int``
until the worker formats it; an event time is a ``datetime`` or, when the caller gave none,
``time.time_ns()`` captured on the caller's thread.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_RECORD_BYTES = 256 * 1024


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


@dataclass
class CleanCounts:
    """What cleaning changed, so that nothing is altered silently."""

    nonfinite: int = 0
    stringified: int = 0
    type_errors: int = 0

    def add(self, other: CleanCounts) -> None:
        self.nonfinite += other.nonfinite
        self.stringified += other.stringified
        self.type_errors += other.type_errors

    def as_dict(self) -> dict[str, int]:
        return {
            "nonfinite": self.nonfinite,
            "stringified": self.stringified,
            "type_errors": self.type_errors,
        }


def format_id(record_id: Any) -> str:
    """The text form of a record id; UUIDv7 ints become canonical UUID strings."""
    if isinstance(record_id, str):
        return record_id.replace("\x00", "")
    if isinstance(record_id, int) and not isinstance(record_id, bool) and record_id >= 0:
        h = f"{record_id:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    return str(record_id)


def as_datetime(value: Any) -> datetime:
    """Event time from ``time_ns()``, an aware datetime, a naive one (taken as UTC) or ISO text."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1e9, UTC)
    if isinstance(value, float) and math.isfinite(value):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise TypeError(f"not a timestamp: {type(value).__name__}")


def feature_kind(value: Any) -> str | None:
    """``numeric`` for numbers and booleans, ``categorical`` for anything else, None for null."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return "numeric"
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        return "numeric" if value.dtype.kind in "biuf" else "categorical"
    return "categorical"


def as_float(value: Any, counts: CleanCounts) -> float | None:
    """A finite float, or None (NaN and infinities are counted; JSON and stats reject them)."""
    if value is None:
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
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, float) and not math.isfinite(value):
        counts.nonfinite += 1
        return None
    if not isinstance(value, bool | int | float):
        counts.stringified += 1
    try:
        return str(value).replace("\x00", "")
    except Exception:
        counts.type_errors += 1
        return None


@dataclass(slots=True)
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    too_large: int = 0  # refused: over the record size cap
    counts: CleanCounts = field(default_factory=CleanCounts)

    def add(self, other: WriteResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters
        self.too_large += other.too_large
        self.counts.add(other.counts)


def record_to_wire(rec: Any) -> dict[str, Any]:
    """A record as the JSON object the collector accepts (for dead letters, spool and HTTP)."""
    if isinstance(rec, Mapping):
        return dict(rec)
    if len(rec) == 3:
        return {"id": format_id(rec[0]), "timestamp": _ts_text(rec[1]), "actual": rec[2]}
    return {
        "id": format_id(rec[0]),
        "timestamp": _ts_text(rec[1]),
        "features": dict(rec[2]) if isinstance(rec[2], Mapping) else rec[2],
        "prediction": rec[3],
        "proba": rec[4],
        "latency_ms": rec[5],
        "segment": rec[6],
    }


def _ts_text(value: Any) -> Any:
    try:
        return as_datetime(value).isoformat()
    except Exception:
        return value
