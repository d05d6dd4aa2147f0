"""register_baseline from a Spark DataFrame: the pandas path's baseline, reduced in Spark."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from monitor.jobs.baselines import register_baseline as register_pandas
from monitor.spark import register_baseline
from tests.spark.data import baseline, table


def _stored(engine: sa.Engine, model: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    base = table(
        engine,
        "SELECT b.* FROM baselines b JOIN models m ON m.id = b.model_id WHERE m.name = :m",
        m=model,
    )[0]
    profiles = table(
        engine,
        "SELECT column_name, role, kind, profile, sample_num FROM baseline_profiles"
        " WHERE baseline_id = :b",
        b=base["id"],
    )
    return base, {p["column_name"]: p for p in profiles}


def test_a_spark_baseline_equals_the_pandas_one(spark: Any, db: sa.Engine) -> None:
    frame = baseline(8_000, seed=4)
    frame["user"] = [f"u{i}" for i in range(len(frame))]  # text: skipped by both
    kwargs: dict[str, Any] = {"prediction": "prediction", "proba": "proba", "target": "target"}
    register_pandas(frame, model="pandas", version="v1", engine=db, **kwargs)
    info = register_baseline(
        spark.createDataFrame(frame).repartition(3),
        model="spark",
        version="v1",
        engine=db,
        **kwargs,
    )
    assert info.n_rows == 8_000
    a_base, a = _stored(db, "pandas")
    b_base, b = _stored(db, "spark")
    assert a_base["columns"] == b_base["columns"]
    assert "user" not in {c["name"] for c in b_base["columns"]}
    assert a_base["task"] == b_base["task"] == "binary"
    assert set(a) == set(b)
    for name, pa in a.items():
        pb = b[name]
        assert (pa["role"], pa["kind"]) == (pb["role"], pb["kind"])
        x, y = pa["profile"], pb["profile"]
        for field in ("count", "nulls", "invalid", "counts", "min", "max", "kinds"):
            assert x.get(field) == y.get(field), (name, field)
        if x.get("type") == "numeric":
            assert y["mean"] == pytest.approx(x["mean"], rel=1e-12)
            assert y["m2"] == pytest.approx(x["m2"], rel=1e-12)
            assert len(pb["sample_num"]) == len(pa["sample_num"]) == 5_000
            if len(x["edges"]) < 50:  # a discrete column: the distinct values, exactly
                assert x["edges"] == y["edges"] and x["hist"] == y["hist"]
            else:  # quantile edges: each bin holds ~1% of the baseline on both
                assert len(y["edges"]) == len(x["edges"])
                shares = np.asarray(y["hist"][1:-1]) / y["count"]
                assert shares.max() < 0.0125 and shares.min() > 0.0075
        if x.get("type") == "rows":
            assert {k: len(v) for k, v in y["values"].items()} == {
                k: len(v) for k, v in x["values"].items()
            }
    perf_a, perf_b = a_base["performance"], b_base["performance"]
    for metric in ("accuracy", "roc_auc", "f1"):
        assert perf_b[metric] == pytest.approx(perf_a[metric], rel=1e-12)
    assert perf_b["estimator"]["method"] == perf_a["estimator"]["method"] == "cbpe"
    assert perf_b["estimator"]["reference_estimated"] == pytest.approx(
        perf_a["estimator"]["reference_estimated"], rel=1e-9
    )


def test_bad_baselines_are_refused(spark: Any, db: sa.Engine) -> None:
    from monitor.errors import InputError

    frame = spark.createDataFrame(baseline(100))
    with pytest.raises(InputError, match="nope"):
        register_baseline(frame, model="m", version="v1", target="nope", engine=db)
    with pytest.raises(InputError, match="no feature columns"):
        register_baseline(
            frame.select("target"), model="m", version="v1", target="target", engine=db
        )
