"""``log_actuals``: ground truth from a Spark DataFrame, wherever its predictions are.

* Predictions logged through the SDK (they are in ``predictions``): the labels are written to
  the ``actuals`` table by the executors, each task through the SDK's own Postgres writer (the
  latest label of an id wins; a row the database refuses becomes a dead letter, counted), and
  the worker's label sweep recomputes the windows they touch, as for ``log_actual``.
* Predictions that live in Spark (``predictions=`` a DataFrame, with the columns
  ``profile_windows`` took): the join happens in Spark and the realised performance of every
  Spark window of those predictions is recomputed and stored (the performance stage of
  :func:`~monitor.spark.windows.profile_windows`); no label reaches Postgres.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from monitor.errors import InputError
from monitor.settings import Settings, get_settings
from monitor.spark import frame as fr
from monitor.spark.partials import WINDOW
from monitor.spark.windows import register_model, resolve_engine
from monitor.storage import vocabulary as v

CHUNK = 50_000
WRITE_SCHEMA = "inserted long, duplicates long, dead_letters long"


@dataclass
class ActualsReport:
    labels: int = 0  # written to Postgres (SDK predictions)
    duplicates: int = 0
    dead_letters: int = 0
    windows: list[datetime] = field(default_factory=list)  # recomputed (Spark predictions)
    not_profiled: list[datetime] = field(default_factory=list)


def _write_partition(
    batches: Iterator[pd.DataFrame], dsn: str, model: str
) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: one task's labels through the SDK's Postgres writer."""
    import psycopg

    from monitor.sdk.postgres.writer import PostgresWriter

    totals = [0, 0, 0]
    with psycopg.connect(dsn, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        for batch in batches:
            for lo in range(0, len(batch), CHUNK):
                part = batch.iloc[lo : lo + CHUNK]
                records = [
                    (
                        str(rid),
                        ts.to_pydatetime() if hasattr(ts, "to_pydatetime") else ts,
                        _plain(a),
                    )
                    for rid, ts, a in zip(part["id"], part["ts"], part["actual"], strict=True)
                ]
                result = writer.write_actuals(model, records)
                totals[0] += result.inserted
                totals[1] += result.duplicates
                totals[2] += result.dead_letters
    yield pd.DataFrame(
        {"inserted": [totals[0]], "duplicates": [totals[1]], "dead_letters": [totals[2]]}
    )


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (the writer's kind test), NaN as a null label."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def log_actuals(
    df: DataFrame,
    *,
    model: str,
    id: str = "id",
    actual: str = "actual",
    timestamp: str | None = None,
    predictions: DataFrame | None = None,
    version: str | None = None,
    prediction_timestamp: str = "timestamp",
    prediction: str | None = "prediction",
    proba: str | None = None,
    prediction_id: str = "id",
    segments: Sequence[str] | None = None,
    latency_ms: str | None = None,
    database_url: str | None = None,
    engine: sa.Engine | None = None,
    settings: Settings | None = None,
) -> ActualsReport:
    """Labels of ``model``'s predictions: ``id``, ``actual`` and (optionally) ``timestamp``
    columns of ``df``. See the module docstring for the two cases."""
    engine = resolve_engine(database_url, engine)
    for name in (id, actual, timestamp):
        if name is not None and name not in df.columns:
            raise InputError(f"column {name!r} is not in the labels (columns: {df.columns})")
    report = ActualsReport()
    if predictions is None:
        when = (
            F.timestamp_micros(fr.event_micros(df, timestamp))
            if timestamp
            else F.current_timestamp()
        )
        rows = df.select(
            fr.col(id).cast("string").alias("id"), when.alias("ts"), fr.col(actual).alias("actual")
        ).where(F.col("id").isNotNull())
        with engine.connect() as conn:
            known = conn.execute(
                sa.text("SELECT 1 FROM models WHERE name = :n"), {"n": model}
            ).first()
        if known is None:
            raise InputError(f"no model named {model!r}: log its predictions first")
        from monitor.storage.engine import libpq_url

        dsn = libpq_url(engine.url.render_as_string(hide_password=False))

        def write(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            return _write_partition(batches, dsn, model)

        for row in rows.mapInPandas(write, WRITE_SCHEMA).collect():
            report.labels += int(row["inserted"])
            report.duplicates += int(row["duplicates"])
            report.dead_letters += int(row["dead_letters"])
        return report

    if version is None:
        raise InputError("version is required with predictions= (the windows' model version)")
    from monitor.spark.performance import performance_windows

    settings = settings or get_settings()
    columns = fr.Columns(
        timestamp=prediction_timestamp,
        prediction=prediction,
        proba=proba,
        id=prediction_id,
        segments=tuple(segments or ()),
        latency_ms=latency_ms,
    )
    fr.check_columns(predictions, columns)
    with engine.begin() as conn:
        key = register_model(conn, model, version, None)
        profiled = {
            int(r[0].timestamp())
            for r in conn.execute(
                sa.text(
                    "SELECT window_start FROM runs WHERE model_id = :m AND job = :j"
                    " AND source = 'spark'"
                ),
                {"m": key.model_id, "j": v.JOB_WINDOW},
            )
        }
    micros = fr.event_micros(predictions, columns.timestamp)
    found = sorted(
        int(r[0])
        for r in predictions.select(fr.window_start(micros, key.window_seconds).alias(WINDOW))
        .distinct()
        .collect()
        if r[0] is not None
    )
    wanted = [w for w in found if w in profiled]
    report.not_profiled = [datetime.fromtimestamp(w, UTC) for w in found if w not in profiled]
    report.windows = [datetime.fromtimestamp(w, UTC) for w in wanted]
    if wanted:
        performance_windows(
            predictions,
            columns,
            key,
            report.windows,
            engine=engine,
            settings=settings,
            actuals=df,
            actual_columns=(id, actual, timestamp),
        )
    return report
