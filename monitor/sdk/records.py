"""Plain records that travel from ``log()`` to an exporter, and their cleaning rules.

``log()`` only builds one of these and appends it to a queue: no validation, no serialisation
on the caller's thread. Cleaning (non-finite numbers to null, unknown types to strings) happens
in the worker or the collector, where it is counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class PredictionRecord:
    record_id: str
    event_ts: datetime
    features: Mapping[str, Any]
    prediction: Any = None
    proba: Mapping[Any, Any] | Sequence[Any] | float | None = None
    latency_ms: float | None = None
    segment: Mapping[str, Any] | None = None


@dataclass(slots=True)
class ActualRecord:
    record_id: str
    event_ts: datetime
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
    except (TypeError, ValueError):
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
        return value.replace("\x00", "")
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
    counts: CleanCounts = field(default_factory=CleanCounts)
