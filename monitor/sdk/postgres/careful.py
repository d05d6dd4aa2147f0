"""The careful write path's encoder: one prediction record into a COPY tuple, every value checked,
cleaned and counted, for the records the fast encoder (:mod:`monitor.sdk.postgres.fast`)
declines.

What it changes, it counts (:class:`~monitor.sdk.records.CleanCounts`): non-finite numbers and
over-large latencies become null, values of unsupported types are stored as their text, values
of the wrong kind for their feature are kept in ``extra``, NUL characters are removed from
text, non-string feature names become their text, a proba whose classes are not the version's
is stored as null, values of features beyond the model's cap are not stored. What cannot be
stored as its sender meant raises :class:`~monitor.sdk.records.RecordError` (an invalid feature
name or id, an unreadable time...): the writer keeps that record as a dead letter.

The encoder runs no queries: names and classes are registered before a COPY opens; a record
that needs one raises :class:`~monitor.sdk.postgres.schema.NeedsDatabase`.

The careful write (:func:`write_rows`): rows are COPYed straight in; on a duplicate (a replay)
they go through a temporary staging table and ``INSERT ... ON CONFLICT`` (a replay never
duplicates rows); rows the database still refuses are bisected until the bad ones are alone,
and those become dead letters (:func:`dead_letter`) with the error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from monitor.sdk.postgres.copyio import (
    ACTUAL_COLUMNS,
    ACTUAL_TYPES,
    ACTUAL_UPSERT,
    PREDICTION_COLUMNS,
    PREDICTION_TYPES,
    copy_rows,
)
from monitor.sdk.postgres.encode import (
    F8,
    FIELDS,
    FLOAT4_MAX,
    LEN8,
    NULL,
    float4,
    float8,
    float8_array,
    jsonb,
    text,
    text_array,
    timestamptz,
)
from monitor.sdk.postgres.schema import FeatureSchema
from monitor.sdk.records import (
    CleanCounts,
    RecordError,
    WriteResult,
    as_datetime,
    as_float,
    as_text,
    feature_kind,
    format_id,
    is_missing,
    record_to_wire,
)

log = logging.getLogger(__name__)
RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)

Classes = Callable[[Mapping[Any, Any]], "list[str] | None"]


def prediction_row(
    schema: FeatureSchema,
    classes: Classes,
    fixed: tuple[bytes, bytes],
    rec: Sequence[Any],
    result: WriteResult,
) -> bytes:
    """One COPY tuple (PREDICTION_COLUMNS order); raises RecordError for a refused record."""
    counts = result.counts
    features = rec[2]
    if not isinstance(features, Mapping):
        raise RecordError(f"features must be a mapping, got {type(features).__name__}")
    num, cat, extra = _features(schema, features, counts)
    prediction = rec[3]
    if type(prediction) is float and prediction - prediction == 0.0:
        pred_fields = (LEN8 + F8.pack(prediction), NULL)
    elif type(prediction) is str and "\x00" not in prediction:
        pred_fields = (NULL, text(prediction))
    elif feature_kind(prediction) == "numeric":
        pred_fields = (float8(as_float(prediction, counts)), NULL)
    else:
        pred_fields = (NULL, text(as_text(prediction, counts)))
    proba = rec[4]
    proba_field = NULL if proba is None else float8_array(_proba(classes, proba, counts))
    latency = rec[5]
    if latency is None:
        latency_field = NULL
    else:
        value = as_float(latency, counts)
        if value is not None and abs(value) > FLOAT4_MAX:
            counts.nonfinite += 1
            value = None
        latency_field = float4(value)
    return b"".join(
        (
            FIELDS,
            fixed[0],
            _time(rec[1]),
            text(format_id(rec[0])),
            fixed[1],
            float8_array(num or None),
            text_array(cat or None),
            jsonb(extra or None),
            *pred_fields,
            proba_field,
            latency_field,
            _segment(rec[6], counts),
        )
    )


def _time(value: Any) -> bytes:
    if type(value) is int:
        return timestamptz(value)
    try:
        return timestamptz(as_datetime(value))
    except RecordError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecordError(f"unreadable timestamp: {exc}") from exc


def _segment(segment: Any, counts: CleanCounts) -> bytes:
    if segment is None:
        return NULL
    if not isinstance(segment, Mapping):
        raise RecordError(f"segment must be a mapping, got {type(segment).__name__}")
    if not segment:
        return NULL
    cleaned: dict[str, Any] = {}
    for key, value in segment.items():
        name = as_text(key, counts)
        if name is not None:
            cleaned[name] = as_text(value, counts)
    return jsonb(cleaned)


def _features(
    schema: FeatureSchema, features: Mapping[Any, Any], counts: CleanCounts
) -> tuple[list[float | None], list[str | None], dict[str, Any] | None]:
    plan = schema.plan(features)
    if plan.error is not None:
        raise RecordError(plan.error)
    counts.keys_stringified += plan.stringified
    if len(plan.slots) != len(features):  # cannot happen: plans are per tuple of keys
        raise RecordError("feature plan does not match the record")
    num: list[float | None] = [None] * schema.width["numeric"]
    cat: list[str | None] = [None] * schema.width["categorical"]
    extra: dict[str, Any] | None = None
    for value, slot in zip(features.values(), plan.slots, strict=True):
        if is_missing(value):
            continue
        kind, pos = slot.kind, slot.position
        if kind == "numeric":
            if type(value) is float and value - value == 0.0:  # finite
                num[pos] = value
            elif feature_kind(value) == "numeric":
                num[pos] = as_float(value, counts)
            else:
                counts.type_errors += 1
                extra = extra or {}
                extra[slot.name] = as_text(value, counts)
        elif kind == "categorical":
            if type(value) is str and "\x00" not in value:
                cat[pos] = value
            else:
                cat[pos] = as_text(value, counts)
        elif slot.why == "over_cap":
            counts.features_over_cap += 1
        else:  # "unknown" cannot hold a value here: plan() asked for its registration
            raise RecordError(f"feature {slot.name[:60]!r} is not registered ({slot.why})")
    return num, cat, extra


def _proba(classes: Classes, proba: Any, counts: CleanCounts) -> list[float | None] | None:
    if isinstance(proba, Mapping):
        order = classes(proba)
        by_name = {str(k): v for k, v in proba.items()}
        if order is None or set(by_name) != set(order):
            counts.proba_mismatch += 1
            return None
        return [as_float(by_name[c], counts) for c in order]
    if isinstance(proba, str | bytes):
        counts.type_errors += 1
        return None
    if isinstance(proba, Iterable):
        return [as_float(p, counts) for p in proba]
    return [as_float(proba, counts)]


# --- the careful write -------------------------------------------------------------------------

_TABLES = {
    "predictions": (PREDICTION_COLUMNS, PREDICTION_TYPES, "DO NOTHING"),
    "actuals": (ACTUAL_COLUMNS, ACTUAL_TYPES, ACTUAL_UPSERT),
}


def write_rows(
    conn: psycopg.Connection[Any],
    table: str,
    rows: list[Any],
    records: list[Any],
    model_id: int,
    result: WriteResult,
) -> None:
    """Write rows (encoded COPY tuples, or value tuples), bisecting around rows the database
    refuses: they become dead letters (``records[i]`` is the record of ``rows[i]``)."""
    if not rows:
        return
    columns, types, on_conflict = _TABLES[table]
    try:
        inserted = _copy_direct(conn, table, columns, types, rows)
    except pg_errors.UniqueViolation:
        try:
            inserted = _copy_upsert(conn, table, columns, types, rows, on_conflict)
        except RETRYABLE:
            raise
        except Exception as exc:
            _bisect(conn, table, rows, records, model_id, result, exc)
            return
    except RETRYABLE:
        raise
    except Exception as exc:
        _bisect(conn, table, rows, records, model_id, result, exc)
        return
    result.inserted += inserted
    if table == "predictions":
        result.duplicates += len(rows) - inserted


def _bisect(
    conn: psycopg.Connection[Any],
    table: str,
    rows: list[Any],
    records: list[Any],
    model_id: int,
    result: WriteResult,
    exc: Exception,
) -> None:
    if len(rows) == 1:
        dead_letter(conn, model_id, table.rstrip("s"), records[0], exc, result)
        return
    mid = len(rows) // 2
    write_rows(conn, table, rows[:mid], records[:mid], model_id, result)
    write_rows(conn, table, rows[mid:], records[mid:], model_id, result)


def _copy_direct(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Any],
) -> int:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as cp:
        copy_rows(cp, types, rows)
    return len(rows)


def _copy_upsert(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Any],
    on_conflict: str,
) -> int:
    stage = f"_stage_{table}"
    cols = ", ".join(columns)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
            f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy_rows(copy, types, rows)
        cur.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT {on_conflict}"
        )
        return int(cur.rowcount)


def dead_letter(
    conn: psycopg.Connection[Any],
    model_id: int,
    kind: str,
    record: Any,
    exc: BaseException,
    result: WriteResult,
) -> None:
    """Keep a refused record, with the error, in ``dead_letters`` (NULs removed: Postgres text
    cannot hold them)."""
    try:
        text = json.dumps(record_to_wire(record), default=_text_of)
    except Exception:
        text = json.dumps({"unreadable": _text_of(record)})
    text = text.replace("\\u0000", "").replace("\x00", "")
    error = f"{type(exc).__name__}: {exc}".replace("\x00", "")[:2000]
    conn.execute(
        "INSERT INTO dead_letters (model_id, kind, record, error) VALUES (%s, %s, %s, %s)",
        (model_id, kind, text, error),
    )
    result.dead_letters += 1
    log.warning("record refused and dead-lettered (%s): %s", kind, error)


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return object.__repr__(value)
