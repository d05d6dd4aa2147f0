"""The JSON form of records: the spool's frame payload and the HTTP collector's request body.

A record becomes the object the collector accepts (:func:`monitor.sdk.records.record_to_wire`):
ids as their stored text, event times as ISO 8601, values as JSON (NaN allowed in the spool,
where the writer cleans and counts it on replay; turned into null for HTTP).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from monitor.sdk.records import (
    ActualRecord,
    PredictionRecord,
    is_missing,
    parse_iso,
    record_to_wire,
)

log = logging.getLogger(__name__)


def json_default(value: Any) -> Any:
    """JSON for what ``json`` does not know: datetimes as ISO 8601, numpy scalars and Decimals
    as numbers, pandas' missing markers as null, anything else as its text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if is_missing(value):
        return None
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return item()
        except Exception:
            pass
    try:
        return str(value)
    except Exception:
        return repr(object.__repr__(value))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=json_default, separators=(",", ":"))


def encode_batch(
    model: str, version: str, predictions: Sequence[Any], actuals: Sequence[Any]
) -> tuple[bytes, int]:
    """A batch as one JSON document, and the number of records left out because they cannot
    be written as JSON at all (a circular reference...; the caller counts them)."""
    parts: list[list[str]] = [[], []]
    skipped = 0
    for out, records in zip(parts, (predictions, actuals), strict=True):
        for rec in records:
            try:
                out.append(_dumps(record_to_wire(rec)))
            except Exception as exc:
                skipped += 1
                log.warning("record cannot be written as JSON, dropped: %s", exc)
    doc = (
        f'{{"model":{_dumps(model)},"version":{_dumps(version)},'
        f'"predictions":[{",".join(parts[0])}],"actuals":[{",".join(parts[1])}]}}'
    )
    return doc.encode(), skipped


def decode_batch(
    payload: bytes,
) -> tuple[str, str, list[PredictionRecord], list[ActualRecord]]:
    doc = json.loads(payload)
    preds = [wire_to_prediction(r) for r in doc["predictions"]]
    acts = [ActualRecord(r["id"], _time(r["timestamp"]), r.get("actual")) for r in doc["actuals"]]
    return doc["model"], doc["version"], preds, acts


def _time(value: Any) -> Any:
    """ISO text back to a datetime (the fast encoder takes those); anything else as it is, for
    the writer's careful path to judge."""
    if isinstance(value, str):
        try:
            return parse_iso(value)
        except ValueError:
            return value
    return value


def wire_to_prediction(r: Mapping[str, Any]) -> PredictionRecord:
    return PredictionRecord(
        r["id"],
        _time(r["timestamp"]),
        r.get("features") or {},
        r.get("prediction"),
        r.get("proba"),
        r.get("latency_ms"),
        r.get("segment"),
    )


def finite(value: Any) -> Any:
    """JSON for HTTP: non-finite floats become null (counted by the collector as nulls)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
