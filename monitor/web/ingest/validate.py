"""Per-record validation of the collector: a parsed JSON record becomes the writer's record type,
or an :class:`InvalidRecord` whose message is the reason given back for its index.

Strings here are already free of lone surrogates (:mod:`.parse` refused those), and records are
at most ``MAX_DEPTH`` deep and ``MAX_RECORD_BYTES`` long. What is left is shape: types,
lengths, names (no NUL or other control characters where a name is stored), and event times by
the SDK's rules (:func:`event_time`). NUL in a value is the writer's to remove and count.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from monitor.sdk.records import (
    ActualRecord,
    CleanCounts,
    PredictionRecord,
    feature_name,
    format_id,
    parse_iso,
    timestamp_from_number,
    uuid7_int,
)

MAX_NAME_CHARS = 200  # model names, versions, ids, segment keys, proba classes


# C0 and C1 controls, DEL; lone surrogates and U+FFFD (what invalid UTF-8 decodes to)
_UNNAMEABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")
# The same for URL parameters, as a pattern the OpenAPI document carries (a URL cannot hold a
# lone surrogate: its invalid UTF-8 decodes to U+FFFD, which the pattern refuses)
NAME_PATTERN = "^[^\x00-\x1f\x7f-\x9f\ufffd]+$"


class InvalidRecord(ValueError):
    """A record refused by the collector; its message is the reason given for its index."""


def name_problem(value: str, what: str, limit: int = MAX_NAME_CHARS) -> str | None:
    """Why ``value`` cannot name a model, version, segment or class, or None.

    Control characters (C0, DEL, C1) are refused, not only NUL: names are shown in pages and
    logs and used in URLs, where they are never wanted.
    """
    if not value:
        return f"{what} must not be empty"
    if len(value) > limit:
        return f"{what} must be at most {limit} characters"
    found = _UNNAMEABLE.search(value)
    if found is None:
        return None
    char = found.group()
    if char < "\ud800":
        return f"{what} must not contain control characters ({char!a})"
    return f"{what} is not valid UTF-8"


def event_time(value: Any) -> datetime:
    """A record's event time, by the SDK's rules: absent means now; a number is Unix seconds
    (:func:`~monitor.sdk.records.timestamp_from_number`: from 1970, below 1e11); a string is
    ISO 8601 (:func:`~monitor.sdk.records.parse_iso`: no zone means UTC)."""
    if value is None:
        return datetime.now(UTC)
    try:
        if isinstance(value, str):
            return parse_iso(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timestamp_from_number(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRecord(str(exc)) from exc
    raise InvalidRecord("timestamp must be an ISO 8601 string or a number of Unix seconds")


def record_id(value: Any, required: bool) -> str:
    if value is None:
        if required:
            raise InvalidRecord("id is required")
        return format_id(uuid7_int(time.time_ns()))
    if isinstance(value, str):
        if not 0 < len(value) <= MAX_NAME_CHARS:
            raise InvalidRecord("id must be 1-200 characters")
        if "\x00" in value:
            raise InvalidRecord("id must not contain U+0000 (NUL)")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)  # at most MAX_INT_DIGITS digits (parse.py)
        if len(text) > MAX_NAME_CHARS:
            raise InvalidRecord("id must be 1-200 characters")
        return text
    raise InvalidRecord("id must be a string or an integer")


# Feature-name tuples already found valid, with their number of names (bounded: a client
# sending ever new names must not grow it without end).
_CHECKED: dict[tuple[str, ...], None] = {}
_CHECKED_NAMES = [0]
_CHECKED_MAX_NAMES = 100_000


def _features(raw: dict[str, Any]) -> dict[str, Any]:
    features = raw.get("features")
    if not isinstance(features, dict):
        raise InvalidRecord("features must be an object")
    names = tuple(features)
    if names in _CHECKED:  # records of a model share their names: check each tuple once
        return features
    counts = CleanCounts()
    for name in names:
        try:
            feature_name(name, counts)  # the SDK's rule: not empty, no NUL, no "@", <= 500
        except ValueError as exc:
            raise InvalidRecord(str(exc)) from exc
    if _CHECKED_NAMES[0] + len(names) > _CHECKED_MAX_NAMES:
        _CHECKED.clear()
        _CHECKED_NAMES[0] = 0
    _CHECKED[names] = None
    _CHECKED_NAMES[0] += len(names)
    return features


def _version(raw: dict[str, Any], default: str | None) -> str:
    version = raw.get("version")
    if version is None:  # absent or null: the query parameter's
        version = default
    if version is None:
        raise InvalidRecord("version is required (query parameter or record field)")
    if version is default and version is not None:  # the query parameter: checked by the route
        return version
    if not isinstance(version, str):
        raise InvalidRecord("version must be a string")
    problem = name_problem(version, "version")
    if problem is not None:
        raise InvalidRecord(problem)
    return version


def _proba(raw: dict[str, Any]) -> Any:
    proba = raw.get("proba")
    if proba is None or isinstance(proba, list):
        return proba
    if isinstance(proba, dict):
        for name in proba:
            problem = name_problem(name, "a proba class")
            if problem is not None:
                raise InvalidRecord(problem)
        return proba
    if isinstance(proba, int | float) and not isinstance(proba, bool):
        return proba
    raise InvalidRecord("proba must be an object, an array or a number")


def _segment(raw: dict[str, Any]) -> dict[str, Any] | None:
    segment = raw.get("segment")
    if segment is None:
        return None
    if not isinstance(segment, dict):
        raise InvalidRecord("segment must be an object of strings")
    for key, value in segment.items():
        problem = name_problem(key, "a segment key")
        if problem is not None:
            raise InvalidRecord(problem)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidRecord("segment must be an object of strings")
    return segment


def prediction_from(raw: Any, version: str | None) -> tuple[str, PredictionRecord]:
    """A prediction record and its model version (the record's or the query parameter's)."""
    if not isinstance(raw, dict):
        raise InvalidRecord("a record must be a JSON object")
    features = _features(raw)
    rec_version = _version(raw, version)
    prediction = raw.get("prediction")
    if isinstance(prediction, dict | list):
        raise InvalidRecord("prediction must be a number, string, boolean or null")
    latency = raw.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        raise InvalidRecord("latency_ms must be a number")
    record = PredictionRecord(
        record_id(raw.get("id"), required=False),
        event_time(raw.get("timestamp")),
        features,
        prediction,
        _proba(raw),
        latency,
        _segment(raw),
    )
    return rec_version, record


def actual_from(raw: Any) -> ActualRecord:
    if not isinstance(raw, dict):
        raise InvalidRecord("a record must be a JSON object")
    if "actual" not in raw:
        raise InvalidRecord("actual is required")
    actual = raw["actual"]
    if isinstance(actual, dict | list):
        raise InvalidRecord("actual must be a number, string, boolean or null")
    return ActualRecord(
        record_id(raw.get("id"), required=True), event_time(raw.get("timestamp")), actual
    )


def id_of(item: Any) -> str | int | None:
    """A rejected record's id as given back in the answer (only a plain, short one)."""
    value = item.get("id") if isinstance(item, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return value
    if isinstance(value, str) and len(value) <= MAX_NAME_CHARS:
        return value
    return None
