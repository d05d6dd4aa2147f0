"""log_actuals: labels into Postgres for SDK predictions, or joined in Spark to Spark windows."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

import monitor
from monitor.jobs.tick import make_context, run_until_idle
from monitor.settings import Settings
from monitor.spark import log_actuals, profile_windows
from monitor.storage.engine import libpq_url
from tests.spark.data import (
    HOUR,
    closed_hours_start,
    make_partitions,
    predictions,
    register,
    sdk_rows,
    table,
)
from tests.spark.test_performance import JOB_STEPS, _labels

SETTINGS = Settings(min_segment_rows=1_000, multivariate_methods=[])


def _realised(engine: sa.Engine, model: str) -> dict[Any, dict[str, Any]]:
    rows = table(
        engine,
        "SELECT r.window_start, r.value, r.n_current, r.status FROM results r"
        " JOIN models m ON m.id = r.model_id WHERE m.name = :m AND r.family = 'performance'"
        " AND r.metric = 'accuracy' AND r.segment = ''",
        m=model,
    )
    return {r["window_start"]: r for r in rows}


def test_labels_of_sdk_predictions_go_to_postgres(
    spark: Any, db: sa.Engine, database_url: str
) -> None:
    start = closed_hours_start(2)
    frame = predictions(start, 2, 2_000, seed=21)
    labels = _labels(frame, seed=22)
    register(db, "m")
    make_partitions(db, start)
    client = monitor.Monitor("m", "v1", dsn=libpq_url(database_url))
    client.log_batch(sdk_rows(frame), segment="segment")
    assert client.flush(60)
    client.shutdown(10)
    report = log_actuals(
        spark.createDataFrame(labels).repartition(3),
        model="m",
        actual="label",
        timestamp="labelled_at",
        engine=db,
    )
    assert report.labels == len(labels) and report.dead_letters == 0
    stored = table(db, "SELECT count(*) AS n, count(actual_num) AS num FROM actuals")[0]
    assert stored == {"n": len(labels), "num": len(labels)}
    run_until_idle(make_context(db, SETTINGS), steps=JOB_STEPS)
    realised = _realised(db, "m")
    per_hour = labels.groupby(labels["id"].map(lambda i: int(i[1:]) // 2_000)).size().tolist()
    assert [realised[start + h * HOUR]["n_current"] for h in range(2)] == per_hour


def test_labels_of_spark_predictions_are_joined_in_spark(spark: Any, db: sa.Engine) -> None:
    start = closed_hours_start(2)
    frame = predictions(start, 2, 2_000, seed=31)
    labels = _labels(frame, seed=32)
    register(db, "m")
    df = spark.createDataFrame(frame)
    kwargs: dict[str, Any] = {"proba": "proba", "id": "id", "segments": ["region"]}
    profile_windows(df, model="m", version="v1", engine=db, settings=SETTINGS, **kwargs)
    before = _realised(db, "m")
    assert [r["status"] for r in before.values()] == ["insufficient_data"] * 2  # no labels yet
    report = log_actuals(
        spark.createDataFrame(labels),
        model="m",
        actual="label",
        timestamp="labelled_at",
        predictions=df,
        version="v1",
        engine=db,
        settings=SETTINGS,
        **kwargs,
    )
    assert len(report.windows) == 2 and report.not_profiled == []
    after = _realised(db, "m")
    per_hour = labels.groupby(labels["id"].map(lambda i: int(i[1:]) // 2_000)).size().tolist()
    assert [after[w]["n_current"] for w in sorted(after)] == per_hour
    assert all(r["status"] == "ok" and 0.4 < r["value"] < 0.9 for r in after.values())
    assert table(db, "SELECT count(*) AS n FROM actuals") == [{"n": 0}]  # no label in Postgres
    coverage = table(
        db,
        "SELECT value FROM results WHERE metric = 'label_coverage' AND segment = ''"
        " ORDER BY window_start",
    )
    assert [round(r["value"], 2) for r in coverage] == [round(n / 2_000, 2) for n in per_hour]
