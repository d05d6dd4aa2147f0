"""The general path of a prediction record into a COPY tuple: every value checked, cleaned and
counted (non-finite numbers to null, unknown types to text, values of the wrong kind kept in
``extra``), for the records the column-wise and inline encoders of :mod:`monitor.sdk.pgbinary`
leave alone. New features and a version's classes are registered on the way (queries), which is
why the writer calls this before its COPY opens when it can (``NeedsDatabase`` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psycopg

from monitor.sdk.pgbinary import (
    F8,
    FIELDS,
    FLOAT4_MAX,
    LEN8,
    NULL,
    TextCache,
    float4,
    float8,
    float8_array,
    jsonb,
    text,
    text_array,
    timestamptz,
)
from monitor.sdk.pgschema import FeatureSchema
from monitor.sdk.records import (
    CleanCounts,
    WriteResult,
    as_datetime,
    as_float,
    as_text,
    feature_kind,
    format_id,
)


def prediction_row(
    conn: psycopg.Connection[Any],
    schema: FeatureSchema,
    texts: TextCache,
    classes: Callable[[Mapping[Any, Any]], list[str]],
    fixed: tuple[bytes, bytes],
    rec: Sequence[Any],
    result: WriteResult,
) -> bytes:
    """One COPY tuple; the common shapes and types take fast paths, the rest is cleaned."""
    counts = result.counts
    features: Mapping[str, Any] = rec[2]
    arrays = schema.fast_arrays(conn, features, texts)
    if arrays is not None:
        num_field, cat_field = arrays
        extra_field = NULL
    else:
        num, cat, extra = _features(conn, schema, features, counts)
        num_field = float8_array(num or None)
        cat_field = text_array(cat or None)
        extra_field = jsonb(extra or None)
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
    segment = rec[6]
    segment_field = (
        jsonb({str(k): as_text(v, counts) for k, v in segment.items()}) if segment else NULL
    )
    record_id = rec[0]
    ts = rec[1]
    return b"".join(
        (
            FIELDS,
            fixed[0],
            timestamptz(ts if type(ts) is int else as_datetime(ts)),
            text(record_id if type(record_id) is str and "\x00" not in record_id
                 else format_id(record_id)),
            fixed[1],
            num_field,
            cat_field,
            extra_field,
            *pred_fields,
            proba_field,
            latency_field,
            segment_field,
        )
    )  # fmt: skip


def _features(
    conn: psycopg.Connection[Any],
    schema: FeatureSchema,
    features: Mapping[str, Any],
    counts: CleanCounts,
) -> tuple[list[float | None], list[str | None], dict[str, Any] | None]:
    """The general path: every value checked, cleaned and counted."""
    plan = schema.plan(conn, features)
    num: list[float | None] = [None] * schema.width["numeric"]
    cat: list[str | None] = [None] * schema.width["categorical"]
    extra: dict[str, Any] | None = None
    for (name, value), (kind, pos) in zip(features.items(), plan, strict=True):
        if value is None:
            continue
        vtype = type(value)
        if kind == "numeric":
            if vtype is float:
                if value - value == 0.0:  # finite
                    num[pos] = value
                else:
                    counts.nonfinite += 1
            elif vtype is int or vtype is bool or feature_kind(value) == "numeric":
                num[pos] = as_float(value, counts)
            else:
                counts.type_errors += 1
                extra = extra or {}
                extra[str(name)] = as_text(value, counts)
        elif kind == "categorical":
            if vtype is str and "\x00" not in value:
                cat[pos] = value
            else:
                cat[pos] = as_text(value, counts)
        else:  # first seen as null under this tuple of names: kept in extra
            extra = extra or {}
            extra[str(name)] = as_text(value, counts)
    return num, cat, extra


def _proba(
    classes: Callable[[Mapping[Any, Any]], list[str]], proba: Any, counts: CleanCounts
) -> list[float | None] | None:
    if proba is None:
        return None
    if isinstance(proba, Mapping):
        order = classes(proba)
        by_name = {str(k): v for k, v in proba.items()}
        return [as_float(by_name.get(c), counts) for c in order]
    if isinstance(proba, str | bytes):
        counts.type_errors += 1
        return None
    if isinstance(proba, Iterable):
        return [as_float(p, counts) for p in proba]
    return [as_float(proba, counts)]
