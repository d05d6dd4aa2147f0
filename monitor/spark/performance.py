"""The performance job's results for Spark windows, computed on the executors.

Estimated performance (CBPE's expected ROC AUC ranks a window's scores) and realised
performance (predictions joined to labels) need a window's rows together, unlike profiles.
So this stage narrows the rows to what the performance job reads (time, id, prediction,
score, segment, latency, label) and groups them by window (``applyInPandas``): each group
becomes the job's own :class:`~monitor.jobs.labels.LabelledWindow`, and the job's own pure
functions (``performance_rows``, ``label_rows``, ``operational_rows``) make the rows. Only the
result rows reach the driver, which stores them with a ``performance`` run per window.

Labels join in Spark (``actuals``: a DataFrame of id, label and label time; the latest label
of an id wins, as in the ``actuals`` table); without a label time a label is stamped with the
job's time, as the SDK stamps ``log_actual``. ``labels_unmatched`` counts the labels, by the
window of their own time, whose id matches no prediction of the DataFrame.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from monitor.jobs import runs
from monitor.jobs.labels import LabelledWindow
from monitor.jobs.operations import LOOKBACK, OpsContext, load_context, operational_rows
from monitor.jobs.performance import ESTIMATOR_KEY, store, window_model_info
from monitor.jobs.performance_rows import ModelInfo, label_rows, performance_rows
from monitor.jobs.reader import Coded
from monitor.jobs.result_rows import result_row
from monitor.settings import Settings
from monitor.spark import frame as fr
from monitor.spark.partials import PREDICTION_CAT, PREDICTION_NUM, SCORE, SEGMENT, WINDOW
from monitor.statistics.profiles import category_label
from monitor.storage import vocabulary as v

SECONDS = "__t"
PROBA = "__proba"
ACTUAL_NUM = "__an"
ACTUAL_CAT = "__ac"
LABEL_TS = "__lt"
RESULT_SCHEMA = "w long, n long, rows string"


def _null(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def _texts(group: pd.DataFrame, name: str) -> list[str | None]:
    if name not in group.columns:
        return [None] * len(group)
    return [None if _null(x) else str(x) for x in group[name].tolist()]


def _floats(group: pd.DataFrame, name: str) -> np.ndarray:
    if name not in group.columns:
        return np.full(len(group), np.nan)
    return pd.to_numeric(group[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def labelled_window(group: pd.DataFrame, version_id: int) -> LabelledWindow:
    """A window's rows as the performance job reads them: in time order, an id once."""
    group = group.sort_values([SECONDS, fr.RECORD_ID], kind="mergesort")
    repeated = group[fr.RECORD_ID].duplicated(keep="first").to_numpy()
    group = group[~repeated]
    codes, labels = pd.factorize(group[SEGMENT].fillna(""), sort=False)
    n = len(group)
    return LabelledWindow(
        n=n,
        record_ids=[str(x) for x in group[fr.RECORD_ID].tolist()],
        event_ts=_floats(group, SECONDS),
        prediction_num=_floats(group, PREDICTION_NUM),
        prediction_cat=_texts(group, PREDICTION_CAT),
        score=_floats(group, SCORE),
        proba=_texts(group, PROBA),
        latency=_floats(group, fr.LATENCY),
        versions=np.full(n, version_id, dtype=np.int32),
        segments=Coded(codes=codes.astype(np.int32), labels=[str(x) for x in labels]),
        actual_num=_floats(group, ACTUAL_NUM),
        actual_cat=_texts(group, ACTUAL_CAT),
        label_ts=_floats(group, LABEL_TS),
        duplicates=int(repeated.sum()),
    )


