"""``profile_windows``: a Spark DataFrame of predictions -> completed windows of a model.

Three Spark stages, none of which brings rows to the driver:

1. ``mapInPandas``: each task reduces its rows to one partial profile per (window, segment)
   (:mod:`monitor.spark.partials`, on the baseline's bin edges);
2. ``groupBy(window, segment).applyInPandas``: the tasks' partials of a key merged into one
   (a shuffle of profiles, a few hundred kB per key, never of rows);
3. the driver reads the merged profiles window by window (``toLocalIterator`` over a range
   partitioning, so it holds a few windows at a time whatever the row count) and turns each
   into results with the window job's own :func:`~monitor.jobs.window_job.results_from_profiles`,
   then stores profiles, results and a succeeded ``runs`` row (``source = 'spark'``) in one
   transaction, through the window job's :func:`~monitor.jobs.window_job.store`.

Exact latency percentiles (when there is a latency column) are one more aggregation
(Spark's exact ``percentile``, linear interpolation as numpy's); the performance stage
(:mod:`monitor.spark.performance`) is another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from monitor.errors import InputError
from monitor.jobs import runs
from monitor.jobs.reference import Reference, load_reference, load_row_sample, load_training
from monitor.jobs.window_job import (
    SAMPLE_SIZE,
    SegmentProfiles,
    WindowOutput,
    WindowProfiles,
    multivariate_rows,
    results_from_profiles,
    store,
)
from monitor.settings import Settings, get_settings
from monitor.spark import frame as fr
from monitor.spark.partials import (
    ALL_TRAFFIC,
    NO_WINDOW,
    PREDICTION_CAT,
    PREDICTION_NUM,
    SCORE,
    ColumnPlan,
    Partial,
    Plan,
    merge_rows,
    partition_rows,
    row_sample_arrays,
    window_seed,
)
from monitor.statistics.profiles import NumericProfile
from monitor.storage import vocabulary as v

log = logging.getLogger(__name__)

PARTIAL_SCHEMA = "w long, seg string, task int, payload binary"
MERGED_SCHEMA = "w long, seg string, rows long, payload binary"
KEYS_PER_DRIVER_PARTITION = 32
"""Merged (window, segment) profiles per partition the driver reads at a time."""


@dataclass
class WindowReport:
    """What one stored window holds (for progress lines and the caller)."""

    window_start: datetime
    window_end: datetime
    rows: int
    segments: int
    results: int
    drifted: list[str] = field(default_factory=list)


@dataclass
class ProfileReport:
    model: str
    version: str
    windows: list[WindowReport] = field(default_factory=list)
    rows_without_time: int = 0
    seconds: float = 0.0
    performance_windows: int = 0

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.windows)


# --- the model and its reference ----------------------------------------------------------


def parse_window(window: str | int | timedelta | None) -> int | None:
    """Window length in seconds from ``"1h"``, ``"15m"``, ``"1d"``, ``"30s"``, seconds or a
    timedelta (None: the model's)."""
    if window is None:
        return None
    if isinstance(window, timedelta):
        seconds = int(window.total_seconds())
    elif isinstance(window, int):
        seconds = window
    else:
        text = window.strip().lower()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        try:
            seconds = int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)
        except (ValueError, IndexError) as exc:
            raise InputError(f"bad window {window!r}: use e.g. 1h, 15m, 1d or seconds") from exc
    if seconds <= 0 or (86400 % seconds and seconds % 86400):
        raise InputError(f"window {window!r} must divide a day (or be whole days)")
    return seconds


@dataclass(frozen=True)
class ModelKey:
    model_id: int
    version_id: int
    window_seconds: int
    positive: str


