"""Write records into Postgres fast and idempotently, with psycopg only (no SQLAlchemy).

Shared by the SDK's Postgres exporter, the HTTP collector and bulk loaders.

Two write paths:

- **Fast** (:meth:`PostgresWriter._stream_predictions`): records are encoded column-wise by the
  fast encoder (:mod:`~monitor.sdk.postgres.fast`, with its C twin) and COPYed in binary straight
  into ``predictions`` (its day partition when the batch has one day), chunk by chunk, so
  Postgres parses while Python encodes. Records the fast encoder declines are encoded by the
  careful encoder inside the same COPY; records even that refuses become dead letters.
- **Careful** (:meth:`PostgresWriter._write`): when the COPY fails (a duplicate of a replayed
  record, a value the database refuses), every record is cleaned by the careful encoder
  (:mod:`~monitor.sdk.postgres.careful`), COPYed into a temporary staging table and inserted
  with ``ON CONFLICT DO NOTHING`` (a replay never duplicates rows); a batch the database still
  refuses is bisected until the bad records are alone, and those become dead letters with the
  error.

Registration (models, versions, a version's classes, feature names up to the model's cap)
happens before a COPY opens. Connection problems (:class:`psycopg.OperationalError`) are not the
data's fault and propagate to the caller, who retries or spools.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.copy import LibpqWriter
from psycopg.types.json import Jsonb

from monitor.sdk.postgres.careful import dead_letter, prediction_row, write_rows
from monitor.sdk.postgres.copyio import (
    PREDICTION_COLUMNS,
    SEND_BUFFER,
    grow_send_buffer,
    time_span,
)
from monitor.sdk.postgres.encode import HEADER, TRAILER, SegmentCache, TextCache, int4
from monitor.sdk.postgres.fast import Columns, encode_rows
from monitor.sdk.postgres.lanes import SecondLane, chunk_order, finish_during
from monitor.sdk.postgres.schema import DEFAULT_MAX_FEATURES, FeatureSchema, NeedsDatabase
from monitor.sdk.records import (
    MAX_RECORD_BYTES,
    ActualRecord,
    PredictionRecord,
    WriteResult,
    as_datetime,
    as_float,
    as_text,
    feature_kind,
    format_id,
    record_to_wire,
)
from monitor.sdk.rowblock import RowBlock

__all__ = [
    "PREDICTION_COLUMNS",
    "UNIFORM_CHUNK",
    "FeatureSchema",
    "NeedsDatabase",
    "PostgresWriter",
    "record_to_wire",
]

log = logging.getLogger(__name__)

DAY_NS = 86_400 * 10**9
EPOCH_DAY = date(1970, 1, 1)
DAYS_REFRESH = 60.0  # seconds between looks for new day partitions
LATE_BATCH_TRIGGER = "predictions_late_batch"  # day partitions' (migration ingest_0002)
RETRYABLE = (psycopg.OperationalError, psycopg.InterfaceError)
UNIFORM_CHUNK = 1024  # records encoded column-wise at a time (then sent while we go on)
# A bulk block of at least this many rows uses the writer's second connection, if it has one.
LANE_MIN_ROWS = 4 * UNIFORM_CHUNK


class PostgresWriter:
    """Registers models and versions on first sight and writes batches of records."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        synchronous_commit: bool = True,
        max_record_bytes: int = MAX_RECORD_BYTES,
        connect_lane: Callable[[], psycopg.Connection[Any]] | None = None,
        max_features: int | None = None,
    ) -> None:
        """``connect_lane`` opens the second connection of a bulk block (see
        :meth:`_stream_predictions`); None: one connection for everything. ``max_features``:
        the feature cap of each model written (None: ``DEFAULT_MAX_FEATURES``)."""
        # Each write is its own transaction (the staging table empties on commit); a caller's
        # open transaction would turn them into savepoints, so the writer needs autocommit.
        if not conn.autocommit:
            raise ValueError("PostgresWriter needs a connection with autocommit=True")
        self.conn = conn
        self.synchronous_commit = synchronous_commit
        self._session(conn)
        self._lane = SecondLane(connect_lane, self._session) if connect_lane else None
        self._models: dict[str, int] = {}
        self._versions: dict[tuple[int, str], tuple[int, list[str] | None]] = {}
        self._schemas: dict[int, FeatureSchema] = {}
        self._texts = TextCache()
        self._segments = SegmentCache()
        self._frozen = False
        self.max_record_bytes = max_record_bytes
        self.max_features = max_features or DEFAULT_MAX_FEATURES
        self._days: frozenset[str] = frozenset()
        self._days_at = -DAYS_REFRESH

    def _session(self, conn: psycopg.Connection[Any]) -> None:
        grow_send_buffer(conn)
        if not self.synchronous_commit:
            # Commits return before their WAL reaches disk: faster small batches, but a database
            # crash may lose the last ~0.6 s of acknowledged writes.
            conn.execute("SET synchronous_commit = off")

    def lane(self) -> psycopg.Connection[Any] | None:
        """The second connection for bulk blocks, or None (see :class:`~.lanes.SecondLane`)."""
        return self._lane.get() if self._lane is not None else None

    def close_lane(self) -> None:
        if self._lane is not None:
            self._lane.close()

    def abandon_lane(self) -> psycopg.Connection[Any] | None:
        """Forget the second connection without closing it (after ``fork``: it is the
        parent's); returns it so that the caller can keep it alive."""
        return self._lane.abandon() if self._lane is not None else None

    @property
    def lane_connection(self) -> psycopg.Connection[Any] | None:
        """The second connection if it is open (the watchdog guards it too)."""
        return self._lane.conn if self._lane is not None else None

    # --- routing --------------------------------------------------------------------------

    def _target(self, records: Sequence[Any]) -> str:
        """The table to COPY a batch into: its day partition when every row has that day.

        COPY into the partitioned parent routes each row (measured ~4-8 us/row of server time
        on top of ~9-11 for the partition itself); a writer that knows the day skips that. Only
        partitions that carry the batch late-data trigger (migration ingest_0002,
        ``create_day``) are targeted, and the COPY declares its batch to it (``_declare``), so
        a direct write still marks computed windows stale. Anything else (rows of several days,
        a day without its partition, datetimes) goes to the parent; a partition dropped or
        detached meanwhile makes the COPY fail and the batch take the careful path.
        """
        span = time_span(records)
        if span is None:
            return "predictions"
        lo, hi = span
        if lo // DAY_NS != hi // DAY_NS:
            return "predictions"
        name = f"predictions_p{EPOCH_DAY + timedelta(days=lo // DAY_NS):%Y%m%d}"
        if name not in self._days:
            now = time.monotonic()
            if now - self._days_at < DAYS_REFRESH:
                return "predictions"
            self._days_at = now
            rows = self.conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname = %s "
                "WHERE i.inhparent = 'predictions'::regclass",
                (LATE_BATCH_TRIGGER,),
            ).fetchall()
            self._days = frozenset(r[0] for r in rows)
            if name not in self._days:
                return "predictions"
        return name

    # --- registration ---------------------------------------------------------------------

    def model_id(self, name: str) -> int:
        if name not in self._models:
            with self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO models (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
                )
                row = self.conn.execute("SELECT id FROM models WHERE name = %s", (name,)).fetchone()
            assert row is not None
            self._models[name] = int(row[0])
        return self._models[name]

    def version_id(self, model_id: int, version: str) -> int:
        key = (model_id, version)
        if key not in self._versions:
            with self.conn.transaction():
                self.conn.execute(
                    "INSERT INTO model_versions (model_id, version) VALUES (%s, %s) "
                    "ON CONFLICT (model_id, version) DO NOTHING",
                    (model_id, version),
                )
                row = self.conn.execute(
                    "SELECT id, classes FROM model_versions WHERE model_id = %s AND version = %s",
                    key,
                ).fetchone()
            assert row is not None
            self._versions[key] = (int(row[0]), row[1])
        return self._versions[key][0]

    def _classes(
        self, model_id: int, version: str, proba: Mapping[Any, Any]
    ) -> list[str] | None:
        """The version's classes (the first proba mapping written registers its keys)."""
        version_id, classes = self._versions[(model_id, version)]
        if classes is None:
            if not proba:
                return None
            if self._frozen:
                raise NeedsDatabase
            wanted = sorted(str(k) for k in proba)
            with self.conn.transaction():
                row = self.conn.execute(
                    "UPDATE model_versions SET classes = COALESCE(classes, %s) WHERE id = %s "
                    "RETURNING classes",
                    (wanted, version_id),
                ).fetchone()
            classes = list(row[0]) if row else wanted
            self._versions[(model_id, version)] = (version_id, classes)
        return classes

    def schema(self, model_id: int) -> FeatureSchema:
        if model_id not in self._schemas:
            schema = FeatureSchema(model_id, self.max_features)
            schema.load(self.conn)
            self._schemas[model_id] = schema
        return self._schemas[model_id]

    # --- predictions ----------------------------------------------------------------------

    def write_predictions(
        self, model: str, version: str, records: Sequence[PredictionRecord | tuple[Any, ...]]
    ) -> WriteResult:
        model_id = self.model_id(model)
        version_id = self.version_id(model_id, version)
        schema = self.schema(model_id)
        fixed = (int4(model_id), int4(version_id))
        for attempt in (1, 2):
            try:
                target = self._target(records)
                return self._stream_predictions(model_id, version, fixed, schema, records, target)
            except NeedsDatabase:  # new names or classes: register them, then stream again
                if attempt == 2:
                    break
                self._register(model_id, version, schema, records)
            except RETRYABLE:
                raise
            except Exception as exc:  # a duplicate (replay) or a refused row: the careful path
                self._days_at = -DAYS_REFRESH  # maybe a partition went away: look again
                self._days = frozenset()
                if not isinstance(exc, pg_errors.UniqueViolation):
                    log.debug("direct COPY refused (%s); writing carefully", exc)
                break
        return self._write_carefully(model_id, version, fixed, schema, records)

    def _register(
        self, model_id: int, version: str, schema: FeatureSchema, records: Sequence[Any]
    ) -> None:
        """Everything that needs a query (new feature names, the version's classes), before a
        COPY opens. A name the database refuses is remembered, its records refused later."""
        schema.register(self.conn, records)
        if self._versions[(model_id, version)][1] is None:
            for rec in records:
                proba = rec[4]
                if isinstance(proba, Mapping) and proba:
                    self._classes(model_id, version, proba)
                    break

    def _write_carefully(
        self,
        model_id: int,
        version: str,
        fixed: tuple[bytes, bytes],
        schema: FeatureSchema,
        records: Sequence[Any],
    ) -> WriteResult:
        """The careful path: clean every record, stage, insert what is new, bisect refusals."""
        self._register(model_id, version, schema, records)
        result = WriteResult()
        rows: list[bytes] = []
        kept: list[Any] = []
        for rec in records:
            try:
                row = self._prediction_row(model_id, version, fixed, schema, rec, result)
            except RETRYABLE:
                raise
            except Exception as exc:  # a record we cannot encode goes to dead letters
                dead_letter(self.conn, model_id, "prediction", rec, exc, result)
                continue
            if len(row) > self.max_record_bytes:
                result.too_large += 1
                continue
            rows.append(row)
            kept.append(rec)
        write_rows(self.conn, "predictions", rows, kept, model_id, result)
        return result

    def _stream_predictions(
        self,
        model_id: int,
        version: str,
        fixed: tuple[bytes, bytes],
        schema: FeatureSchema,
        records: Sequence[Any],
        target: str = "predictions",
    ) -> WriteResult:
        """The fast path: encode and send in chunks, so Postgres parses while Python encodes.

        A bulk block (``log_batch``) goes over two connections when the writer has a second
        one: each takes one half of the block, a chunk of each in turn
        (:func:`~.lanes.chunk_order`), so two server processes parse and index in parallel
        while Python encodes. With the C
        encoder, one server process is the bottleneck (about twice Python's time per row).
        The two transactions commit one after the other: if one fails after the other
        committed, the block is retried or spooled as a whole and the committed half comes
        back as duplicates, which the careful path skips (the primary key makes every write
        idempotent), so each row still lands once.
        """
        result = WriteResult()
        refused: list[tuple[Any, Exception]] = []
        inserted = 0
        sql = f"COPY {target} ({', '.join(PREDICTION_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        span = time_span(records) if target != "predictions" else None
        hook = records.while_committing if isinstance(records, RowBlock) else None
        conns = [self.conn]
        if hook is not None and len(records) >= LANE_MIN_ROWS:
            second = self.lane()
            if second is not None:
                conns.append(second)
        self._frozen = True
        try:
            with contextlib.ExitStack() as stack:
                copies = []
                for conn in conns:
                    stack.enter_context(conn.transaction())
                    cur = stack.enter_context(conn.cursor())
                    if span is not None:  # for the day partition's late-data trigger
                        batch = f"{model_id},{span[0] // 1000},{span[1] // 1000}"
                        cur.execute("SELECT set_config('monitor.ingest_batch', %s, true)", (batch,))
                    # Written from this thread into a large socket buffer (grow_send_buffer):
                    # the server parses one chunk while Python encodes the next.
                    writer = LibpqWriter(cur, flush_threshold=SEND_BUFFER)
                    copy = stack.enter_context(cur.copy(sql, writer=writer))
                    copy.write(HEADER)
                    copies.append(copy)
                for lane, begin in chunk_order(len(records), len(copies), UNIFORM_CHUNK):
                    chunk = records[begin : begin + UNIFORM_CHUNK]
                    rows = self._encode_chunk(
                        model_id, version, fixed, schema, chunk, result, refused
                    )
                    if rows:
                        copies[lane].write(b"".join(rows))
                        inserted += len(rows)
                for copy in copies:
                    copy.write(TRAILER)
                if hook is not None:  # log_batch reads its next rows while the server finishes
                    finish_during(stack.pop_all(), hook)
        finally:
            self._frozen = False
        result.inserted = inserted
        for rec, error in refused:
            dead_letter(self.conn, model_id, "prediction", rec, error, result)
        return result

    def _encode_chunk(
        self,
        model_id: int,
        version: str,
        fixed: tuple[bytes, bytes],
        schema: FeatureSchema,
        chunk: Sequence[Any],
        result: WriteResult,
        refused: list[tuple[Any, Exception]],
    ) -> list[bytes]:
        """A chunk's COPY tuples: the fast encoder's, and the careful encoder's for the records
        it declines. Records even that refuses go to ``refused`` (dead letters, once the COPY
        is done); too large ones are counted."""
        encoded = self._encode_fast(model_id, version, fixed, schema, chunk)
        rows: list[bytes] = []
        limit = self.max_record_bytes
        for i, row in enumerate(encoded):
            if row is None:
                rec = chunk[i]
                try:
                    row = self._prediction_row(model_id, version, fixed, schema, rec, result)
                except (NeedsDatabase, *RETRYABLE):
                    raise
                except Exception as exc:
                    refused.append((rec, exc))
                    continue
            if len(row) > limit:
                result.too_large += 1
                continue
            rows.append(row)
        return rows

    def _encode_fast(
        self,
        model_id: int,
        version: str,
        fixed: tuple[bytes, bytes],
        schema: FeatureSchema,
        chunk: Sequence[Any],
    ) -> list[bytes | None]:
        """The fast encoder's answer for a chunk (None: declined), by the plan of its first
        record's shape; all None when that shape has no fast plan."""
        if not chunk:
            return []
        if isinstance(chunk, RowBlock):  # log_batch's rows, read in place when uniform
            names = chunk.feature_names()
            plan = schema.fast_plan(names)
            columns = chunk.uniform(names) if plan is not None else None
            if plan is not None and columns is not None:
                preds, lats = columns
                block = Columns(chunk.rows, chunk.ids, chunk.times, preds, lats)
                return encode_rows(
                    block, plan, *fixed, self._texts, None, self._segments, n_keys=-1
                )
            chunk = list(chunk)  # records with their own features dicts
        first = chunk[0][2]
        plan = schema.fast_plan(tuple(first)) if type(first) is dict else None
        if plan is None:
            return [None] * len(chunk)
        classes = self._versions.get((model_id, version), (0, None))[1]
        return encode_rows(Columns.of(chunk), plan, *fixed, self._texts, classes, self._segments)

    def _prediction_row(
        self,
        model_id: int,
        version: str,
        fixed: tuple[bytes, bytes],
        schema: FeatureSchema,
        rec: Sequence[Any],
        result: WriteResult,
    ) -> bytes:
        """One COPY tuple by the careful encoder (:func:`~.careful.prediction_row`)."""

        def classes(proba: Mapping[Any, Any]) -> list[str] | None:
            return self._classes(model_id, version, proba)

        return prediction_row(schema, classes, fixed, rec, result)

    # --- actuals --------------------------------------------------------------------------

    def write_actuals(
        self, model: str, records: Sequence[ActualRecord | tuple[Any, ...]]
    ) -> WriteResult:
        """Labels: the latest value for a record id wins (corrections are allowed)."""
        model_id = self.model_id(model)
        result = WriteResult()
        by_key: dict[str, tuple[tuple[Any, ...], Any]] = {}
        for rec in records:
            try:
                actual = rec[2]
                is_num = feature_kind(actual) == "numeric"
                record_id = format_id(rec[0])
                row = (
                    model_id,
                    record_id,
                    as_datetime(rec[1]),
                    as_float(actual, result.counts) if is_num else None,
                    None if is_num else as_text(actual, result.counts),
                )
            except Exception as exc:
                dead_letter(self.conn, model_id, "actual", rec, exc, result)
                continue
            # ON CONFLICT DO UPDATE refuses two rows with one key in a statement: keep the last.
            by_key.pop(record_id, None)
            by_key[record_id] = (row, rec)
        rows = [r for r, _ in by_key.values()]
        kept = [k for _, k in by_key.values()]
        result.duplicates += len(records) - len(rows) - result.dead_letters
        write_rows(self.conn, "actuals", rows, kept, model_id, result)
        return result

    # --- reports --------------------------------------------------------------------------

    def report(self, model: str, instance: str, stats: Mapping[str, Any]) -> None:
        """Upsert an SDK instance's counters so the dashboard can show loss."""
        model_id = self.model_id(model)
        self.conn.execute(
            "INSERT INTO sdk_reports (model_id, instance, stats) VALUES (%s, %s, %s) "
            "ON CONFLICT (model_id, instance) DO UPDATE SET stats = EXCLUDED.stats, "
            "reported_at = now()",
            (model_id, instance, Jsonb(dict(stats))),
        )

    # --- dead letters ---------------------------------------------------------------------

    def dead_letter_record(self, model: str, kind: str, record: Any, exc: BaseException) -> None:
        """Keep a record the caller could not write, with the error (see the worker)."""
        dead_letter(self.conn, self.model_id(model), kind, record, exc, WriteResult())