def _features(
    group: pd.DataFrame, window: LabelledWindow, numeric: Sequence[str], categorical: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Feature arrays in the labelled window's row order (the regression loss model's input)."""
    rows = group.drop_duplicates(fr.RECORD_ID, keep="first").set_index(fr.RECORD_ID)
    rows = rows.reindex(window.record_ids)
    num = {n: _floats(rows, n) for n in numeric}
    cat = {
        n: np.array([None if _null(x) else category_label(x) for x in rows[n]], dtype=object)
        for n in categorical
    }
    return num, cat


def window_results(
    group: pd.DataFrame,
    *,
    info: ModelInfo,
    version_id: int,
    contexts: dict[int, OpsContext],
    unmatched: dict[int, int],
    window_seconds: int,
    features: tuple[Sequence[str], Sequence[str]] | None,
) -> pd.DataFrame:
    """``applyInPandas`` body: one window's rows -> the performance job's result rows."""
    w = int(group[WINDOW].iloc[0])
    window = labelled_window(group, version_id)
    arrays = _features(group, window, *features) if features and window.n else None
    rows = performance_rows(window, info, arrays)
    rows += label_rows(window, info.min_segment_rows)
    rows.append(result_row(v.OPERATIONAL, v.LABELS_UNMATCHED, float(unmatched.get(w, 0))))
    end = datetime.fromtimestamp(w + window_seconds, UTC)
    rows += operational_rows(window, contexts[w], end)
    return pd.DataFrame({"w": [w], "n": [window.n], "rows": [json.dumps(rows)]})


def _actual_columns(actuals: DataFrame, actual: str) -> list[Column]:
    dt = actuals.schema[actual].dataType
    from pyspark.sql import types as T

    if isinstance(dt, T.NumericType | T.BooleanType):
        return [
            fr.col(actual).cast("double").alias(ACTUAL_NUM),
            F.lit(None).cast("string").alias(ACTUAL_CAT),
        ]
    return [
        F.lit(None).cast("double").alias(ACTUAL_NUM),
        fr._text(actuals, actual).alias(ACTUAL_CAT),
    ]


def labels_frame(actuals: DataFrame, id: str, actual: str, timestamp: str | None) -> DataFrame:
    """One label per id (the latest by label time), with the label time in epoch seconds."""
    for name in (id, actual, timestamp):
        if name is not None and name not in actuals.columns:
            from monitor.errors import InputError

            raise InputError(f"column {name!r} is not in the labels (columns: {actuals.columns})")
    when = (
        fr.event_micros(actuals, timestamp).cast("double") / F.lit(1e6)
        if timestamp
        else F.unix_micros(F.current_timestamp()).cast("double") / F.lit(1e6)
    )
    labels = actuals.select(
        fr.col(id).cast("string").alias(fr.RECORD_ID),
        *_actual_columns(actuals, actual),
        when.alias(LABEL_TS),
    ).where(F.col(fr.RECORD_ID).isNotNull())
    latest = labels.groupBy(fr.RECORD_ID).agg(
        F.max_by(F.struct(ACTUAL_NUM, ACTUAL_CAT, LABEL_TS), F.col(LABEL_TS)).alias("l")
    )
    return latest.select(fr.RECORD_ID, "l.*")


def _proba_text(df: DataFrame, name: str | None, classes: list[str] | None) -> list[Column]:
    """Class probabilities as the performance job reads them: text, in the classes' order."""
    if name is None:
        return []
    from pyspark.sql import types as T

    dt = df.schema[name].dataType
    if isinstance(dt, T.MapType) and classes:
        parts = [
            F.coalesce(F.element_at(fr.col(name), F.lit(c)).cast("string"), F.lit(""))
            for c in classes
        ]
        return [F.concat_ws(",", *parts).alias(PROBA)]
    if isinstance(dt, T.NumericType):
        return [fr.col(name).cast("double").cast("string").alias(PROBA)]
    return []


def register_classes(
    engine: sa.Engine, df: DataFrame, name: str | None, version_id: int
) -> list[str] | None:
    """For a map of class -> probability: the version's class order (registered once, sorted,
    as the SDK registers it from the first probabilities it sees)."""
    if name is None:
        return None
    from pyspark.sql import types as T

    if not isinstance(df.schema[name].dataType, T.MapType):
        return None
    with engine.begin() as conn:
        known = conn.execute(
            sa.text("SELECT classes FROM model_versions WHERE id = :v"), {"v": version_id}
        ).scalar()
        if known:
            return list(known)
        found = sorted(
            {str(r[0]) for r in df.select(F.explode(F.map_keys(fr.col(name)))).distinct().collect()}
        )
        conn.execute(
            sa.text("UPDATE model_versions SET classes = COALESCE(classes, :c) WHERE id = :v"),
            {"c": found, "v": version_id},
        )
        return found


