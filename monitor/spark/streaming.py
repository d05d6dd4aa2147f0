"""A Structured Streaming sink: micro-batches merged into open windows, closed after lateness.

::

    query = (
        spark.readStream.format("kafka")...load()          # or any streaming source
        .select(...)                                       # the columns profile_windows takes
        .writeStream.foreachBatch(WindowSink(model="fraud", version="2026-11", proba="p"))
        .option("checkpointLocation", "s3://.../checkpoints/fraud")
        .start()
    )

Each micro-batch is reduced on the executors to partial profiles per (window, segment)
(:mod:`monitor.spark.partials`, the batch path's code), and the driver, in ONE Postgres
transaction per micro-batch:

1. skips the batch if the stream already applied its id (Spark re-runs the last batch after a
   failure; ``stream_states.last_batch_id`` makes the sink exactly-once with a checkpoint);
2. merges the partials into the stream's open windows (``stream_windows``: the exact merge of
   every micro-batch so far, as mergeable profiles make it);
3. advances the event-time high-water mark (the latest event time seen) and closes every open
   window that ends at least ``allowed_lateness`` before it: its results are computed and
   stored exactly as :func:`~monitor.spark.windows.profile_windows` stores a window (runs
   ``source = 'spark'``, profiles, results), and its open row is deleted.

Rows of a window already closed are late: they are counted (``stream_states.late_rows`` and
the log), never merged into a window whose results are out, and never silently dropped.
Stream windows get drift, data quality, multivariate drift and volume; latency percentiles and
the performance job's results (CBPE ranks a window's scores; labels join by id) need a
window's rows together, which a stream never has, so they are left to ``profile_windows``
over the lake table the stream lands in. Raw rows never reach the driver or Postgres.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from monitor.jobs.reference import load_row_sample, load_training
from monitor.settings import Settings, get_settings
from monitor.spark import frame as fr
from monitor.spark.partials import (
    NO_WINDOW,
    Partial,
    Plan,
    decode_window,
    encode_window,
    merge_partials,
)
from monitor.spark.windows import (
    ModelKey,
    WindowReport,
    build_plan,
    decode_rows,
    parse_window,
    profile_stage,
    register_model,
    resolve_engine,
    store_window,
)

log = logging.getLogger(__name__)


class WindowSink:
    """``foreachBatch`` function of a streaming query: see the module docstring.

    Columns as in :func:`~monitor.spark.windows.profile_windows`. ``stream`` names this
    query's state (two queries feeding one model need two names); ``allowed_lateness`` defaults
    to the model's (``models.allowed_lateness_seconds``).
    """

    def __init__(
        self,
        *,
        model: str,
        version: str,
        stream: str = "default",
        timestamp: str = "timestamp",
        prediction: str | None = "prediction",
        proba: str | None = None,
        id: str | None = None,
        segments: Sequence[str] | None = None,
        features: Sequence[str] | None = None,
        ignore: Sequence[str] | None = None,
        window: str | int | timedelta | None = None,
        allowed_lateness: timedelta | int | None = None,
        database_url: str | None = None,
        engine: sa.Engine | None = None,
        settings: Settings | None = None,
        on_window: Callable[[WindowReport], None] | None = None,
    ) -> None:
        self.engine = resolve_engine(database_url, engine)
        self.settings = settings or get_settings()
        self.stream = stream
        self.on_window = on_window
        self.columns = fr.Columns(
            timestamp=timestamp,
            prediction=prediction,
            proba=proba,
            id=id,
            segments=tuple(segments or ()),
            features=tuple(features) if features is not None else None,
            ignore=tuple(ignore or ()),
        )
        with self.engine.begin() as conn:
            self.key: ModelKey = register_model(conn, model, version, parse_window(window))
            lateness = conn.execute(
                sa.text("SELECT allowed_lateness_seconds FROM models WHERE id = :m"),
                {"m": self.key.model_id},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO stream_states (model_id, stream) VALUES (:m, :s)"
                    " ON CONFLICT DO NOTHING"
                ),
                {"m": self.key.model_id, "s": stream},
            )
        if isinstance(allowed_lateness, timedelta):
            self.lateness = int(allowed_lateness.total_seconds())
        else:
            self.lateness = int(lateness if allowed_lateness is None else allowed_lateness)
        self._plan: Plan | None = None
        self._features: tuple[list[str], list[str]] = ([], [])

    def _plan_for(self, df: DataFrame) -> Plan:
        """The profiling plan (the baseline's edges), made from the first micro-batch's schema."""
        if self._plan is None:
            features = fr.check_columns(df, self.columns)
            with self.engine.connect() as conn:
                training = load_training(conn, self.key.model_id, self.key.version_id)
                rows = load_row_sample(conn, training) if training is not None else None
            self._plan, numeric, categorical = build_plan(
                training,
                rows,
                features,
                window_seconds=self.key.window_seconds,
                segmented=bool(self.columns.segments),
            )
            self._features = (numeric, categorical)
        return self._plan

    # --- one micro-batch ------------------------------------------------------------------

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        plan = self._plan_for(batch)
        numeric, categorical = self._features
        micros = fr.event_micros(batch, self.columns.timestamp)
        prepared = fr.prepare(
            batch,
            self.columns,
            window_seconds=self.key.window_seconds,
            numeric=numeric,
            categorical=categorical,
            extra=plan.extra,
            positive=self.key.positive,
            keep=[micros.alias(fr.EVENT_MICROS)],
        ).persist()
        try:
            latest = prepared.agg(F.max(fr.EVENT_MICROS)).first()
            merged = profile_stage(prepared.drop(fr.EVENT_MICROS), plan).collect()
        finally:
            prepared.unpersist()
        by_window: dict[int, list[Any]] = {}
        for row in merged:
            by_window.setdefault(int(row["w"]), []).append(row)
        high = latest[0] if latest is not None else None
        self.apply(batch_id, {w: decode_rows(rows) for w, rows in by_window.items()}, high)

    def apply(
        self, batch_id: int, windows: dict[int, dict[str, Partial]], latest_micros: int | None
    ) -> list[WindowReport]:
        """Merge one micro-batch's partials and close due windows, in one transaction."""
        closed: list[WindowReport] = []
        plan = self._plan
        assert plan is not None
        with self.engine.begin() as conn:
            state = conn.execute(
                sa.text(
                    "SELECT last_batch_id, high_water FROM stream_states"
                    " WHERE model_id = :m AND stream = :s FOR UPDATE"
                ),
                {"m": self.key.model_id, "s": self.stream},
            ).one()
            if state.last_batch_id is not None and batch_id <= state.last_batch_id:
                log.info("stream %s: batch %d already applied", self.stream, batch_id)
                return closed
            high = state.high_water
            late = 0
            untimed = windows.pop(NO_WINDOW, None)
            if untimed:
                late += sum(p.rows for p in untimed.values())
                log.warning("stream %s: %d rows without a timestamp", self.stream, late)
            for w, parts in sorted(windows.items()):
                end = datetime.fromtimestamp(w + self.key.window_seconds, UTC)
                if high is not None and end + timedelta(seconds=self.lateness) <= high:
                    rows = max(p.rows for p in parts.values())
                    late += rows
                    log.warning(
                        "stream %s: %d rows arrived after window %s closed: not counted",
                        self.stream,
                        rows,
                        datetime.fromtimestamp(w, UTC),
                    )
                    continue
                self._merge_open(conn, w, parts)
            if latest_micros is not None:
                seen = datetime.fromtimestamp(latest_micros / 1e6, UTC)
                high = seen if high is None or seen > high else high
            if high is not None:
                closed = self._close_due(conn, high - timedelta(seconds=self.lateness))
            conn.execute(
                sa.text(
                    "UPDATE stream_states SET last_batch_id = :b, high_water = :h,"
                    " late_rows = late_rows + :late, updated_at = now()"
                    " WHERE model_id = :m AND stream = :s"
                ),
                {"b": batch_id, "h": high, "late": late, "m": self.key.model_id, "s": self.stream},
            )
        for report in closed:
            if self.on_window is not None:
                self.on_window(report)
        return closed

    def _merge_open(self, conn: sa.Connection, w: int, parts: dict[str, Partial]) -> None:
        start = datetime.fromtimestamp(w, UTC)
        found = conn.execute(
            sa.text(
                "SELECT state FROM stream_windows WHERE model_id = :m AND stream = :s"
                " AND window_start = :w FOR UPDATE"
            ),
            {"m": self.key.model_id, "s": self.stream, "w": start},
        ).scalar()
        size = self._plan.row_sample_size if self._plan else 0
        if found is not None:
            before = decode_window(bytes(found))
            for seg, part in parts.items():
                before[seg] = (
                    merge_partials([before[seg], part], row_sample_size=size)
                    if seg in before
                    else part
                )
            parts = before
        rows = max(p.rows for p in parts.values())
        conn.execute(
            sa.text(
                "INSERT INTO stream_windows (model_id, stream, window_start, window_end, rows,"
                " state) VALUES (:m, :s, :w, :e, :n, :state) ON CONFLICT (model_id, stream,"
                " window_start) DO UPDATE SET rows = EXCLUDED.rows, state = EXCLUDED.state,"
                " updated_at = now()"
            ),
            {
                "m": self.key.model_id,
                "s": self.stream,
                "w": start,
                "e": start + timedelta(seconds=self.key.window_seconds),
                "n": rows,
                "state": encode_window(parts),
            },
        )

    def _close_due(self, conn: sa.Connection, until: datetime) -> list[WindowReport]:
        """Store every open window that ends at or before ``until``, and forget its state."""
        plan = self._plan
        assert plan is not None
        due = conn.execute(
            sa.text(
                "DELETE FROM stream_windows WHERE model_id = :m AND stream = :s"
                " AND window_end <= :u RETURNING window_start, state"
            ),
            {"m": self.key.model_id, "s": self.stream, "u": until},
        ).all()
        reports = []
        for start, state in sorted(due):
            reports.append(
                store_window(
                    conn,
                    self.key,
                    int(start.timestamp()),
                    decode_window(bytes(state)),
                    plan,
                    {},
                    self.settings,
                    reason=f"stream {self.stream}",
                )
            )
        return reports

    def close_all(self) -> list[WindowReport]:
        """Close every open window now (a finite stream or a backfill that has ended)."""
        if self._plan is None:
            return []
        with self.engine.begin() as conn:
            closed = self._close_due(conn, datetime.max.replace(tzinfo=UTC))
        for report in closed:
            if self.on_window is not None:
                self.on_window(report)
        return closed
