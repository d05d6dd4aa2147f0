"""The user's DataFrame as the executors profile it: one narrow ``select``, no shuffle.

Which column is what (:class:`Columns`) is the same vocabulary as ``log_batch``: a timestamp,
the prediction, the positive class's probability, an id, segment columns, latency, and
features (every other column unless ``features`` names them). :func:`prepare` adds the row's
window start and segment key and turns each column into the type the window job would have
read from Postgres, so the profiles agree:

* times: a ``timestamp`` (an instant), a ``timestamp_ntz`` (taken as UTC, as the SDK takes
  naive datetimes), ISO text, or epoch seconds; windows are UTC-aligned like the worker's;
* a numeric feature of the baseline: numbers, booleans and decimals as float64 (NaN and
  infinities are nulls); any other type is a type error for each non-null value, as the SDK
  counts a text value of a numeric feature;
* segments: ``name=value`` pairs sorted by name, values as text (``None`` for a null, as the
  SDK's JSON null reads), so segment keys equal the SDK's;
* latency: rounded to float4, as ``predictions.latency_ms`` stores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from monitor.errors import InputError
from monitor.spark.partials import PREDICTION_CAT, PREDICTION_NUM, SCORE, SEGMENT, WINDOW

EVENT_MICROS = "__ts"
LATENCY = "__lat"
RECORD_ID = "__id"
RESERVED_PREFIX = "__"


@dataclass(frozen=True)
class Columns:
    """Which DataFrame column plays which part (None: the frame has no such column)."""

    timestamp: str = "timestamp"
    prediction: str | None = "prediction"
    proba: str | None = None
    id: str | None = None
    segments: tuple[str, ...] = ()
    latency_ms: str | None = None
    features: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()

    def named(self) -> list[str]:
        parts = [self.timestamp, self.prediction, self.proba, self.id, self.latency_ms]
        return [p for p in parts if p] + list(self.segments)


def col(name: str) -> Column:
    """A column by its exact name (dots and spaces in names are not paths)."""
    return F.col("`" + name.replace("`", "``") + "`")


def check_columns(df: DataFrame, columns: Columns) -> list[str]:
    """Validate the mapping against the frame; returns the feature columns, in frame order."""
    have = list(df.columns)
    for name in [*columns.named(), *(columns.features or ()), *columns.ignore]:
        if name not in have:
            raise InputError(f"column {name!r} is not in the DataFrame (columns: {have})")
    taken = set(columns.named()) | set(columns.ignore)
    wanted = columns.features
    features = [c for c in have if c not in taken and (wanted is None or c in wanted)]
    bad = [c for c in features if c.startswith(RESERVED_PREFIX)]
    if bad:
        raise InputError(f"feature names may not start with {RESERVED_PREFIX!r}: {bad}")
    return features


def _type(df: DataFrame, name: str) -> T.DataType:
    return df.schema[name].dataType


def _is_number(dt: T.DataType) -> bool:
    return isinstance(dt, T.NumericType | T.BooleanType)


def event_micros(df: DataFrame, name: str) -> Column:
    """Microseconds since the Unix epoch (UTC) of the time column ``name``."""
    dt = _type(df, name)
    c = col(name)
    if isinstance(dt, T.TimestampType):
        return F.unix_micros(c)
    if isinstance(dt, T.TimestampNTZType):  # wall time taken as UTC, without the session zone
        return F.expr(
            "timestampdiff(MICROSECOND, TIMESTAMP_NTZ '1970-01-01 00:00:00', `"
            + name.replace("`", "``")
            + "`)"
        )
    if isinstance(dt, T.StringType):
        return F.unix_micros(F.to_timestamp(c))
    if isinstance(dt, T.NumericType):
        return (c.cast("double") * F.lit(1_000_000.0)).cast("long")
    raise InputError(
        f"timestamp column {name!r} is {dt.simpleString()}: use a timestamp, ISO text or "
        "epoch seconds"
    )


def window_start(micros: Column, window_seconds: int) -> Column:
    """The UTC-aligned start (epoch seconds) of the window holding ``micros``."""
    return (F.floor(micros / F.lit(window_seconds * 1_000_000.0)) * F.lit(window_seconds)).cast(
        "long"
    )


def _text(df: DataFrame, name: str) -> Column:
    """A value as the SDK's text of it: str(value) (booleans True/False)."""
    if isinstance(_type(df, name), T.BooleanType):
        return F.when(col(name), F.lit("True")).when(~col(name), F.lit("False"))  # null: null
    return col(name).cast("string")


