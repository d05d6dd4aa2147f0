"""The performance job on real Postgres: labels joined in any order, realised and estimated
performance, late labels recomputing windows, duplicates and unknown ids, operational rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn import metrics as skm

from monitor.jobs import performance as perf_job
from monitor.jobs.baselines import register_baseline
from monitor.jobs.tick import make_context, run_until_idle
from monitor.sdk.records import ActualRecord, PredictionRecord
from monitor.settings import Settings
from monitor.storage.partitions import ensure_partitions
from tests.jobs.helpers import HOUR, closed_hour, scalar, writer

THRESHOLD = 0.35


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _draw(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    """A credit-like binary model: P(y | x) fixed, x shifting towards the decision boundary
    (harder cases, lower accuracy); the model is miscalibrated."""
    x = rng.normal(0.3 * shift, 1 - 0.6 * shift, n)
    z = rng.normal(0, 1, n)
    logit = 1.4 * x - 0.8 * z - 1.0
    proba = _sigmoid(1.3 * logit + 0.2)
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "proba": proba,
            "prediction": (proba >= THRESHOLD).astype(int),
            "target": (rng.random(n) < _sigmoid(logit)).astype(int),
        }
    )


def _predictions(
    frame: pd.DataFrame, start: datetime, prefix: str, *, version_start: bool = False
) -> list[PredictionRecord]:
    rng = np.random.default_rng(len(frame))
    offsets = np.sort(rng.uniform(0, 3599, len(frame)))
    latency = rng.lognormal(np.log(10), 0.2, len(frame))
    if version_start:
        latency[offsets < 120] *= 8
    return [
        PredictionRecord(
            record_id=f"{prefix}-{i}",
            event_ts=start + timedelta(seconds=float(offsets[i])),
            features={"x": float(r.x), "z": float(r.z)},
            prediction=int(r.prediction),
            proba={"0": 1 - float(r.proba), "1": float(r.proba)},
            latency_ms=float(latency[i]),
            segment={"region": "eu" if i % 3 else "us"},
        )
        for i, r in enumerate(frame.itertuples(index=False))
    ]


def _labels(
    frame: pd.DataFrame, recs: list[PredictionRecord], share: float, seed: int
) -> list[ActualRecord]:
    rng = np.random.default_rng(seed)
    keep = rng.random(len(recs)) < share
    return [
        ActualRecord(rec.record_id, rec.event_ts + timedelta(hours=30), int(t))
        for rec, t, k in zip(recs, frame["target"], keep, strict=True)
        if k
    ]


def _results(engine: sa.Engine, family: str, metric: str, segment: str = "") -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(
                    "SELECT * FROM results WHERE family = :f AND metric = :m AND segment = :s"
                    " ORDER BY window_start"
                ),
                {"f": family, "m": metric, "s": segment},
            ).mappings()
        ]


@pytest.fixture()
def settings() -> Settings:
    return Settings(
        lease_seconds=30,
        min_segment_rows=100,
        catchup_max_age_days=14,
        label_sweep_seconds=0,
        min_labels=30,
    )


@pytest.fixture()
def credit(db: sa.Engine, database_url: str) -> dict[str, Any]:
    """A baseline with labels, three windows (the last shifted); labels for the first two."""
    rng = np.random.default_rng(0)
    register_baseline(
        _draw(rng, 20_000, 0.0),
        model="credit",
        version="v1",
        prediction="prediction",
        proba="proba",
        target="target",
        engine=db,
    )
    first = closed_hour() - 3 * HOUR
    with db.begin() as conn:
        ensure_partitions(conn, first=first.date() - timedelta(days=1), ahead_days=2)
    frames, recs = [], []
    with writer(database_url) as w:
        for h, shift in enumerate((0.0, 0.0, 1.0)):
            frame = _draw(rng, 600, shift)
            batch = _predictions(frame, first + h * HOUR, f"w{h}", version_start=h == 0)
            w.write_predictions("credit", "v1", batch)
            frames.append(frame)
            recs.append(batch)
        for h in (0, 1):
            w.write_actuals("credit", _labels(frames[h], recs[h], 0.8, seed=h))
    with db.begin() as conn:  # these labels landed an hour ago, long before any run
        conn.execute(sa.text("UPDATE actuals SET received_at = received_at - interval '1 hour'"))
    return {"first": first, "frames": frames, "recs": recs}


def _expected(frame: pd.DataFrame, recs: list[PredictionRecord], labels: list[ActualRecord]):  # type: ignore[no-untyped-def]
    ids = {a.record_id for a in labels}
    keep = np.array([r.record_id in ids for r in recs])
    return (
        frame["target"].to_numpy()[keep],
        frame["prediction"].to_numpy()[keep],
        frame["proba"].to_numpy()[keep],
    )


def test_estimator_is_fitted_at_baseline_registration(credit: dict, db: sa.Engine) -> None:
    perf = scalar(db, "SELECT performance FROM baselines")
    est = perf["estimator"]
    assert est["method"] == "cbpe"
    assert est["threshold"] == pytest.approx(THRESHOLD, abs=0.01)
    assert est["calibrator"]["kind"] in ("isotonic", "platt")
    assert est["reference_realised"]["accuracy"] == pytest.approx(perf["accuracy"])


def test_realised_metrics_equal_sklearn_on_the_joined_rows(
    credit: dict, db: sa.Engine, settings: Settings
) -> None:
    run_until_idle(make_context(db, settings))
    acc = _results(db, "performance", "accuracy")
    assert len(acc) == 3
    for h in (0, 1):
        labels = _labels(credit["frames"][h], credit["recs"][h], 0.8, seed=h)
        y, pred, proba = _expected(credit["frames"][h], credit["recs"][h], labels)
        by_metric = {
            m: _results(db, "performance", m)[h]
            for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
        }
        assert by_metric["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
        assert by_metric["precision"]["value"] == pytest.approx(skm.precision_score(y, pred))
        assert by_metric["recall"]["value"] == pytest.approx(skm.recall_score(y, pred))
        assert by_metric["f1"]["value"] == pytest.approx(skm.f1_score(y, pred))
        assert by_metric["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, proba), abs=1e-9)
        assert by_metric["log_loss"]["value"] == pytest.approx(skm.log_loss(y, proba), rel=1e-6)
        row = by_metric["accuracy"]
        assert row["n_current"] == len(y) and row["ci_low"] < row["value"] < row["ci_high"]
        assert row["threshold"] == pytest.approx(
            scalar(db, "SELECT (performance->>'accuracy')::float FROM baselines")
        )
        assert row["details"]["estimated"] is not None
    cov = _results(db, "operational", "label_coverage")
    assert cov[0]["value"] == pytest.approx(
        len(_labels(credit["frames"][0], credit["recs"][0], 0.8, seed=0)) / 600
    )
    assert cov[2]["value"] == 0.0
    delay = _results(db, "operational", "label_delay_p50")
    assert delay[0]["value"] == pytest.approx(30 * 3600, abs=1)
    # per segment, with the min-rows guard
    assert {r["segment"] for r in _results(db, "performance", "accuracy", "region=eu")} == {
        "region=eu"
    }


def test_estimate_first_then_realised_when_late_labels_land(
    credit: dict, db: sa.Engine, database_url: str, settings: Settings
) -> None:
    ctx = make_context(db, settings)
    run_until_idle(ctx)
    before = _results(db, "performance", "accuracy")[2]
    estimate = _results(db, "estimated_performance", "accuracy")[2]
    assert before["status"] == "insufficient_data" and before["value"] is None
    assert estimate["status"] == "ok" and estimate["ci_low"] < estimate["value"]
    assert estimate["details"]["realised"] is None
    baseline_acc = scalar(db, "SELECT (performance->>'accuracy')::float FROM baselines")
    # the shifted window's estimated accuracy fell: the estimate saw the drop without labels
    assert estimate["value"] < baseline_acc - 0.03

    frame, recs = credit["frames"][2], credit["recs"][2]
    labels = _labels(frame, recs, 0.9, seed=7)
    with writer(database_url) as w:
        w.write_actuals("credit", labels)
    run_until_idle(ctx)
    reason = scalar(
        db,
        "SELECT count(*) FROM runs WHERE job = 'performance' AND status = 'succeeded'",
    )
    assert reason == 3
    after = _results(db, "performance", "accuracy")[2]
    y, pred, _ = _expected(frame, recs, labels)
    assert after["status"] == "ok"
    assert after["value"] == pytest.approx(skm.accuracy_score(y, pred))
    again = _results(db, "estimated_performance", "accuracy")[2]
    assert again["value"] == pytest.approx(estimate["value"])  # estimates do not need labels
    assert again["details"]["realised"] == pytest.approx(after["value"])
    assert again["ci_low"] <= after["value"] <= again["ci_high"]
    # the two labelled windows were not recomputed: their labels were older than their runs
    attempts = scalar(
        db,
        "SELECT max(attempt) FROM runs WHERE job = 'performance' AND window_start < :s",
        s=credit["first"] + 2 * HOUR,
    )
    assert attempts == 1


def test_labels_before_predictions_duplicates_and_unknown_ids(
    db: sa.Engine, database_url: str, settings: Settings
) -> None:
    rng = np.random.default_rng(3)
    register_baseline(
        _draw(rng, 5_000, 0.0),
        model="m",
        version="v1",
        prediction="prediction",
        proba="proba",
        target="target",
        engine=db,
    )
    start = closed_hour() - HOUR
    with db.begin() as conn:
        ensure_partitions(conn, first=start.date() - timedelta(days=1), ahead_days=2)
    frame = _draw(rng, 300, 0.0)
    recs = _predictions(frame, start, "a")
    labels = _labels(frame, recs, 1.0, seed=1)
    stray = [ActualRecord(f"nobody-{i}", start + timedelta(minutes=5), 1) for i in range(4)]
    with writer(database_url) as w:
        w.write_actuals("m", labels + stray)  # labels first ...
        w.write_actuals("m", labels[:10])  # ... sent twice (idempotent upsert)
        w.write_predictions("m", "v1", recs)  # ... predictions after
        # the same record id logged again two seconds later: counted, used once
        dup = recs[0]
        w.write_predictions(
            "m",
            "v1",
            [
                PredictionRecord(
                    dup.record_id,
                    dup.event_ts + timedelta(seconds=2),
                    dup.features,
                    dup.prediction,
                    dup.proba,
                    5.0,
                )
            ],
        )
    with db.begin() as conn:  # all of these labels were received during the window
        conn.execute(sa.text("UPDATE actuals SET received_at = :t"), {"t": start + HOUR / 2})
    run_until_idle(make_context(db, settings))
    assert _results(db, "operational", "label_coverage")[0]["value"] == 1.0
    assert _results(db, "operational", "duplicate_ids")[0]["value"] == 1.0
    assert _results(db, "operational", "labels_unmatched")[0]["value"] == 4.0
    acc = _results(db, "performance", "accuracy")[0]
    assert acc["n_current"] == 300
    assert acc["value"] == pytest.approx(skm.accuracy_score(frame["target"], frame["prediction"]))
    assert scalar(db, "SELECT count(*) FROM actuals") == 304  # nothing lost


def test_regression_gets_realised_and_dle_estimates(
    db: sa.Engine, database_url: str, settings: Settings
) -> None:
    rng = np.random.default_rng(5)

    def draw(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        c = rng.choice(["a", "b"], n)
        f = 3 * x + 1
        y = f + rng.normal(0, 1, n) * (0.5 + np.abs(x) + (c == "b"))
        return pd.DataFrame({"x": x, "c": c, "pred": f, "y": y})

    base = draw(5_000, 0.0)
    register_baseline(base, model="r", version="v1", prediction="pred", target="y", engine=db)
    assert scalar(db, "SELECT performance->'estimator'->>'method' FROM baselines") == "dle"
    start = closed_hour() - HOUR
    with db.begin() as conn:
        ensure_partitions(conn, first=start.date() - timedelta(days=1), ahead_days=2)
    frame = draw(800, 1.5)
    recs = [
        PredictionRecord(
            f"r-{i}",
            start + timedelta(seconds=i * 4),
            {"x": r.x, "c": r.c},
            prediction=float(r.pred),
        )
        for i, r in enumerate(frame.itertuples(index=False))
    ]
    with writer(database_url) as w:
        w.write_predictions("r", "v1", recs)
        w.write_actuals(
            "r",
            [
                ActualRecord(rec.record_id, rec.event_ts, float(y))
                for rec, y in zip(recs, frame["y"], strict=True)
            ],
        )
    run_until_idle(make_context(db, settings))
    mae = _results(db, "performance", "mae")[0]
    assert mae["value"] == pytest.approx(skm.mean_absolute_error(frame["y"], frame["pred"]))
    assert _results(db, "performance", "r2")[0]["value"] == pytest.approx(
        skm.r2_score(frame["y"], frame["pred"])
    )
    est = _results(db, "estimated_performance", "mae")[0]
    assert est["details"]["method"] == "dle"
    assert est["value"] == pytest.approx(mae["value"], rel=0.1)
    assert est["value"] > scalar(db, "SELECT (performance->>'mae')::float FROM baselines") * 1.2


def test_binary_without_probability_says_estimate_not_available(
    db: sa.Engine, database_url: str, settings: Settings
) -> None:
    rng = np.random.default_rng(8)
    register_baseline(
        _draw(rng, 2_000, 0.0).drop(columns=["proba"]),
        model="np",
        version="v1",
        prediction="prediction",
        target="target",
        engine=db,
    )
    start = closed_hour() - HOUR
    with db.begin() as conn:
        ensure_partitions(conn, first=start.date() - timedelta(days=1), ahead_days=2)
    frame = _draw(rng, 200, 0.0)
    recs = [
        PredictionRecord(
            f"n-{i}",
            start + timedelta(seconds=i),
            {"x": r.x, "z": r.z},
            prediction=int(r.prediction),
        )
        for i, r in enumerate(frame.itertuples(index=False))
    ]
    with writer(database_url) as w:
        w.write_predictions("np", "v1", recs)
    run_until_idle(make_context(db, settings))
    est = _results(db, "estimated_performance", "accuracy")[0]
    assert est["status"] == "not_available" and est["value"] is None
    assert "probability" in est["details"]["message"]


def test_operational_cold_start_cost_and_staleness(
    credit: dict, db: sa.Engine, settings: Settings
) -> None:
    with db.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE models SET cost_per_1k_predictions = 0.4, cost_per_compute_second = 0.002"
            )
        )
    run_until_idle(make_context(db, settings))
    cold = _results(db, "operational", "cold_requests")
    assert cold[0]["value"] > 0  # the version's first requests
    assert cold[1]["value"] == 0  # warm: traffic continued from the previous hour
    ratio = _results(db, "operational", "cold_start_ratio")
    assert len(ratio) == 1 and ratio[0]["value"] == pytest.approx(8, rel=0.3)
    cost = _results(db, "operational", "cost")
    latency = np.array([r.latency_ms for r in credit["recs"][1]])
    expected = 600 / 1000 * 0.4 + latency.sum() / 1000 * 0.002
    assert cost[1]["value"] == pytest.approx(expected, rel=1e-5)
    assert _results(db, "operational", "cost_per_day")[1]["value"] == pytest.approx(
        expected * 24, rel=1e-5
    )
    age = _results(db, "operational", "version_age_days")
    assert len(age) == 3 and all(r["value"] >= 0 for r in age)
    anomaly = _results(db, "operational", "volume_anomaly")
    assert anomaly[0]["status"] == "insufficient_data"  # no history yet


def test_recomputed_window_makes_performance_stale(
    credit: dict, db: sa.Engine, database_url: str, settings: Settings
) -> None:
    ctx = make_context(db, settings)
    run_until_idle(ctx)
    late = _predictions(_draw(np.random.default_rng(9), 50, 0.0), credit["first"], "late")
    with writer(database_url) as w:
        w.write_predictions("credit", "v1", late)
    run_until_idle(ctx)
    vol = _results(db, "performance", "accuracy")[0]
    assert vol["details"]["label_coverage"] < 0.8  # 650 rows now, labels for ~480
    assert (
        scalar(
            db,
            "SELECT attempt FROM runs WHERE job = 'performance' AND window_start = :s",
            s=credit["first"],
        )
        == 2
    )


def test_fit_estimator_explains_when_there_is_none() -> None:
    from monitor.jobs.baselines import ColumnSpec

    df = pd.DataFrame({"x": [1.0, 2.0], "p": [0, 1]})
    specs = [ColumnSpec("x", "numeric", "feature"), ColumnSpec("p", "categorical", "prediction")]
    out = perf_job.fit_estimator(df, specs, "binary")
    assert out == {"method": None, "reason": "the baseline has no target column"}


def test_an_empty_window_gets_its_performance_run(db: sa.Engine, database_url: str) -> None:
    """A window whose traffic dropped to zero is where the volume anomaly matters: its
    performance run must succeed (the labelled read of zero rows once failed in pyarrow)."""
    first = closed_hour() - 2 * HOUR
    with db.begin() as conn:
        ensure_partitions(conn, first=first.date() - timedelta(days=1), ahead_days=2)
    with writer(database_url) as w:  # one row, then an empty hour
        w.write_predictions("m", "v1", [PredictionRecord("only", first, {"x": 1.0}, 0.5)])
    run_until_idle(make_context(db, Settings(multivariate_methods=[])))
    with db.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT window_start, status FROM runs WHERE job = 'performance'")
        ).all()
        empty_volume = conn.execute(
            sa.text(
                "SELECT value FROM results WHERE metric = 'volume_anomaly' AND window_start = :w"
            ),
            {"w": first + HOUR},
        ).all()
    assert {status for _, status in runs} == {"succeeded"} and len(runs) == 2
    assert len(empty_volume) == 1
