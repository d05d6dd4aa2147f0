"""Shared helpers of the read side: model lookup, time ranges, JSON-safe values."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError

RANGES: dict[str, timedelta] = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "14d": timedelta(days=14),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
DEFAULT_RANGE = "14d"
MAX_POINTS = 400
"""Above this many windows a time series is bucketed (date_bin) so charts stay light."""


@dataclass(frozen=True)
class ModelRef:
    id: int
    name: str
    task: str | None
    description: str | None
    window_seconds: int
    positive_class: str | None
    state: tuple[int | None, datetime | None] | None = None
    """(results version, end of the newest drift window) read with the model by
    :func:`get_model` in the same statement; None when not read."""


@dataclass(frozen=True)
class TimeRange:
    """A half-open [start, end) range of window starts, and the bucket that keeps it light."""

    start: datetime
    end: datetime
    label: str
    bucket_seconds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "range": self.label,
            "bucket_seconds": self.bucket_seconds,
        }


MODEL_COLUMNS = """
    m.id, m.name, m.task, m.description, m.window_seconds, m.positive_class, rv.version,
    (SELECT r.window_end FROM results r WHERE r.model_id = m.id AND r.family = 'drift'
     ORDER BY r.window_start DESC LIMIT 1)
"""
"""A model row for :func:`model_ref` (from ``models m LEFT JOIN results_versions rv``)."""

MODEL_SELECT = (
    f"SELECT {MODEL_COLUMNS} FROM models m LEFT JOIN results_versions rv ON rv.model_id = m.id "
)
"""Models as :func:`model_ref` rows; the caller adds its WHERE / ORDER BY."""

_MODEL = sa.text(MODEL_SELECT + "WHERE m.name = :n")


def model_ref(row: Any) -> ModelRef:
    """A :data:`MODEL_COLUMNS` row as a ModelRef with its state."""
    mid, name, task, description, window_seconds, positive_class, version, newest = row
    return ModelRef(mid, name, task, description, window_seconds, positive_class, (version, newest))


def get_model(conn: sa.Connection, name: str) -> ModelRef:
    """The model, with its results version and newest window end (one round trip, one
    snapshot: the view cache's key and the range anchor every model route needs)."""
    row = conn.execute(_MODEL, {"n": name}).first()
    if row is None:
        raise NotFoundError(f"no model named {name!r}")
    return model_ref(row)


_MODEL_BY_ID = sa.text(MODEL_SELECT + "WHERE m.id = :i")


def reread_model(conn: sa.Connection, model: ModelRef) -> ModelRef:
    """``model`` read again on ``conn`` (by id), with its current results version and newest
    window: what a background refresh of a cached view reads first (monitor.web.cache)."""
    row = conn.execute(_MODEL_BY_ID, {"i": model.id}).first()
    if row is None:
        raise NotFoundError(f"model {model.name!r} no longer exists")
    return model_ref(row)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_ts(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 / RFC 3339 timestamp (UTC when it has no offset), clamped to 1970-9000.

    Clamping rather than refusing: no data lies outside those years, so "since year 1" asks
    the same as "since 1970", and range arithmetic never overflows ``datetime``.
    """
    if value is None or value == "":
        return None
    try:
        # a '+' of an offset arrives as a space when a query string was not encoded
        text = value.strip().upper()  # RFC 3339 allows 't' and 'z'
        if len(text) > 19 and text[19:20] == " ":
            text = text[:19] + "+" + text[20:]
        ts = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{what} must be an ISO 8601 timestamp, got {value!r}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted across the calendar's edge by its offset
        return EARLIEST if ts.year < 1970 else LATEST
    return min(max(ts, EARLIEST), LATEST)


def latest_window_end(conn: sa.Connection, model: ModelRef) -> datetime | None:
    """End of the newest window with results (the anchor of relative ranges)."""
    if model.state is not None:
        return model.state[1]
    return conn.execute(
        sa.text(
            "SELECT window_end FROM results WHERE model_id = :m AND family = 'drift' "
            "ORDER BY window_start DESC LIMIT 1"
        ),
        {"m": model.id},
    ).scalar()


def time_range(
    conn: sa.Connection,
    model: ModelRef,
    range_: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> TimeRange:
    """The range a page shows: explicit start/end, else a preset ending at the newest window."""
    label = range_ or DEFAULT_RANGE
    if label not in RANGES and label != "custom":
        raise InputError(f"range must be one of {', '.join(RANGES)}; got {label!r}")
    s, e = parse_ts(start, "start"), parse_ts(end, "end")
    if e is None:
        e = latest_window_end(conn, model) or datetime.now(UTC)
    if s is None:
        s = e - RANGES.get(label, RANGES[DEFAULT_RANGE])
    else:
        label = "custom" if start else label
    if s >= e:
        raise InputError("start must be before end")
    if e - s > timedelta(days=3660):
        raise InputError("a range may span at most ten years")
    window = max(model.window_seconds, 1)
    n = (e - s).total_seconds() / window
    bucket = window if n <= MAX_POINTS else math.ceil(n / MAX_POINTS) * window
    return TimeRange(s, e, label, bucket)


def finite(value: Any) -> Any:
    """JSON-safe number: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@lru_cache(maxsize=65536)
def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (whatever the connection's time zone); memoised, series repeat times."""
    return _iso(value) if value is not None else None