def segment_key(df: DataFrame, segments: Sequence[str]) -> Column:
    """The canonical segment key (:func:`monitor.storage.vocabulary.segment_key`) of a row."""
    if not segments:
        return F.lit("")
    parts = [
        F.concat(F.lit(f"{name}="), F.coalesce(_text(df, name), F.lit("None")))
        for name in sorted(segments)
    ]
    return F.concat_ws(",", *parts)


def numeric_values(df: DataFrame, name: str) -> Column:
    """A numeric feature: numbers as double; other types kept (each value a type error)."""
    dt = _type(df, name)
    if _is_number(dt):
        return col(name).cast("double")
    if isinstance(dt, T.StringType):
        return col(name)
    return col(name).cast("string")


def categorical_values(df: DataFrame, name: str) -> Column:
    """A categorical feature: text and numbers as they are (labelled on the executors)."""
    dt = _type(df, name)
    if isinstance(dt, T.DecimalType):
        return col(name).cast("double")
    if isinstance(dt, T.StringType | T.NumericType | T.BooleanType):
        return col(name)
    return col(name).cast("string")


def present_flag(df: DataFrame, name: str) -> Column:
    """1 where a column the reference does not know has a value (finite, for floats)."""
    dt = _type(df, name)
    have = col(name).isNotNull()
    if isinstance(dt, T.FloatType | T.DoubleType):
        have = have & ~F.isnan(col(name)) & (F.abs(col(name)) != F.lit(float("inf")))
    return F.when(have, F.lit(1))


def prediction_columns(df: DataFrame, name: str | None) -> list[Column]:
    if name is None:
        return []
    if _is_number(_type(df, name)):
        return [col(name).cast("double").alias(PREDICTION_NUM)]
    return [_text(df, name).alias(PREDICTION_CAT)]


def score_column(df: DataFrame, name: str | None, positive: str) -> list[Column]:
    """The positive class's probability: a numeric column, or a class -> probability map."""
    if name is None:
        return []
    dt = _type(df, name)
    if _is_number(dt):
        return [col(name).cast("double").alias(SCORE)]
    if isinstance(dt, T.MapType):
        return [F.element_at(col(name), F.lit(positive)).cast("double").alias(SCORE)]
    raise InputError(
        f"proba column {name!r} is {dt.simpleString()}: use the positive class's probability "
        "(a number) or a map of class -> probability"
    )


def prepare(
    df: DataFrame,
    columns: Columns,
    *,
    window_seconds: int,
    numeric: Sequence[str],
    categorical: Sequence[str],
    extra: Sequence[str],
    positive: str = "1",
    keep: Sequence[Any] = (),
) -> DataFrame:
    """The narrow frame the executors profile (see the module docstring)."""
    micros = event_micros(df, columns.timestamp)
    out: list[Any] = [
        window_start(micros, window_seconds).alias(WINDOW),
        segment_key(df, columns.segments).alias(SEGMENT),
        *prediction_columns(df, columns.prediction),
        *score_column(df, columns.proba, positive),
    ]
    out += [numeric_values(df, n).alias(n) for n in numeric]
    out += [categorical_values(df, n).alias(n) for n in categorical]
    out += [present_flag(df, n).alias(n) for n in extra]
    if columns.latency_ms:
        out.append(col(columns.latency_ms).cast("float").cast("double").alias(LATENCY))
    out += list(keep)
    return df.select(*out)
