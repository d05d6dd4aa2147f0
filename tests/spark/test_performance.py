"""The performance job's results for Spark windows: the same as through the SDK + worker."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

import monitor
from monitor.jobs.tick import make_context, run_until_idle
from monitor.settings import Settings
from monitor.spark import profile_windows
from monitor.storage.engine import libpq_url
from tests.spark.data import (
    closed_hours_start,
    make_partitions,
    predictions,
    register,
    sdk_rows,
    table,
)

JOB_STEPS = {
    "windows": "monitor.jobs.steps:create_windows",
    "compute": "monitor.jobs.steps:compute_windows",
    "performance": "monitor.jobs.performance:performance_step",
}
FAMILIES = ("performance", "estimated_performance", "operational")
# ages of the version and baseline: the two models were registered a moment apart
AGES = ("version_age_days", "baseline_age_days")


def _labels(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Labels for 70% of the predictions, drawn from the scores, an hour to a day later."""
    rng = np.random.default_rng(seed)
    picked = frame[rng.random(len(frame)) < 0.7]
    return pd.DataFrame(
        {
            "id": picked["id"].to_numpy(),
            "label": (rng.random(len(picked)) < picked["proba"].to_numpy()).astype(int),
            "labelled_at": picked["timestamp"]
            + pd.to_timedelta(rng.integers(3_600, 86_400, len(picked)), unit="s"),
        }
    )


def _results(engine: sa.Engine, model: str) -> dict[tuple, dict[str, Any]]:
    rows = table(
        engine,
        "SELECT r.* FROM results r JOIN models m ON m.id = r.model_id WHERE m.name = :m"
        " AND r.family = ANY(:f)",
        m=model,
        f=list(FAMILIES),
    )
    return {
        (r["window_start"], r["segment"], r["family"], r["column_name"], r["metric"]): r
        for r in rows
    }


def test_estimated_and_realised_performance_match_the_worker(
    spark: Any, db: sa.Engine, database_url: str
) -> None:
    settings = Settings(min_segment_rows=1_000, multivariate_methods=[])
    start = closed_hours_start(3)
    frame = predictions(start, 3, 6_000, seed=11)
    labels = _labels(frame)
    register(db, "via-sdk")
    register(db, "via-spark")
    make_partitions(db, start)

    # a queue that holds every label: log_actual drops the oldest when the queue is full
    client = monitor.Monitor("via-sdk", "v1", dsn=libpq_url(database_url), queue_size=50_000)
    client.log_batch(sdk_rows(frame), segment="segment")
    for rid, label, at in labels.itertuples(index=False):
        client.log_actual(rid, int(label), timestamp=at.to_pydatetime())
    assert client.flush(60)
    assert client.stats()["dropped_total"] == 0
    client.shutdown(10)
    run_until_idle(make_context(db, settings), steps=JOB_STEPS)

    report = profile_windows(
        spark.createDataFrame(frame),
        model="via-spark",
        version="v1",
        proba="proba",
        id="id",
        segments=["region"],
        latency_ms="latency_ms",
        engine=db,
        settings=settings,
        actuals=spark.createDataFrame(labels),
        actual="label",
        actual_timestamp="labelled_at",
    )
    assert report.performance_windows == 3
    windows = {w.window_start for w in report.windows}
    a_rows = {k: r for k, r in _results(db, "via-sdk").items() if k[0] in windows}
    b_rows = _results(db, "via-spark")
    assert set(a_rows) == set(b_rows)
    metrics = {(k[2], k[4]) for k in a_rows}
    for wanted in [
        ("performance", "roc_auc"),
        ("performance", "accuracy"),
        ("estimated_performance", "roc_auc"),
        ("operational", "label_coverage"),
        ("operational", "label_delay_p50"),
        ("operational", "volume_anomaly"),
        ("operational", "cold_requests"),
    ]:
        assert wanted in metrics
    for key, a in a_rows.items():
        b = b_rows[key]
        for field in ("drifted", "status", "n_current", "n_reference"):
            assert a[field] == b[field], (key, field)
        tolerance = 1e-3 if key[4] in AGES else 1e-9
        for field in ("value", "ci_low", "ci_high", "effect_size", "threshold"):
            if a[field] is None:
                assert b[field] is None, (key, field)
            else:
                assert b[field] == pytest.approx(a[field], rel=tolerance, abs=tolerance), (
                    key,
                    field,
                )
    perf_runs = table(
        db,
        "SELECT r.status, r.source FROM runs r JOIN models m ON m.id = r.model_id"
        " WHERE m.name = 'via-spark' AND r.job = 'performance'",
    )
    assert perf_runs == [{"status": "succeeded", "source": "spark"}] * 3
    # the worker leaves Spark's performance runs alone
    assert run_until_idle(make_context(db, settings), steps=JOB_STEPS) == 0


def test_a_map_of_class_probabilities_reads_as_the_positive_class_score(
    spark: Any, db: sa.Engine
) -> None:
    settings = Settings(min_segment_rows=1_000, multivariate_methods=[])
    start = closed_hours_start(1)
    frame = predictions(start, 1, 2_000, seed=71)
    from pyspark.sql import functions as F

    numbers = spark.createDataFrame(frame)
    as_map = numbers.withColumn(
        "proba", F.create_map(F.lit("0"), 1 - F.col("proba"), F.lit("1"), F.col("proba"))
    )
    register(db, "number")
    register(db, "map")
    for model, data in (("number", numbers), ("map", as_map)):
        profile_windows(
            data,
            model=model,
            version="v1",
            proba="proba",
            id="id",
            engine=db,
            settings=settings,
        )
    a, b = _results(db, "number"), _results(db, "map")
    estimated = {k[1:]: r["value"] for k, r in a.items() if k[2] == "estimated_performance"}
    assert estimated and estimated == {
        k[1:]: r["value"] for k, r in b.items() if k[2] == "estimated_performance"
    }
    score = table(
        db,
        "SELECT m.name, p.profile->'hist' AS hist FROM window_profiles p JOIN models m"
        " ON m.id = p.model_id WHERE p.column_name = '@score' AND p.segment = ''",
    )
    assert len(score) == 2 and score[0]["hist"] == score[1]["hist"]
    classes = table(
        db,
        "SELECT v.classes FROM model_versions v JOIN models m ON m.id = v.model_id"
        " WHERE m.name = 'map'",
    )
    assert classes == [{"classes": ["0", "1"]}]  # registered as the SDK registers a dict
