"""Load the demo data into a database through the same write path as the SDK and collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import sqlalchemy as sa

from monitor.demo.data import HEALTHY_MODEL, MODEL, DemoData
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import ActualRecord, PredictionRecord
from monitor.storage.engine import libpq_url
from monitor.storage.partitions import ensure_partitions

log = logging.getLogger(__name__)
BATCH = 5_000


MODELS = (MODEL, HEALTHY_MODEL)


def is_seeded(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(sa.text("SELECT 1 FROM models WHERE name = :n"), {"n": MODEL}).first()
        )


def remove(engine: sa.Engine) -> None:
    """Delete the demo models and everything logged for them."""
    with engine.begin() as conn:
        for name in MODELS:
            model_id = conn.execute(
                sa.text("SELECT id FROM models WHERE name = :n"), {"n": name}
            ).scalar()
            if model_id is None:
                continue
            for table in ("predictions", "actuals", "window_profiles", "dead_letters"):
                conn.execute(sa.text(f"DELETE FROM {table} WHERE model_id = :m"), {"m": model_id})
            conn.execute(sa.text("DELETE FROM models WHERE id = :m"), {"m": model_id})


def baseline_file(model: str) -> str:
    return f"{model}-baseline.parquet"


def _prediction_records(data: DemoData, frame: pd.DataFrame) -> Iterator[PredictionRecord]:
    features = frame[list(data.numeric) + list(data.categorical)].to_dict("records")
    for feats, row in zip(features, frame.itertuples(index=False), strict=True):
        yield PredictionRecord(
            record_id=row.id,
            event_ts=row.timestamp.to_pydatetime(),
            features=feats,
            prediction=int(row.prediction),
            proba={"0": 1 - row.proba, "1": row.proba},
            latency_ms=float(row.latency_ms),
            segment={"region": row.region},
        )


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(engine: sa.Engine, data: DemoData, home: Path) -> dict[str, int]:
    """Write the demo traffic and labels; save the baseline as a Parquet file under ``home``."""
    first = data.traffic["timestamp"].min().date() - timedelta(days=1)
    with engine.begin() as conn:
        ensure_partitions(conn, first=first, last=datetime.now(UTC).date() + timedelta(days=7))
    counts = {"predictions": 0, "actuals": 0}
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    with psycopg.connect(url, autocommit=True) as conn:
        writer = PostgresWriter(conn)
        model_id = writer.model_id(data.model)
        conn.execute(
            "UPDATE models SET task = 'binary', positive_class = '1', description = %s "
            "WHERE id = %s",
            (data.description, model_id),
        )
        for version, frame in data.traffic.groupby("version", sort=True):
            for batch in _batches(_prediction_records(data, frame), BATCH):
                counts["predictions"] += writer.write_predictions(
                    data.model, str(version), batch
                ).inserted
        # a version was deployed when its traffic began (staleness is measured from there)
        conn.execute(
            "UPDATE model_versions v SET created_at = first.ts FROM (SELECT version_id,"
            " min(event_ts) AS ts FROM predictions WHERE model_id = %s GROUP BY version_id)"
            " AS first WHERE v.id = first.version_id",
            (model_id,),
        )
        labels = (
            ActualRecord(r.id, r.timestamp.to_pydatetime(), int(r.actual))
            for r in data.actuals.itertuples(index=False)
        )
        for batch in _batches(labels, BATCH):
            counts["actuals"] += writer.write_actuals(data.model, batch).inserted
    home.mkdir(parents=True, exist_ok=True)
    data.baseline.to_parquet(home / baseline_file(data.model), index=False)
    log.info("demo seeded: %s", counts)
    return counts
