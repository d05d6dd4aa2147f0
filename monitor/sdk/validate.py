"""Strict mode: the checks ``log()`` leaves to the worker, made on the caller's thread.

``Monitor(strict=True)`` is for tests and development: every input that the worker would
clean, count or refuse (everything :meth:`Monitor.stats` counts as cleaned, invalid, too large
or dead-lettered) raises here instead, with the reason. Without strict mode none of this runs:
``log()`` stays a few microseconds and the worker counts instead.

What the worker decides from the database (a feature's kind, a version's classes) is checked
against what this client saw first (``Seen``), which is what the database learns from it too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from monitor.sdk.records import (
    CleanCounts,
    caller_id,
    caller_time,
    feature_kind,
    feature_name,
    is_missing,
)
from monitor.sdk.wire import json_default

FLOAT4_MAX = 3.4028234663852886e38


class Seen:
    """What one client logged first: each feature's kind and the proba's classes."""

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}
        self.classes: frozenset[str] | None = None


def check_prediction(
    seen: Seen,
    features: Any,
    prediction: Any,
    id: Any,
    timestamp: Any,
    latency_ms: Any,
    segment: Any,
    proba: Any,
    max_record_bytes: int,
) -> None:
    """Raise TypeError or ValueError for anything the worker would not store exactly as given."""
    if not isinstance(features, Mapping):
        raise TypeError(f"features must be a mapping, got {type(features).__name__}")
    counts = CleanCounts()
    kinds: dict[str, str] = {}
    for name, value in features.items():
        key = feature_name(name, counts)
        if counts.keys_stringified:
            raise TypeError(f"feature names must be strings, got {type(name).__name__}")
        _check_value(f"feature {key!r}", value)
        kind = feature_kind(value)
        if kind is not None:
            first = seen.kinds.get(key, kind)
            if first != kind:
                raise TypeError(
                    f"feature {key!r} was {first} and is now {kind} ({type(value).__name__})"
                )
            kinds[key] = kind
    if isinstance(prediction, dict | list | tuple | set):
        raise TypeError("prediction must be a number, a string, a boolean or None")
    _check_value("prediction", prediction)
    if id is not None:
        text = caller_id(id)
        if not text or "\x00" in text:
            raise ValueError("id must be a non-empty string without NUL characters")
    if timestamp is not None:
        caller_time(timestamp)
    if latency_ms is not None:
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float):
            raise TypeError(f"latency_ms must be a number, got {type(latency_ms).__name__}")
        if not math.isfinite(latency_ms) or abs(latency_ms) > FLOAT4_MAX:
            raise ValueError(f"latency_ms must be finite, got {latency_ms!r}")
    if segment is not None:
        if not isinstance(segment, Mapping):
            raise TypeError(f"segment must be a mapping, got {type(segment).__name__}")
        for key, value in segment.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("segment keys and values must be strings")
            if "\x00" in key or "\x00" in value:
                raise ValueError("segment keys and values must not contain NUL characters")
    classes = _check_proba(seen, proba)
    size = len(
        json.dumps(
            {"features": {str(k): v for k, v in features.items()}, "prediction": prediction},
            default=json_default,
        )
    )
    if size > max_record_bytes:
        raise ValueError(f"record of about {size} bytes exceeds max_record_bytes")
    seen.kinds.update(kinds)
    if classes is not None and seen.classes is None:
        seen.classes = classes


def check_actual(id: Any, actual: Any, timestamp: Any) -> None:
    if id is None:
        raise TypeError("log_actual needs the prediction's id")
    text = caller_id(id)
    if not text or "\x00" in text:
        raise ValueError("id must be a non-empty string without NUL characters")
    if isinstance(actual, dict | list | tuple | set):
        raise TypeError("actual must be a number, a string, a boolean or None")
    _check_value("actual", actual)
    if timestamp is not None:
        caller_time(timestamp)


def _check_value(what: str, value: Any) -> None:
    if is_missing(value) or isinstance(value, bool | int):
        return
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ValueError(f"{what} is not finite ({value!r})")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{what} contains a NUL character")
        return
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        if value.dtype.kind == "f" and not math.isfinite(float(value)):
            raise ValueError(f"{what} is not finite ({value!r})")
        if value.dtype.kind in "biuf":
            return
    raise TypeError(f"{what} has an unsupported type: {type(value).__name__}")


def _check_proba(seen: Seen, proba: Any) -> frozenset[str] | None:
    if proba is None:
        return None
    if isinstance(proba, Mapping):
        for key, value in proba.items():
            _check_value(f"proba[{key!r}]", value)
        classes = frozenset(str(k) for k in proba)
        if seen.classes is not None and classes != seen.classes:
            raise ValueError(
                f"proba classes {sorted(classes)} are not this version's {sorted(seen.classes)}"
            )
        return classes
    if isinstance(proba, str | bytes) or not hasattr(proba, "__iter__"):
        if isinstance(proba, int | float) and not isinstance(proba, bool):
            _check_value("proba", proba)
            return None
        raise TypeError(f"proba must be a mapping or a sequence, got {type(proba).__name__}")
    for k, value in enumerate(proba):
        _check_value(f"proba[{k}]", value)
    return None
