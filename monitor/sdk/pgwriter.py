"""Write records into Postgres fast and idempotently, with psycopg only (no SQLAlchemy).

Shared by the SDK's Postgres exporter, the HTTP collector and bulk loaders. Rows are COPYed in
binary into a temporary staging table and moved with ``INSERT ... ON CONFLICT DO NOTHING``, so a
replayed batch never duplicates rows. Features go into typed arrays by the slot the model's
append-only feature schema gives them; a value whose type does not match its feature's kind is
kept in ``extra`` and counted as a type error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from monitor.sdk.records import (
    ActualRecord,
    CleanCounts,
    PredictionRecord,
    WriteResult,
    as_float,
    as_text,
    feature_kind,
)

PREDICTION_COLUMNS = (
    "model_id",
    "event_ts",
    "record_id",
    "version_id",
    "num",
    "cat",
    "extra",
    "prediction_num",
    "prediction_cat",
    "proba",
    "latency_ms",
    "segment",
)
PREDICTION_TYPES = (
    "int4",
    "timestamptz",
    "text",
    "int4",
    "float8[]",
    "text[]",
    "jsonb",
    "float8",
    "text",
    "float8[]",
    "float4",
    "jsonb",
)
ACTUAL_COLUMNS = ("model_id", "record_id", "event_ts", "actual_num", "actual_cat")
ACTUAL_TYPES = ("int4", "text", "timestamptz", "float8", "text")


class FeatureSchema:
    """A model's feature slots: name -> (kind, position), extended append-only under a lock."""

    def __init__(self, model_id: int) -> None:
        self.model_id = model_id
        self.slots: dict[str, tuple[str, int]] = {}
        self.width = {"numeric": 0, "categorical": 0}

    def load(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(
            "SELECT name, kind, position FROM features WHERE model_id = %s", (self.model_id,)
        ).fetchall()
        self.slots = {name: (kind, pos) for name, kind, pos in rows}
        self.width = {"numeric": 0, "categorical": 0}
        for kind, pos in self.slots.values():
            self.width[kind] = max(self.width[kind], pos + 1)

    def extend(self, conn: psycopg.Connection[Any], new: Mapping[str, str]) -> None:
        """Append features never seen before; concurrent writers agree through an advisory lock."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (7_301, self.model_id))
            self.load(conn)
            for name, kind in new.items():
                if name in self.slots:
                    continue
                position = self.width[kind]
                conn.execute(
                    "INSERT INTO features (model_id, name, kind, position) VALUES (%s, %s, %s, %s)",
                    (self.model_id, name, kind, position),
                )
                self.slots[name] = (kind, position)
                self.width[kind] = position + 1


class PostgresWriter:
    """Registers models and versions on first sight and writes batches of records."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        # Each write is its own transaction (the staging table empties on commit); a caller's
        # open transaction would turn them into savepoints, so the writer needs autocommit.
        if not conn.autocommit:
            raise ValueError("PostgresWriter needs a connection with autocommit=True")
        self.conn = conn
        self._models: dict[str, int] = {}
        self._versions: dict[tuple[int, str], tuple[int, list[str] | None]] = {}
        self._schemas: dict[int, FeatureSchema] = {}

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

    def _classes(self, model_id: int, version: str, proba: Mapping[Any, Any]) -> list[str]:
        version_id, classes = self._versions[(model_id, version)]
        if classes is None:
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
            schema = FeatureSchema(model_id)
            schema.load(self.conn)
            self._schemas[model_id] = schema
        return self._schemas[model_id]

    # --- predictions ----------------------------------------------------------------------

    def write_predictions(
        self, model: str, version: str, records: Sequence[PredictionRecord]
    ) -> WriteResult:
        model_id = self.model_id(model)
        version_id = self.version_id(model_id, version)
        schema = self.schema(model_id)
        new = _new_features(records, schema.slots)
        if new:
            schema.extend(self.conn, new)
        result = WriteResult()
        rows = [
            self._prediction_row(model_id, version, version_id, schema, r, result.counts)
            for r in records
        ]
        result.inserted = self._copy_upsert(
            "predictions", PREDICTION_COLUMNS, PREDICTION_TYPES, rows
        )
        result.duplicates = len(rows) - result.inserted
        return result

    def _prediction_row(
        self,
        model_id: int,
        version: str,
        version_id: int,
        schema: FeatureSchema,
        rec: PredictionRecord,
        counts: CleanCounts,
    ) -> tuple[Any, ...]:
        num: list[float | None] = [None] * schema.width["numeric"]
        cat: list[str | None] = [None] * schema.width["categorical"]
        extra: dict[str, Any] = {}
        for name, value in rec.features.items():
            slot = schema.slots.get(name)
            if slot is None or value is None:
                continue
            kind, pos = slot
            actual = feature_kind(value)
            if kind == "numeric":
                if actual == "numeric":
                    num[pos] = as_float(value, counts)
                else:
                    counts.type_errors += 1
                    extra[name] = as_text(value, counts)
            else:
                cat[pos] = as_text(value, counts)
        pred_num = pred_cat = None
        if feature_kind(rec.prediction) == "numeric":
            pred_num = as_float(rec.prediction, counts)
        else:
            pred_cat = as_text(rec.prediction, counts)
        proba = self._proba(model_id, version, rec.proba, counts)
        latency = as_float(rec.latency_ms, counts)
        segment = (
            {str(k): as_text(v, counts) for k, v in rec.segment.items()} if rec.segment else None
        )
        return (
            model_id,
            rec.event_ts,
            str(rec.record_id),
            version_id,
            num or None,
            cat or None,
            Jsonb(extra) if extra else None,
            pred_num,
            pred_cat,
            proba,
            latency,
            Jsonb(segment) if segment else None,
        )

    def _proba(
        self, model_id: int, version: str, proba: Any, counts: CleanCounts
    ) -> list[float | None] | None:
        if proba is None:
            return None
        if isinstance(proba, Mapping):
            classes = self._classes(model_id, version, proba)
            by_name = {str(k): v for k, v in proba.items()}
            return [as_float(by_name.get(c), counts) for c in classes]
        if isinstance(proba, str | bytes):
            counts.type_errors += 1
            return None
        if isinstance(proba, Iterable):
            return [as_float(p, counts) for p in proba]
        return [as_float(proba, counts)]

    # --- actuals --------------------------------------------------------------------------

    def write_actuals(self, model: str, records: Sequence[ActualRecord]) -> WriteResult:
        """Labels: the latest value for a record id wins (corrections are allowed)."""
        model_id = self.model_id(model)
        result = WriteResult()
        rows = []
        for rec in records:
            is_num = feature_kind(rec.actual) == "numeric"
            rows.append(
                (
                    model_id,
                    str(rec.record_id),
                    rec.event_ts,
                    as_float(rec.actual, result.counts) if is_num else None,
                    None if is_num else as_text(rec.actual, result.counts),
                )
            )
        result.inserted = self._copy_upsert(
            "actuals",
            ACTUAL_COLUMNS,
            ACTUAL_TYPES,
            _last_per_key(rows),
            on_conflict="(model_id, record_id) DO UPDATE SET event_ts = EXCLUDED.event_ts, "
            "actual_num = EXCLUDED.actual_num, actual_cat = EXCLUDED.actual_cat, "
            "received_at = now()",
        )
        return result

    # --- COPY -----------------------------------------------------------------------------

    def _copy_upsert(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        on_conflict: str = "DO NOTHING",
    ) -> int:
        if not rows:
            return 0
        stage = f"_stage_{table}"
        cols = ", ".join(columns)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY {stage} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(list(types))
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT {on_conflict}"
            )
            return int(cur.rowcount)


def _new_features(records: Iterable[PredictionRecord], known: Mapping[str, Any]) -> dict[str, str]:
    new: dict[str, str] = {}
    for rec in records:
        for name, value in rec.features.items():
            if name not in known and name not in new:
                kind = feature_kind(value)
                if kind is not None:
                    new[name] = kind
    return new


def _last_per_key(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """ON CONFLICT DO UPDATE refuses two rows with one key in a statement: keep the last."""
    by_key = {(r[0], r[1]): r for r in rows}
    return list(by_key.values())
