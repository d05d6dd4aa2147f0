"""A window's predictions joined to their labels, and the sweep that notices labels landing.

Labels (``actuals``, key ``(model_id, record_id)``) and predictions meet by ``record_id`` in
either order: a label that arrives first waits in ``actuals`` until its prediction is logged,
and a prediction waits for its label. The join happens when a window is computed, so whichever
came last, the window computed after it sees the pair.

Late labels make a window's realised performance stale, like late rows make its drift stale.
:func:`mark_stale_for_new_labels` finds the windows whose predictions got a label after their
performance run started: new labels come from the ``(model_id, received_at)`` index and are
hash-joined to the predictions of the label horizon through the predictions' primary key
(``model_id, event_ts, record_id`` -- an index-only scan), once per sweep interval, only when
labels did arrive.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from numpy.typing import NDArray
from pyarrow import csv as pacsv

from monitor.jobs.reader import Coded, _score_expression, _segment_codes
from monitor.storage.vocabulary import JOB_PERFORMANCE

log = logging.getLogger(__name__)

STALE_REASON = "late labels"
RECOMPUTED_REASON = "window recomputed"
CLOCK_MARGIN_SECONDS = 10
"""Labels received this long before a run started still count as new (slow ingest commits)."""


@dataclass
class LabelledWindow:
    """The rows of one window with their labels (NaN / None where no label yet)."""

    n: int
    record_ids: list[str]
    event_ts: NDArray[np.float64]  # epoch seconds
    prediction_num: NDArray[np.float64]
    prediction_cat: list[str | None]
    score: NDArray[np.float64]
    proba: list[str | None]  # comma-separated class probabilities (multiclass)
    latency: NDArray[np.float64]
    versions: NDArray[np.int32]
    segments: Coded
    actual_num: NDArray[np.float64]
    actual_cat: list[str | None]
    label_ts: NDArray[np.float64]  # epoch seconds of the label's own timestamp; NaN if none
    duplicates: int = 0

    @property
    def labelled(self) -> NDArray[np.bool_]:
        return np.isfinite(self.label_ts)

    def segment_masks(self, min_rows: int) -> list[tuple[str, NDArray[np.bool_]]]:
        bins = np.bincount(
            self.segments.codes[self.segments.codes >= 0], minlength=len(self.segments.labels)
        )
        return [
            (label, self.segments.codes == i)
            for i, (label, count) in enumerate(
                zip(self.segments.labels, bins.tolist(), strict=True)
            )
            if label and count >= min_rows
        ]


class _CopyStream(io.RawIOBase):
    """A file object over COPY TO STDOUT blocks, so pyarrow parses while Postgres streams."""

    def __init__(self, blocks: Iterator[Any]) -> None:
        self._blocks = blocks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = bytes(next(self._blocks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def _code(column: pa.ChunkedArray) -> Coded:
    encoded = pc.dictionary_encode(column.combine_chunks() if column.num_chunks else column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return Coded(
        codes=encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32),
        labels=[str(v) for v in encoded.dictionary.to_pylist()],
    )


def _floats(column: pa.ChunkedArray) -> NDArray[np.float64]:
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


_COLUMNS: list[tuple[str, str, pa.DataType]] = [
    ("record_id", "p.record_id", pa.string()),
    ("ts", "extract(epoch FROM p.event_ts)", pa.float64()),
    ("prediction_num", "p.prediction_num", pa.float64()),
    ("prediction_cat", "p.prediction_cat", pa.string()),
    ("score", "{score}", pa.float64()),
    ("proba", "array_to_string(p.proba, ',')", pa.string()),
    ("latency", "p.latency_ms", pa.float64()),
    ("segment", "p.segment::text", pa.string()),
    ("version", "p.version_id", pa.int32()),
    ("actual_num", "a.actual_num", pa.float64()),
    ("actual_cat", "a.actual_cat", pa.string()),
    ("label_ts", "extract(epoch FROM a.event_ts)", pa.float64()),
]


def read_labelled_window(
    conn: psycopg.Connection[Any], model_id: int, start: datetime, end: datetime
) -> LabelledWindow:
    """One COPY of the window's predictions LEFT JOINed to their labels, parsed column-wise.

    CSV through pyarrow's C++ reader: the record ids and label texts a join needs are text, and
    no Python runs per row.

    A record id logged twice in the window (a retried request with a new timestamp) counts once,
    at its first timestamp; how many were dropped is kept in ``duplicates``.
    """
    # the expression names proba and version_id unqualified: only predictions has them
    score = _score_expression(conn, model_id) or "NULL::float8"
    select = ", ".join(expr.format(score=score) for _, expr, _ in _COLUMNS)
    sql = (
        f"COPY (SELECT {select} FROM predictions p LEFT JOIN actuals a"
        f" ON a.model_id = p.model_id AND a.record_id = p.record_id"
        f" WHERE p.model_id = {int(model_id)} AND p.event_ts >= '{start.isoformat()}'"
        f" AND p.event_ts < '{end.isoformat()}' ORDER BY p.event_ts) TO STDOUT (FORMAT CSV)"
    )
    names = [name for name, _, _ in _COLUMNS]
    with conn.cursor() as cur, cur.copy(sql) as copy:
        blocks = iter(copy)
        head = next(blocks, None)
        if head is None:  # an empty window (pyarrow refuses an empty CSV stream)
            return _empty_window()
        table = pacsv.open_csv(
            io.BufferedReader(_CopyStream(chain([head], blocks)), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: typ for name, _, typ in _COLUMNS},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        ).read_all()
    ids = [str(x) for x in table.column("record_id").to_pylist()]
    _, first = np.unique(np.array(ids, dtype=object), return_index=True)
    keep = np.sort(first)
    duplicates = len(ids) - len(keep)
    if duplicates:
        table = table.take(pa.array(keep))
        ids = [ids[i] for i in keep]
    return LabelledWindow(
        n=table.num_rows,
        record_ids=ids,
        event_ts=_floats(table.column("ts")),
        prediction_num=_floats(table.column("prediction_num")),
        prediction_cat=table.column("prediction_cat").to_pylist(),
        score=_floats(table.column("score")),
        proba=table.column("proba").to_pylist(),
        latency=_floats(table.column("latency")),
        versions=table.column("version").to_numpy(zero_copy_only=False).astype(np.int32),
        segments=_segment_codes(_code(table.column("segment"))),
        actual_num=_floats(table.column("actual_num")),
        actual_cat=table.column("actual_cat").to_pylist(),
        label_ts=_floats(table.column("label_ts")),
        duplicates=duplicates,
    )


def _empty_window() -> LabelledWindow:
    none = np.empty(0, dtype=np.float64)
    return LabelledWindow(
        n=0,
        record_ids=[],
        event_ts=none,
        prediction_num=none,
        prediction_cat=[],
        score=none,
        proba=[],
        latency=none,
        versions=np.empty(0, dtype=np.int32),
        segments=Coded(codes=np.empty(0, dtype=np.int32), labels=[]),
        actual_num=none,
        actual_cat=[],
        label_ts=none,
    )


def _hash_joins_only(conn: sa.Connection) -> None:
    """Keep the planner off nested loops for the label joins (transaction-local).

    The predictions key is ``(model_id, event_ts, record_id)``: a nested loop probing it by
    record id scans the whole label horizon once per label (seen: 14 s per window on the demo
    with stale statistics). A hash join scans it once, whatever the statistics say.
    """
    conn.execute(sa.text("SET LOCAL enable_nestloop = off"))


def unmatched_labels(
    conn: sa.Connection, model_id: int, start: datetime, end: datetime, horizon_days: int
) -> int:
    """Labels received during the window whose record id matches no prediction (yet).

    Counted, never dropped: such a label stays in ``actuals`` and joins its prediction if that
    is logged later (a label can arrive first). Predictions are looked for from the label
    horizon before the window on. Call in a transaction of its own (it changes planner
    settings for the transaction).
    """
    if (
        conn.execute(
            sa.text(
                "SELECT 1 FROM actuals WHERE model_id = :m AND received_at >= :s"
                " AND received_at < :e LIMIT 1"
            ),
            {"m": model_id, "s": start, "e": end},
        ).first()
        is None
    ):
        return 0
    _hash_joins_only(conn)
    return int(
        conn.execute(
            sa.text(
                "SELECT count(*) FROM actuals a WHERE a.model_id = :m AND a.received_at >= :s"
                " AND a.received_at < :e AND NOT EXISTS (SELECT 1 FROM predictions p"
                " WHERE p.model_id = :m AND p.record_id = a.record_id"
                " AND p.event_ts >= CAST(:s AS timestamptz) - make_interval(days => :h))"
            ),
            {"m": model_id, "s": start, "e": end, "h": horizon_days},
        ).scalar_one()
    )


def create_performance_runs(conn: sa.Connection) -> int:
    """A performance run for every window the window job has finished (or given up on).

    Following the window job means its results (volume, drift) are there when performance
    reads their history, and a window is not computed twice on its first pass. Windows stored
    by Spark get their performance run from Spark, never from here.
    """
    result = conn.execute(
        sa.text(
            "INSERT INTO runs (model_id, job, window_start, window_end, status, reason)"
            " SELECT w.model_id, :job, w.window_start, w.window_end, 'pending', NULL FROM runs w"
            " WHERE w.job = 'window' AND w.status IN ('succeeded', 'failed')"
            " AND w.source = 'predictions'"
            " AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.model_id = w.model_id"
            " AND p.job = :job AND p.window_start = w.window_start)"
            " ON CONFLICT DO NOTHING"
        ),
        {"job": JOB_PERFORMANCE},
    )
    return int(result.rowcount or 0)


def mark_stale_for_recomputed_windows(conn: sa.Connection) -> int:
    """Performance runs whose window was recomputed (late rows) after they started."""
    result = conn.execute(
        sa.text(
            "UPDATE runs p SET status = 'stale', reason = :reason FROM runs w"
            " WHERE p.job = :job AND w.job = 'window' AND w.model_id = p.model_id"
            " AND w.window_start = p.window_start AND p.status = 'succeeded'"
            " AND w.source = 'predictions'"
            " AND w.status = 'succeeded' AND w.finished_at > p.started_at"
        ),
        {"job": JOB_PERFORMANCE, "reason": RECOMPUTED_REASON},
    )
    return int(result.rowcount or 0)


def mark_stale_for_new_labels(
    conn: sa.Connection, model_id: int, since: datetime, horizon_days: int
) -> int:
    """Mark stale the performance runs of windows whose predictions got labels after the run.

    ``since`` bounds the labels looked at (received after it); the exact test is per run: a
    label received after the run started (minus a small clock margin) makes it stale.
    """
    _hash_joins_only(conn)
    result = conn.execute(
        sa.text(
            """
            WITH new AS (
              SELECT record_id, received_at FROM actuals
              WHERE model_id = :m AND received_at > :since
            ), hit AS (
              SELECT to_timestamp(floor(extract(epoch FROM p.event_ts) / md.window_seconds)
                                  * md.window_seconds) AS window_start,
                     max(new.received_at) AS received
              FROM new JOIN predictions p ON p.model_id = :m AND p.record_id = new.record_id
              JOIN models md ON md.id = :m
              WHERE p.event_ts >= now() - make_interval(days => :h)
              GROUP BY 1
            )
            UPDATE runs r SET status = 'stale', reason = :reason FROM hit
            WHERE r.model_id = :m AND r.job = :job AND r.window_start = hit.window_start
              AND r.status IN ('succeeded', 'running')
              AND hit.received > r.started_at - make_interval(secs => :margin)
            """
        ),
        {
            "m": model_id,
            "since": since,
            "h": horizon_days,
            "job": JOB_PERFORMANCE,
            "reason": STALE_REASON,
            "margin": CLOCK_MARGIN_SECONDS,
        },
    )
    return int(result.rowcount or 0)


def sweep_labels(conn: sa.Connection, state: dict[str, Any], horizon_days: int) -> int:
    """For each model with labels received since the last sweep, mark affected windows stale.

    ``state`` (the worker's memory between ticks) keeps each model's last sweep time; a fresh
    worker starts from the oldest performance run still inside the label horizon, so labels
    that landed while no worker ran are not missed.
    """
    marked = 0
    models = conn.execute(
        sa.text(
            "SELECT m.id, (SELECT max(received_at) FROM actuals a WHERE a.model_id = m.id),"
            " (SELECT min(started_at) FROM runs r WHERE r.model_id = m.id AND r.job = :job"
            "  AND r.status = 'succeeded'"
            "  AND r.window_end > now() - make_interval(days => :h)), now()"
            " FROM models m"
        ),
        {"job": JOB_PERFORMANCE, "h": horizon_days},
    ).all()
    seen: dict[int, datetime] = state.setdefault("label_sweep", {})
    for model_id, latest, oldest_run, now in models:
        if latest is None or oldest_run is None:
            continue
        since = seen.get(model_id, oldest_run)
        if latest <= since:
            continue
        marked += mark_stale_for_new_labels(
            conn, model_id, since - timedelta(seconds=CLOCK_MARGIN_SECONDS), horizon_days
        )
        seen[model_id] = min(latest, now)
    return marked
