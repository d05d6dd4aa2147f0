"""How the DataFrame's columns become what the window job would have read from Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pyspark.sql import functions as F

from monitor.errors import InputError
from monitor.spark import frame as fr
from monitor.spark.partials import SEGMENT, WINDOW, ColumnPlan, Plan, profile_batches


def test_times_of_every_kind_land_in_the_same_utc_window(spark: Any) -> None:
    at = datetime(2026, 11, 20, 10, 59, 59, 999_000, tzinfo=UTC)
    df = spark.createDataFrame([(at,)], "t timestamp").select(
        "t",
        F.col("t").cast("timestamp_ntz").alias("ntz"),  # session zone is UTC in the tests
        F.date_format("t", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").alias("iso"),
        F.unix_micros("t").cast("double").__truediv__(1e6).alias("epoch"),
    )
    starts = df.select(
        *[fr.window_start(fr.event_micros(df, c), 3600).alias(c) for c in df.columns]
    ).first()
    assert starts is not None
    assert set(starts.asDict().values()) == {
        int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp())
    }
    with pytest.raises(InputError, match="timestamp column"):
        fr.event_micros(spark.createDataFrame([([1],)], "t array<int>"), "t")


def test_segment_keys_and_type_errors_match_the_sdk(spark: Any) -> None:
    df = spark.createDataFrame(
        [(1, True, "eu", "1.5"), (2, False, None, None), (3, None, "us", "oops")],
        "ts long, flag boolean, region string, amount string",
    )
    columns = fr.Columns(timestamp="ts", prediction=None, segments=("region", "flag"))
    prepared = fr.prepare(
        df, columns, window_seconds=3600, numeric=["amount"], categorical=[], extra=[]
    )
    keys = [r[SEGMENT] for r in prepared.orderBy(WINDOW).collect()]
    # as segment_key({"flag": str(True), "region": "eu"}) reads the SDK's JSON
    assert sorted(keys) == ["flag=False,region=None", "flag=None,region=us", "flag=True,region=eu"]
    plan = Plan(columns=(ColumnPlan("amount", "numeric", ("amount",), (0.0, 1.0, 2.0)),))
    state = profile_batches([prepared.toPandas().assign(**{SEGMENT: ""})], plan)
    (partial,) = state.values()
    amount = partial.columns["amount"]
    # text in a numeric feature: each value a type error, as the SDK counts it
    assert (amount.count, amount.nulls, amount.invalid) == (0, 1, 2)