def register_model(
    conn: sa.Connection, model: str, version: str, window_seconds: int | None
) -> ModelKey:
    """The model and version (created if new); a window length must match the model's."""
    if not model or not version:
        raise InputError("model and version are required")
    conn.execute(
        sa.text(
            "INSERT INTO models (name, window_seconds) VALUES (:n, COALESCE(:w, 3600))"
            " ON CONFLICT (name) DO NOTHING"
        ),
        {"n": model, "w": window_seconds},
    )
    model_id, seconds, positive = conn.execute(
        sa.text("SELECT id, window_seconds, positive_class FROM models WHERE name = :n"),
        {"n": model},
    ).one()
    if window_seconds is not None and window_seconds != seconds:
        raise InputError(
            f"model {model!r} has {seconds} s windows; profile it with window={seconds}s "
            "(its stored windows, alerts and pages all use that length)"
        )
    conn.execute(
        sa.text(
            "INSERT INTO model_versions (model_id, version) VALUES (:m, :v)"
            " ON CONFLICT (model_id, version) DO NOTHING"
        ),
        {"m": model_id, "v": version},
    )
    version_id = conn.execute(
        sa.text("SELECT id FROM model_versions WHERE model_id = :m AND version = :v"),
        {"m": model_id, "v": version},
    ).scalar_one()
    return ModelKey(int(model_id), int(version_id), int(seconds), positive or "1")


def build_plan(
    training: Reference | None,
    rows: dict[str, Any] | None,
    features: Sequence[str],
    *,
    window_seconds: int,
    segmented: bool,
) -> tuple[Plan, list[str], list[str]]:
    """What the executors profile; also which features are read as numbers / as categories."""
    columns: list[ColumnPlan] = []
    numeric: list[str] = []
    categorical: list[str] = []
    known: set[str] = set()
    for c in training.columns if training is not None else []:
        if c.role == "target":
            continue
        known.add(c.name)
        is_num = isinstance(c.profile, NumericProfile)
        kind = "numeric" if is_num else "categorical"
        edges = tuple(c.profile.edges) if isinstance(c.profile, NumericProfile) else ()
        if c.role == "prediction":
            sources: tuple[str, ...] = (
                (PREDICTION_NUM,) if is_num else (PREDICTION_CAT, PREDICTION_NUM)
            )
        elif c.role == "score":
            sources = (SCORE, PREDICTION_NUM)
        else:
            sources = (c.source,)
            if c.source in features:
                (numeric if is_num else categorical).append(c.source)
        columns.append(ColumnPlan(c.name, kind, sources, edges))
    extra = [f for f in features if f not in known and f not in numeric + categorical]
    row_features = tuple((str(k), str(kd)) for k, kd in (rows or {}).get("kinds", {}).items())
    plan = Plan(
        columns=tuple(columns),
        extra=tuple(extra),
        row_features=row_features,
        window_seconds=window_seconds,
        sample_size=SAMPLE_SIZE,
        segmented=segmented,
    )
    return plan, numeric, categorical


# --- Spark stages -------------------------------------------------------------------------


