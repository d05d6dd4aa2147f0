"""WindowSink: a file stream (one file per micro-batch) merged into open windows and closed
after the allowed lateness; the closed windows equal the batch path's; late rows counted."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.settings import Settings
from monitor.spark import WindowSink, profile_windows
from tests.spark.data import HOUR, closed_hours_start, predictions, register, table

SETTINGS = Settings(min_segment_rows=500, multivariate_methods=["pca_reconstruction"])
COLUMNS: dict[str, Any] = {"proba": "proba", "id": "id", "segments": ["region"]}


def _files(start: Any, folder: Path) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Three micro-batches over hours 0-2, the last with 30 rows of hour 0 (late by then)."""
    rows = predictions(start, 3, 2_000, seed=51).sort_values("timestamp", ignore_index=True)
    hour = ((rows["timestamp"] - pd.Timestamp(start)) // pd.Timedelta(hours=1)).to_numpy()
    late = predictions(start, 1, 30, seed=52, prefix="late")
    late["timestamp"] = pd.Timestamp(start) + pd.Timedelta(minutes=10)
    cuts = [
        rows[(hour == 0) & (rows.index % 2 == 0)],
        pd.concat(
            [rows[(hour == 0) & (rows.index % 2 == 1)], rows[(hour == 1) & (rows.index % 2 == 0)]]
        ),
        pd.concat([rows[(hour == 1) & (rows.index % 2 == 1)], rows[hour == 2], late]),
    ]
    folder.mkdir()
    for i, part in enumerate(cuts):
        path = folder / f"part-{i}.parquet"
        part.to_parquet(path, coerce_timestamps="us")
        os.utime(path, (1_000_000 + i, 1_000_000 + i))  # the file source reads in mtime order
    return cuts, rows


def _profiles(engine: sa.Engine, model: str) -> dict[tuple, dict[str, Any]]:
    found = table(
        engine,
        "SELECT p.window_start, p.segment, p.column_name, p.profile FROM window_profiles p"
        " JOIN models m ON m.id = p.model_id WHERE m.name = :m",
        m=model,
    )
    return {(r["window_start"], r["segment"], r["column_name"]): r["profile"] for r in found}


def test_stream_windows_close_after_lateness_and_equal_the_batch_path(
    spark: Any, db: sa.Engine, tmp_path: Path
) -> None:
    start = closed_hours_start(3)
    cuts, rows = _files(start, tmp_path / "in")
    register(db, "stream")
    register(db, "batch")
    closed: list[Any] = []
    sink = WindowSink(
        model="stream",
        version="v1",
        engine=db,
        settings=SETTINGS,
        allowed_lateness=timedelta(minutes=5),
        on_window=closed.append,
        **COLUMNS,
    )
    schema = spark.createDataFrame(cuts[0]).schema
    query = (
        spark.readStream.schema(schema)
        .option("maxFilesPerTrigger", 1)
        .parquet(str(tmp_path / "in"))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    assert query.awaitTermination(300)
    assert query.exception() is None
    # hour 0 closed after batch 1, hour 1 after batch 2; hour 2 is still open
    assert [r.window_start for r in closed] == [start, start + HOUR]
    state = table(db, "SELECT last_batch_id, late_rows FROM stream_states")
    assert state == [{"last_batch_id": 2, "late_rows": 30}]
    assert [r["window_start"] for r in table(db, "SELECT window_start FROM stream_windows")] == [
        start + 2 * HOUR
    ]
    # a person sees the late rows and the open window in /metrics
    from monitor.web.metrics import DatabaseCollector

    with db.connect() as conn:
        families = {f.name: f for f in DatabaseCollector(conn).live()}
    labels = {"model": "stream", "stream": "default"}
    late = [s for s in families["monitor_stream_late_rows"].samples if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in late] == [(labels, 30.0)]
    opened = families["monitor_stream_open_windows"].samples
    assert [(s.labels, s.value) for s in opened] == [(labels, 1.0)]
    # a re-delivered micro-batch changes nothing (exactly once with the checkpoint)
    sink(spark.createDataFrame(cuts[1]), 1)
    assert table(db, "SELECT last_batch_id, late_rows FROM stream_states") == state
    assert [r.window_start for r in sink.close_all()] == [start + 2 * HOUR]

    profile_windows(
        spark.createDataFrame(rows),
        model="batch",
        version="v1",
        engine=db,
        settings=SETTINGS,
        performance=False,
        **COLUMNS,
    )
    streamed, batched = _profiles(db, "stream"), _profiles(db, "batch")
    assert set(streamed) == set(batched) and len(streamed) > 10
    for key, a in batched.items():
        b = streamed[key]
        for field in ("count", "nulls", "invalid", "hist", "counts", "min", "max"):
            assert a.get(field) == b.get(field), (key, field)
        if a["type"] == "numeric":
            assert b["mean"] == pytest.approx(a["mean"], rel=1e-12, abs=1e-12)
    drift = {
        model: {
            (r["window_start"], r["segment"], r["column_name"]): (r["drifted"], r["p_value"])
            for r in table(
                db,
                "SELECT r.* FROM results r JOIN models m ON m.id = r.model_id"
                " WHERE m.name = :m AND r.family = 'drift'",
                m=model,
            )
        }
        for model in ("stream", "batch")
    }
    assert drift["stream"].keys() == drift["batch"].keys()
    for key, (drifted, p) in drift["batch"].items():
        assert drift["stream"][key][0] == drifted
        assert drift["stream"][key][1] == pytest.approx(p, rel=1e-9, abs=1e-15)
    runs = table(
        db,
        "SELECT source, reason FROM runs r JOIN models m ON m.id = r.model_id"
        " WHERE m.name = 'stream'",
    )
    assert runs == [{"source": "spark", "reason": "stream default"}] * 3
