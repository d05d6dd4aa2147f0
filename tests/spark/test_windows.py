"""profile_windows: the same rows through the SDK + window job and through Spark give the same
windows (profiles and results), per window and per segment; re-runs replace; the rule for
windows the SDK also logged."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

import monitor
from monitor.jobs.tick import make_context, run_until_idle
from monitor.settings import Settings
from monitor.spark import profile_windows
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

WINDOW_STEPS = {
    "windows": "monitor.jobs.steps:create_windows",
    "compute": "monitor.jobs.steps:compute_windows",
}
ROWS_PER_HOUR = 100_000


@pytest.fixture()
def settings() -> Settings:
    return Settings(min_segment_rows=1_000, multivariate_methods=["pca_reconstruction"])


def _profiles(engine: sa.Engine, model: str) -> dict[tuple[Any, str, str], dict[str, Any]]:
    rows = table(
        engine,
        "SELECT p.window_start, p.segment, p.column_name, p.n, p.profile, p.sample_num"
        " FROM window_profiles p JOIN models m ON m.id = p.model_id WHERE m.name = :m",
        m=model,
    )
    return {(r["window_start"], r["segment"], r["column_name"]): r for r in rows}


def _results(engine: sa.Engine, model: str, families: tuple[str, ...]) -> dict[tuple, dict]:
    rows = table(
        engine,
        "SELECT r.* FROM results r JOIN models m ON m.id = r.model_id WHERE m.name = :m"
        " AND r.family = ANY(:f)",
        m=model,
        f=list(families),
    )
    return {
        (r["window_start"], r["segment"], r["family"], r["column_name"], r["metric"]): r
        for r in rows
    }


def test_parity_with_the_sdk_and_the_window_job(
    spark: Any, db: sa.Engine, database_url: str, settings: Settings
) -> None:
    start = closed_hours_start(3)
    frame = predictions(start, 3, ROWS_PER_HOUR)
    register(db, "via-sdk")
    register(db, "via-spark")
    make_partitions(db, start)

    client = monitor.Monitor("via-sdk", "v1", dsn=libpq_url(database_url))
    assert client.log_batch(sdk_rows(frame), segment="segment") == len(frame)
    assert client.flush(60)
    client.shutdown(10)
    assert run_until_idle(make_context(db, settings), steps=WINDOW_STEPS) >= 3

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
        performance=False,
    )
    assert [w.window_start for w in report.windows] == [start + h * HOUR for h in range(3)]
    assert [w.rows for w in report.windows] == [ROWS_PER_HOUR] * 3
    assert report.windows[1].drifted == ["color", "x"]

    sdk, spk = _profiles(db, "via-sdk"), _profiles(db, "via-spark")
    assert set(sdk) == set(spk)
    # all traffic and the two large segments (apac, 5% of 100k, is above 1,000 rows too)
    assert {k[1] for k in sdk} == {"", "region=eu", "region=us", "region=apac"}
    for key, a in sdk.items():
        b = spk[key]
        pa, pb = a["profile"], b["profile"]
        assert a["n"] == b["n"], key
        exact = ("count", "nulls", "invalid", "hist", "counts", "min", "max", "edges", "other")
        for field in exact:
            assert pa.get(field) == pb.get(field), (key, field)
        if pa["type"] == "numeric":
            assert pb["mean"] == pytest.approx(pa["mean"], rel=1e-12, abs=1e-12)
            assert pb["m2"] == pytest.approx(pa["m2"], rel=1e-12)
            assert len(a["sample_num"]) == len(b["sample_num"]) == min(2_000, pa["count"])

    families = ("drift", "dataset_drift", "quality", "operational")
    windows = {w.window_start for w in report.windows}
    a_rows = {k: r for k, r in _results(db, "via-sdk", families).items() if k[0] in windows}
    b_rows = _results(db, "via-spark", families)
    assert set(a_rows) == set(b_rows)
    assert any(k[2] == "drift" and k[1] == "region=eu" for k in a_rows)
    for key, a in a_rows.items():
        b = b_rows[key]
        for field in ("drifted", "status", "n_current", "n_reference", "threshold"):
            assert a[field] == b[field], (key, field)
        for field in ("value", "p_value", "effect_size", "ci_low", "ci_high"):
            if a[field] is None:
                assert b[field] is None, (key, field)
            else:
                assert b[field] == pytest.approx(a[field], rel=1e-9, abs=1e-12), (key, field)
    multivariate = _results(db, "via-spark", ("multivariate",))
    assert {k[4] for k in multivariate} == {"pca_reconstruction"}
    assert all(r["n_current"] == 2_000 for r in multivariate.values())

    runs = table(
        db,
        "SELECT r.status, r.source, r.rows FROM runs r JOIN models m ON m.id = r.model_id"
        " WHERE m.name = 'via-spark' AND r.job = 'window'",
    )
    assert runs == [{"status": "succeeded", "source": "spark", "rows": ROWS_PER_HOUR}] * 3


def test_rerun_replaces_and_sdk_rows_in_a_spark_window_are_counted_not_added(
    spark: Any, db: sa.Engine, database_url: str, settings: Settings
) -> None:
    start = closed_hours_start(2)
    register(db, "m")
    make_partitions(db, start)
    first = predictions(start, 2, 3_000, seed=5)
    df = spark.createDataFrame(first)
    kwargs: dict[str, Any] = {
        "model": "m",
        "version": "v1",
        "proba": "proba",
        "segments": ["region"],
        "engine": db,
        "settings": settings,
        "performance": False,
    }
    profile_windows(df, **kwargs)
    before = _results(db, "m", ("drift", "quality", "operational"))
    profiles_before = _profiles(db, "m")
    profile_windows(df, **kwargs)  # idempotent
    after = _results(db, "m", ("drift", "quality", "operational"))
    assert set(after) == set(before)
    assert all(after[k]["value"] == before[k]["value"] for k in before)
    assert {
        k: p["profile"]["hist"] for k, p in _profiles(db, "m").items() if "hist" in p["profile"]
    } == {k: p["profile"]["hist"] for k, p in profiles_before.items() if "hist" in p["profile"]}

    # the SDK logs 50 rows into the first Spark window: the worker keeps the window and says so
    client = monitor.Monitor("m", "v1", dsn=libpq_url(database_url))
    client.log_batch(
        sdk_rows(first.iloc[:50]).assign(id=[f"sdk{i}" for i in range(50)]), segment="segment"
    )
    assert client.flush(30)
    client.shutdown(10)
    stale = table(db, "SELECT status, reason FROM runs WHERE job = 'window' ORDER BY window_start")
    assert stale[0]["status"] == "stale"
    run_until_idle(make_context(db, settings), steps=WINDOW_STEPS)
    kept = table(
        db,
        "SELECT status, reason, source, rows FROM runs WHERE job = 'window' ORDER BY window_start",
    )
    # (the worker also created the empty hour after them: SDK traffic continues its series)
    assert [r["status"] for r in kept][:2] == ["succeeded", "succeeded"]
    assert [r["source"] for r in kept][:2] == ["spark", "spark"]
    assert kept[0]["reason"].startswith("profiled on Spark; 50 rows logged")
    assert kept[0]["rows"] == 3_000 and kept[0]["source"] == "spark"
    volume = _results(db, "m", ("operational",))
    assert volume[(start, "", "operational", "", "volume")]["value"] == 3_000.0

    # a re-run over only the second hour leaves the first as it is
    second = spark.createDataFrame(first[first["timestamp"] >= pd.Timestamp(start + HOUR)])
    report = profile_windows(second, **kwargs)
    assert [w.window_start for w in report.windows] == [start + HOUR]


def test_rows_without_time_are_counted_and_bad_columns_are_refused(
    spark: Any, db: sa.Engine, settings: Settings
) -> None:
    start = closed_hours_start(1)
    register(db, "m")
    frame = predictions(start, 1, 500, seed=9)
    frame.loc[:9, "timestamp"] = pd.NaT
    report = profile_windows(
        spark.createDataFrame(frame),
        model="m",
        version="v1",
        engine=db,
        settings=settings,
        performance=False,
    )
    assert report.rows_without_time == 10 and report.rows == 490
    from monitor.errors import InputError

    with pytest.raises(InputError, match="nope"):
        profile_windows(
            spark.createDataFrame(frame), model="m", version="v1", timestamp="nope", engine=db
        )
    with pytest.raises(InputError, match="3600 s windows"):
        profile_windows(
            spark.createDataFrame(frame), model="m", version="v1", window="15m", engine=db
        )