def profile_stage(prepared: DataFrame, plan: Plan) -> DataFrame:
    """Stages 1 and 2: merged partials, one row per (window, segment) and all traffic."""

    def per_task(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import TaskContext

        context = TaskContext.get()
        task = context.partitionId() if context is not None else 0
        return partition_rows(batches, plan, task)

    def per_key(group: Any) -> Any:
        return merge_rows(group, plan)

    partials = prepared.mapInPandas(per_task, PARTIAL_SCHEMA)
    return partials.groupBy("w", "seg").applyInPandas(per_key, MERGED_SCHEMA)


def latency_stage(prepared: DataFrame) -> dict[tuple[int, str], tuple[float, float, float]]:
    """Exact p50/p95/p99 latency per (window, segment) and per window (key ``''``)."""
    found = (
        prepared.where(F.col(fr.LATENCY).isNotNull() & ~F.isnan(fr.LATENCY))
        .rollup(F.col("__w").alias("w"), F.col("__seg").alias("seg"))
        .agg(F.expr(f"percentile({fr.LATENCY}, array(0.5, 0.95, 0.99))").alias("p"))
        .where(F.col("w").isNotNull())
        .collect()
    )
    out: dict[tuple[int, str], tuple[float, float, float]] = {}
    for row in found:
        p50, p95, p99 = (float(x) for x in row["p"])
        out[(int(row["w"]), ALL_TRAFFIC if row["seg"] is None else str(row["seg"]))] = (
            p50,
            p95,
            p99,
        )
    return out


def iterate_windows(merged: DataFrame) -> Iterator[tuple[int, list[Any]]]:
    """(window start, its merged rows), in time order, a few windows in driver memory."""
    merged = merged.persist()
    try:
        keys = merged.count()
        if not keys:
            return
        ordered = merged.repartitionByRange(
            max(1, keys // KEYS_PER_DRIVER_PARTITION), "w"
        ).sortWithinPartitions("w", "seg")
        for w, rows in groupby(ordered.toLocalIterator(), key=lambda r: int(r["w"])):
            yield w, list(rows)
    finally:
        merged.unpersist()


def window_profiles(
    w: int,
    parts: dict[str, Partial],
    segmented: bool,
    min_segment_rows: int,
    latency: dict[tuple[int, str], tuple[float, float, float]],
) -> tuple[WindowProfiles, Partial]:
    """A window's :class:`WindowProfiles` from its merged partials by segment key (and its
    all-traffic partial)."""
    total = parts[ALL_TRAFFIC if segmented else ""]
    window = WindowProfiles(
        rows=total.rows,
        segments={"": SegmentProfiles(total.rows, total.columns, latency.get((w, ALL_TRAFFIC)))},
        present=sorted(total.present),
    )
    if segmented:
        for seg, part in sorted(parts.items()):
            if seg != ALL_TRAFFIC and seg and part.rows >= min_segment_rows:
                window.segments[seg] = SegmentProfiles(
                    part.rows, part.columns, latency.get((w, seg))
                )
    return window, total


def decode_rows(rows: list[Any]) -> dict[str, Partial]:
    """Merged rows of one window (from Spark) as partials by segment key."""
    return {str(r["seg"]): Partial.from_bytes(bytes(r["payload"])) for r in rows}


# --- the whole job ------------------------------------------------------------------------


def resolve_engine(database_url: str | None, engine: sa.Engine | None) -> sa.Engine:
    """The database to write to: an engine, a URL, or the configured one (schema checked)."""
    if engine is not None:
        return engine
    from monitor.storage import migrate

    if database_url:
        from monitor.storage.embedded import to_sqlalchemy_url
        from monitor.storage.engine import get_engine

        engine = get_engine(to_sqlalchemy_url(database_url))
        migrate.check_schema(engine)
        return engine
    from monitor.storage.bootstrap import prepare_database

    return prepare_database()


def _epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def profile_windows(
    df: DataFrame,
    *,
    model: str,
    version: str,
    timestamp: str = "timestamp",
    prediction: str | None = "prediction",
    proba: str | None = None,
    id: str | None = None,
    segments: Sequence[str] | None = None,
    latency_ms: str | None = None,
    features: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    window: str | int | timedelta | None = None,
    database_url: str | None = None,
    engine: sa.Engine | None = None,
    settings: Settings | None = None,
    performance: bool = True,
    actuals: DataFrame | None = None,
    actual_id: str = "id",
    actual: str = "actual",
    actual_timestamp: str | None = None,
    on_window: Callable[[WindowReport], None] | None = None,
) -> ProfileReport:
    """Profile ``df``'s predictions on Spark and store them as completed windows of ``model``.

    Every window ``df`` has rows in is replaced whole: its profiles (all traffic and every
    segment with at least ``min_segment_rows`` rows), drift, data quality, multivariate
    drift, volume and latency results, and (``performance=True``) the performance job's
    results: estimated performance with the baseline's estimator, realised performance when
    ``actuals`` (a DataFrame of labels: ``actual_id``, ``actual``, ``actual_timestamp``) is
    given, label coverage and the operational rows. Running it again over the same data gives
    the same windows. See :mod:`monitor.spark` for the rule on windows the SDK also logs.

    Columns as in ``log_batch``: ``timestamp``, ``prediction``, ``proba`` (the positive
    class's probability, or a map class -> probability), ``id``, ``segments`` (column names),
    ``latency_ms``; the other columns are features (or only ``features``), minus ``ignore``.
    ``window`` must equal the model's window length (it sets it for a new model).
    """
    started = time.monotonic()
    settings = settings or get_settings()
    engine = resolve_engine(database_url, engine)
    columns = fr.Columns(
        timestamp=timestamp,
        prediction=prediction,
        proba=proba,
        id=id,
        segments=tuple(segments or ()),
        latency_ms=latency_ms,
        features=tuple(features) if features is not None else None,
        ignore=tuple(ignore or ()),
    )
    feature_names = fr.check_columns(df, columns)
    with engine.begin() as conn:
        key = register_model(conn, model, version, parse_window(window))
        training = load_training(conn, key.model_id, key.version_id)
        rows_spec = load_row_sample(conn, training) if training is not None else None
    plan, numeric, categorical = build_plan(
        training,
        rows_spec,
        feature_names,
        window_seconds=key.window_seconds,
        segmented=bool(columns.segments),
    )
    prepared = fr.prepare(
        df,
        columns,
        window_seconds=key.window_seconds,
        numeric=numeric,
        categorical=categorical,
        extra=plan.extra,
        positive=key.positive,
    )
    report = ProfileReport(model=model, version=version)
    latency = latency_stage(prepared) if columns.latency_ms else {}
    for w, rows in iterate_windows(profile_stage(prepared, plan)):
        if w == NO_WINDOW:
            report.rows_without_time = sum(int(r["rows"]) for r in rows)
            log.warning("%d rows have no timestamp: not counted", report.rows_without_time)
            continue
        with engine.begin() as conn:
            stored = store_window(conn, key, w, decode_rows(rows), plan, latency, settings)
        report.windows.append(stored)
        if on_window is not None:
            on_window(stored)
    if performance and report.windows:
        from monitor.spark.performance import performance_windows

        report.performance_windows = performance_windows(
            df,
            columns,
            key,
            [w.window_start for w in report.windows],
            engine=engine,
            settings=settings,
            actuals=actuals,
            actual_columns=(actual_id, actual, actual_timestamp),
        )
    report.seconds = time.monotonic() - started
    return report


def store_window(
    conn: sa.Connection,
    key: ModelKey,
    w: int,
    parts: dict[str, Partial],
    plan: Plan,
    latency: dict[tuple[int, str], tuple[float, float, float]],
    settings: Settings,
    reason: str | None = None,
) -> WindowReport:
    """Results of one window from its merged partials, stored as the window job stores them
    (in the caller's transaction, with a succeeded ``runs`` row marked ``spark``)."""
    start, end = _epoch(w), _epoch(w + key.window_seconds)
    profiles, total = window_profiles(w, parts, plan.segmented, settings.min_segment_rows, latency)
    ref = load_reference(conn, key.model_id, key.version_id, start)
    row_spec = load_row_sample(conn, ref) if ref is not None else None
    output: WindowOutput = results_from_profiles(profiles, ref)
    if ref is not None:
        output.results += multivariate_rows(
            row_sample_arrays(total, plan),
            ref,
            row_spec,
            window_seed(w),
            settings.multivariate_methods,
        )
    runs.record_completed(
        conn,
        model_id=key.model_id,
        job=v.JOB_WINDOW,
        window_start=start,
        window_end=end,
        rows=output.rows,
        reason=reason,
    )
    store(conn, key.model_id, start, end, output)
    drifted = sorted(
        r["column_name"]
        for r in output.results
        if r["family"] == v.DRIFT and r["segment"] == "" and r["drifted"]
    )
    return WindowReport(
        start, end, output.rows, len(profiles.segments) - 1, len(output.results), drifted
    )
