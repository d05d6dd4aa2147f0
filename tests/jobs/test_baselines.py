"""Baselines: kinds inferred by Evidently's rules and overridable, reduced storage, replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.cli import main
from monitor.errors import InputError, NotFoundError
from monitor.jobs.baselines import (
    delete_baseline,
    list_baselines,
    register_baseline,
    show_baseline,
)
from monitor.jobs.reference import load_training
from monitor.statistics.profiles import DEFAULT_N_BINS
from tests.jobs.helpers import baseline_frame, scalar


def _frame(n: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    df = baseline_frame(n)
    df["rating"] = rng.integers(1, 4, n)  # integer with few values: categorical
    df["visits"] = rng.integers(0, 500, n)  # integer with many values: numerical
    df["flag"] = rng.random(n) < 0.3
    df["label"] = (rng.random(n) < df["score"]).astype(int)
    df["pred"] = (df["score"] > 0.5).astype(int)
    return df


def test_kinds_follow_evidently_and_overrides_win(db: sa.Engine) -> None:
    info = register_baseline(
        _frame(),
        model="m",
        version="1",
        prediction="pred",
        target="label",
        proba="score",
        categorical=["visits"],
        ignore=["y"],
        engine=db,
    )
    kinds = {c.name: (c.kind, c.role) for c in info.columns}
    assert kinds == {
        "x": ("numeric", "feature"),
        "color": ("categorical", "feature"),
        "score": ("numeric", "score"),
        "rating": ("categorical", "feature"),
        "visits": ("categorical", "feature"),
        "flag": ("categorical", "feature"),
        "label": ("categorical", "target"),
        "pred": ("categorical", "prediction"),
    }
    # the feature schema follows the baseline's kinds and order
    with db.connect() as conn:
        slots = conn.execute(
            sa.text("SELECT name, kind, position FROM features ORDER BY kind, position")
        ).all()
    assert slots == [
        ("color", "categorical", 0),
        ("rating", "categorical", 1),
        ("visits", "categorical", 2),
        ("flag", "categorical", 3),
        ("x", "numeric", 0),
    ]


def test_stored_baseline_is_reduced_and_keeps_what_drift_needs(db: sa.Engine) -> None:
    df = _frame(20_000)
    info = register_baseline(
        df,
        model="m",
        version="1",
        prediction="pred",
        target="label",
        proba="score",
        sample_size=1_000,
        engine=db,
    )
    assert info.performance is not None
    from sklearn.metrics import accuracy_score, roc_auc_score

    assert info.performance["accuracy"] == pytest.approx(accuracy_score(df["label"], df["pred"]))
    assert info.performance["roc_auc"] == pytest.approx(roc_auc_score(df["label"], df["score"]))
    with db.connect() as conn:
        ref = load_training(conn, scalar(db, "SELECT id FROM models"), None)
        size = scalar(db, "SELECT sum(pg_column_size(b.*)) FROM baseline_profiles b")
    assert ref is not None and not ref.fallback
    by_name = {c.name: c for c in ref.columns}
    x = by_name["x"].profile
    assert x.count == 20_000 and len(x.sample) == 1_000
    assert x.mean == pytest.approx(df["x"].mean()) and x.max == df["x"].max()
    assert sum(x.hist) == 20_000 and len(x.edges) == DEFAULT_N_BINS + 1
    assert by_name["color"].profile.counts == df["color"].value_counts().to_dict()
    assert {"@prediction", "@score", "label"} <= set(by_name)
    assert size < df.memory_usage(deep=True).sum() / 4  # not the whole file


def test_reregistering_replaces_atomically_and_versions_fall_back(db: sa.Engine) -> None:
    register_baseline(_frame(), model="m", version="1", engine=db)
    register_baseline(_frame(500), model="m", version="1", engine=db)
    assert scalar(db, "SELECT count(*) FROM baselines") == 1
    assert scalar(db, "SELECT n_rows FROM baselines") == 500
    with db.connect() as conn:
        model_id = scalar(db, "SELECT id FROM models")
        other = conn.execute(
            sa.text("INSERT INTO model_versions (model_id, version) VALUES (:m, '2') RETURNING id"),
            {"m": model_id},
        ).scalar()
        conn.commit()
        ref = load_training(conn, model_id, other)
    assert ref is not None and ref.fallback and ref.version == "1"
    assert ref.details()["baseline_fallback"] is True
    with pytest.raises(InputError, match="nope"):
        register_baseline(_frame(), model="m", version="1", target="nope", engine=db)
    assert scalar(db, "SELECT n_rows FROM baselines") == 500  # a failed replace changes nothing


def test_list_show_delete(db: sa.Engine) -> None:
    register_baseline(_frame(), model="m", version="1", engine=db)
    assert [(r["model"], r["version"]) for r in list_baselines(db)] == [("m", "1")]
    shown = show_baseline(db, "m")
    assert shown["profiles"]["x"]["kind"] == "numeric"
    delete_baseline(db, "m", "1")
    assert list_baselines(db, "m") == []
    with pytest.raises(NotFoundError):
        delete_baseline(db, "m", "1")


def test_cli_add_list_show_mode_delete(
    db: sa.Engine, settings_env: None, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    assert (
        main(
            [
                "baseline",
                "add",
                "m",
                str(path),
                "--version",
                "1",
                "--prediction",
                "pred",
                "--target",
                "label",
                "--proba",
                "score",
                "--categorical",
                "visits",
                "--ignore",
                "y,flag",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "visits (categorical)" in out and "accuracy" in out and "flag" not in out
    assert main(["baseline", "list"]) == 0
    assert "m\t1\t3,000 rows" in capsys.readouterr().out
    assert main(["baseline", "show", "m"]) == 0
    assert "x [numeric, feature]" in capsys.readouterr().out
    assert main(["baseline", "mode", "m", "rolling", "--days", "3"]) == 0
    assert scalar(db, "SELECT baseline_mode || rolling_baseline_days FROM models") == "rolling3"
    assert main(["baseline", "delete", "m", "--version", "1"]) == 0
    assert main(["baseline", "show", "m"]) == 2
    assert main(["baseline", "add", "m", str(tmp_path / "missing.csv"), "--version", "1"]) == 2