def performance_windows(
    df: DataFrame,
    columns: fr.Columns,
    key: Any,
    window_starts: Sequence[datetime],
    *,
    engine: sa.Engine,
    settings: Settings,
    actuals: DataFrame | None = None,
    actual_columns: tuple[str, str, str | None] = ("id", "actual", None),
) -> int:
    """Compute and store the performance job's results of the given windows of ``df``."""
    starts = {int(s.timestamp()) for s in window_starts}
    classes = register_classes(engine, df, columns.proba, key.version_id)
    with engine.connect() as conn:
        base, info = window_model_info(conn, key.model_id, key.version_id, settings)
        contexts = {
            w: load_context(
                conn,
                key.model_id,
                datetime.fromtimestamp(w, UTC),
                datetime.fromtimestamp(w + key.window_seconds, UTC),
                {key.version_id},
                key.version_id,
                base.created_at,
                cold_seconds=settings.cold_start_seconds,
                idle_seconds=settings.idle_seconds,
            )
            for w in starts
        }
    info.classes = info.classes or classes
    features: tuple[list[str], list[str]] | None = None
    keep: list[Column] = []
    estimator = base.performance.get(ESTIMATOR_KEY) or {}
    if info.task == "regression" and estimator.get("method") == "dle":
        features = (
            [f for f in estimator.get("numeric_edges", {}) if f in df.columns],
            [f for f in estimator.get("categorical_levels", {}) if f in df.columns],
        )
        keep += [fr.numeric_values(df, f).alias(f) for f in features[0]]
        keep += [fr.categorical_values(df, f).alias(f) for f in features[1]]
    micros = fr.event_micros(df, columns.timestamp)
    record_id = (
        fr.col(columns.id).cast("string")
        if columns.id
        else F.monotonically_increasing_id().cast("string")
    )
    rows = df.select(
        fr.window_start(micros, key.window_seconds).alias(WINDOW),
        (micros.cast("double") / F.lit(1e6)).alias(SECONDS),
        record_id.alias(fr.RECORD_ID),
        fr.segment_key(df, columns.segments).alias(SEGMENT),
        *fr.prediction_columns(df, columns.prediction),
        *fr.score_column(df, columns.proba, key.positive),
        *_proba_text(df, columns.proba, info.classes),
        *(
            [fr.col(columns.latency_ms).cast("float").cast("double").alias(fr.LATENCY)]
            if columns.latency_ms
            else []
        ),
        *keep,
    ).where(F.col(WINDOW).isin(sorted(starts)))
    rows = rows.persist()
    spans = {
        int(r["w"]): float(r["last"])
        for r in rows.groupBy(F.col(WINDOW).alias("w")).agg(F.max(SECONDS).alias("last")).collect()
    }
    contexts = {
        w: _with_earlier_rows(ctx, w, spans, version_id=key.version_id)
        for w, ctx in contexts.items()
    }
    unmatched: dict[int, int] = {}
    if actuals is not None:
        labels = labels_frame(actuals, *actual_columns)
        rows = rows.join(labels, on=fr.RECORD_ID, how="left")
        lost = labels.join(rows.select(fr.RECORD_ID), on=fr.RECORD_ID, how="left_anti")
        by_window = lost.groupBy(
            fr.window_start((F.col(LABEL_TS) * F.lit(1e6)).cast("long"), key.window_seconds).alias(
                "w"
            )
        ).count()
        unmatched = {
            int(r["w"]): int(r["count"]) for r in by_window.collect() if r["w"] is not None
        }

    version_id, window_seconds = key.version_id, key.window_seconds

    def per_window(group: pd.DataFrame) -> pd.DataFrame:
        return window_results(
            group,
            info=info,
            version_id=version_id,
            contexts=contexts,
            unmatched=unmatched,
            window_seconds=window_seconds,
            features=features,
        )

    done = 0
    results = rows.groupBy(WINDOW).applyInPandas(per_window, RESULT_SCHEMA)
    try:
        for row in results.toLocalIterator():
            done += _store(engine, key, row)
    finally:
        rows.unpersist()
    return done


def _store(engine: sa.Engine, key: Any, row: Any) -> int:
    """One window's performance results and its ``performance`` run, in one transaction."""
    w = int(row["w"])
    start = datetime.fromtimestamp(w, UTC)
    end = datetime.fromtimestamp(w + key.window_seconds, UTC)
    with engine.begin() as conn:
        runs.record_completed(
            conn,
            model_id=key.model_id,
            job=v.JOB_PERFORMANCE,
            window_start=start,
            window_end=end,
            rows=int(row["n"]),
        )
        store(conn, key.model_id, start, end, json.loads(row["rows"]))
    return 1


def _with_earlier_rows(
    ctx: OpsContext, w: int, last_by_window: dict[int, float], *, version_id: int
) -> OpsContext:
    """The context as if the DataFrame's rows were in ``predictions``: the last request before
    the window (within the look-back) and whether the version is new come from both."""
    earliest = w - LOOKBACK.total_seconds()
    earlier = [t for s, t in last_by_window.items() if s < w and t >= earliest]
    previous = max([t for t in (ctx.previous_ts, *earlier) if t is not None], default=None)
    new_versions = ctx.new_versions if not earlier else ctx.new_versions - {version_id}
    return replace(ctx, previous_ts=previous, new_versions=new_versions)
