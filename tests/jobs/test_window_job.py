"""The window job's output: profiles per column and segment, drift, quality, operational."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from monitor.jobs.baselines import register_baseline, set_baseline_mode
from monitor.jobs.ranges import drift_over_range, merged_profiles
from monitor.jobs.reader import read_window
from monitor.jobs.tick import make_context, run_until_idle
from monitor.sdk.records import PredictionRecord
from monitor.settings import Settings
from monitor.statistics.policy import DefaultPolicy
from monitor.statistics.profile_drift import drift_from_profiles
from monitor.statistics.profiles import profile_numeric
from tests.jobs.helpers import HOUR, WINDOW_STEPS, baseline_frame, closed_hour, records, writer


def _results(engine: sa.Engine, **where: str) -> list[dict]:
    clause = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(f"SELECT * FROM results WHERE {clause} ORDER BY window_start"), where
            ).mappings()
        ]


@pytest.fixture()
def shifted(db: sa.Engine, database_url: str) -> sa.Engine:
    """Three windows: like the baseline, shifted x (+1 sd), and one with bad values."""
    register_baseline(baseline_frame(5_000), model="m", version="v1", proba="score", engine=db)
    first = closed_hour() - 3 * HOUR
    from tests.jobs.helpers import seed_hours

    seed_hours(db, database_url, "m", first, 1, 400)
    with writer(database_url) as w:
        w.write_predictions("m", "v1", records(first + HOUR, 400, seed=1, shift=1.0))
        bad = records(first + 2 * HOUR, 400, seed=2)
        bad[0] = PredictionRecord(
            "bad-0", bad[0].event_ts, {"x": "oops", "y": 1e9, "color": "purple"}
        )
        w.write_predictions("m", "v1", bad)
    return db


def test_windows_get_profiles_drift_quality_and_operational_results(
    shifted: sa.Engine, job_settings: Settings
) -> None:
    settings = job_settings.model_copy(
        update={"multivariate_methods": ["pca_reconstruction", "domain_classifier"]}
    )
    assert run_until_idle(make_context(shifted, settings), steps=WINDOW_STEPS) == 3
    x = _results(shifted, family="drift", column_name="x", segment="")
    assert [r["drifted"] for r in x] == [False, True, False]
    for r in x:
        assert r["metric"] == DefaultPolicy().methods["num"] and r["threshold"] == 0.01
        assert r["status"] == "ok" and r["details"]["p_value_adjusted"] >= r["p_value"]
        assert r["p_value"] is not None and r["effect_size"] is not None
        assert r["n_reference"] == 5_000 and r["n_current"] in (399, 400)
        assert r["details"]["reference"] == "training"
    assert [
        r["drifted"] for r in _results(shifted, family="drift", column_name="y", segment="")
    ] == [False, False, False]
    share = _results(shifted, family="dataset_drift", metric="share_drifted", segment="")
    assert [r["value"] for r in share] == [0.0, pytest.approx(1 / 3), 0.0]
    score = _results(shifted, family="drift", column_name="@score", segment="")
    assert len(score) == 3  # the prediction is compared with the baseline's score column

    quality = {
        (r["column_name"], r["metric"]): r["value"]
        for r in _results(shifted, family="quality", segment="")
        if r["window_start"] == x[2]["window_start"]
    }
    assert quality[("x", "type_errors")] == pytest.approx(1 / 400)
    assert quality[("x", "null_share")] == 0.0
    assert quality[("y", "out_of_range_share")] == pytest.approx(1 / 400)
    assert quality[("color", "unseen_category_share")] == pytest.approx(1 / 400)
    assert ("x", "missing_column") not in quality

    multivariate = _results(shifted, family="multivariate", segment="")
    auc = [r for r in multivariate if r["metric"] == "domain_classifier_auc"]
    assert {r["metric"] for r in multivariate} == {"domain_classifier_auc", "pca_reconstruction"}
    assert [r["drifted"] for r in auc] == [False, True, False]
    assert auc[1]["details"]["top_features"][0]["feature"] == "x"

    volume = _results(shifted, family="operational", metric="volume", segment="")
    assert [r["value"] for r in volume] == [400.0, 400.0, 400.0]
    by_segment = _results(shifted, family="operational", metric="volume")
    assert {r["segment"] for r in by_segment} == {"", "region=eu", "region=us"}
    with shifted.connect() as conn:
        segs = conn.execute(sa.text("SELECT DISTINCT segment FROM window_profiles")).scalars()
        assert set(segs) == {"", "region=eu", "region=us"}
        p = conn.execute(
            sa.text(
                "SELECT profile FROM window_profiles WHERE column_name = 'x'"
                " AND segment = 'region=eu' LIMIT 1"
            )
        ).scalar()
    assert p["count"] == 200


def test_profiles_equal_a_direct_profile_and_ranges_merge_them(
    shifted: sa.Engine, database_url: str, job_settings: Settings
) -> None:
    run_until_idle(make_context(shifted, job_settings))
    first = closed_hour() - 3 * HOUR
    import psycopg

    from monitor.storage.engine import libpq_url

    with psycopg.connect(libpq_url(database_url)) as conn:
        model_id = conn.execute("SELECT id FROM models").fetchone()[0]
        rows = read_window(conn, model_id, first, first + 3 * HOUR)
    assert rows.n == 1200
    with shifted.connect() as conn:
        merged = merged_profiles(conn, model_id, first, first + 3 * HOUR)
        edges = conn.execute(
            sa.text("SELECT profile->'edges' FROM baseline_profiles WHERE column_name = 'x'")
        ).scalar()
    direct = profile_numeric(rows.numeric["x"], edges)
    assert merged["x"].count == direct.count == 1199
    assert merged["x"].hist == direct.hist
    assert merged["x"].mean == pytest.approx(direct.mean)
    assert merged["x"].m2 == pytest.approx(direct.m2)
    assert (
        merged["color"].counts
        == dict(
            zip(
                *np.unique(
                    [rows.categorical["color"].labels[c] for c in rows.categorical["color"].codes],
                    return_counts=True,
                ),
                strict=True,
            )
        )
        | {}
    )
    result, ref = drift_over_range(shifted, "m", first, first + 3 * HOUR)
    x = result.column("x")
    assert x.n_current == 1199 and x.drifted  # a third of the rows shifted by 1 sd
    # the same number as drift computed on a profile of the rows themselves
    direct_drift = drift_from_profiles(ref.columns[0].profile, direct, column="x")
    assert x.statistic == pytest.approx(direct_drift.statistic)
    assert x.p_value == pytest.approx(direct_drift.p_value, rel=1e-6)


def test_rolling_reference_compares_with_recent_production(
    shifted: sa.Engine, job_settings: Settings
) -> None:
    ctx = make_context(shifted, job_settings)
    run_until_idle(ctx)
    set_baseline_mode(shifted, "m", "rolling", days=1)
    with shifted.begin() as conn:
        conn.execute(sa.text("UPDATE runs SET status = 'stale'"))
    run_until_idle(ctx)
    x = _results(shifted, family="drift", column_name="x", segment="")
    # the first window has no production history: it falls back to training, and says so
    assert x[0]["details"]["reference"] == "training" and "reference_note" in x[0]["details"]
    # the later windows are compared with the windows before them
    assert [r["details"]["reference"] for r in x[1:]] == ["rolling", "rolling"]
    assert x[1]["n_reference"] == 400 and x[2]["n_reference"] == 800
    assert x[1]["drifted"]


def test_a_window_without_a_baseline_still_gets_volume(
    db: sa.Engine, database_url: str, job_settings: Settings
) -> None:
    from tests.jobs.helpers import seed_hours

    seed_hours(db, database_url, "nobase", closed_hour() - HOUR, 1, 10)
    assert run_until_idle(make_context(db, job_settings), steps=WINDOW_STEPS) == 1
    assert [r["value"] for r in _results(db, metric="volume", segment="")] == [10.0]
    assert _results(db, family="drift")[0]["status"] == "insufficient_data"
