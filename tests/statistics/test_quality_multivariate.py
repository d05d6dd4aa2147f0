"""Data-quality checks from profiles; multivariate detectors on correlated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.errors import InputError
from monitor.statistics.multivariate import (
    domain_classifier_drift,
    multivariate_drift,
    pca_reconstruction_drift,
    rank_auc,
)
from monitor.statistics.profiles import (
    profile_categorical,
    profile_numeric,
    reference_profile_categorical,
    reference_profile_numeric,
)
from monitor.statistics.quality import quality_checks


def test_quality_checks_flag_each_problem() -> None:
    rng = np.random.default_rng(0)
    ref_x = rng.normal(size=1000)
    ref = {
        "x": reference_profile_numeric(ref_x),
        "c": reference_profile_categorical(["a", "b"] * 500),
        "gone": reference_profile_numeric([1.0, 2.0]),
    }
    cur_x = list(rng.normal(size=900)) + [10.0] * 50 + [None] * 100 + ["oops"] * 5
    cur = {
        "x": profile_numeric(cur_x, ref["x"].edges),
        "c": profile_categorical(["a"] * 90 + ["z"] * 10),
        "new": profile_numeric([1.0], [0.0, 1.0]),
    }
    checks = quality_checks(ref, cur)
    by = {(c.check, c.column): c for c in checks}
    assert not by[("null_share", "x")].passed
    assert by[("null_share", "x")].value == pytest.approx(100 / 1055)
    assert not by[("out_of_range_share", "x")].passed
    assert by[("out_of_range_share", "x")].value == pytest.approx(50 / 950)
    assert not by[("type_errors", "x")].passed
    assert not by[("unseen_category_share", "c")].passed
    assert by[("unseen_category_share", "c")].value == pytest.approx(0.1)
    assert "'z'" in by[("unseen_category_share", "c")].message
    assert not by[("missing_column", "gone")].passed
    assert not by[("unexpected_column", "new")].passed
    assert by[("null_share", "c")].passed and by[("type_errors", "c")].passed
    assert all(
        set(c.to_dict()) == {"check", "column", "value", "threshold", "passed", "message"}
        for c in checks
    )


def test_quality_checks_pass_on_clean_window() -> None:
    rng = np.random.default_rng(1)
    ref = {
        "x": reference_profile_numeric(rng.normal(size=5000)),
        "c": reference_profile_categorical(rng.choice(list("abc"), 5000)),
    }
    cur = {
        "x": profile_numeric(rng.normal(size=2000), ref["x"].edges),
        "c": profile_categorical(rng.choice(list("abc"), 2000)),
    }
    assert all(
        c.passed
        for c in quality_checks(ref, cur, expected_columns=["x", "c"], seen_columns=["x", "c"])
    )
    mismatch = quality_checks(ref, {"x": cur["c"], "c": cur["c"]})
    assert any(c.check == "kind_mismatch" and not c.passed for c in mismatch)


def _correlated(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame(
        {"a": a, "b": b, "c": rng.normal(size=n), "seg": rng.choice(["x", "y", "z"], n)}
    )


def test_domain_classifier_sees_broken_correlation() -> None:
    rng = np.random.default_rng(2)
    ref, cur = _correlated(rng, 3000, 0.9), _correlated(rng, 3000, -0.9)
    res = domain_classifier_drift(ref, cur, max_rows=1500)
    assert res.drifted and res.statistic > 0.8
    assert {f for f, _ in res.top_features[:2]} == {"a", "b"}
    clean = domain_classifier_drift(ref, _correlated(rng, 3000, 0.9), max_rows=1500)
    assert not clean.drifted and clean.statistic < clean.threshold
    assert clean.to_dict()["top_features"][0]["feature"] in {"a", "b", "c", "seg"}


def test_pca_reconstruction_sees_broken_correlation() -> None:
    rng = np.random.default_rng(3)
    ref = _correlated(rng, 4000, 0.95)
    res = pca_reconstruction_drift(ref, _correlated(rng, 2000, -0.95))
    assert res.drifted and res.statistic > res.details["reference_error"]
    assert {f for f, _ in res.top_features[:2]} == {"a", "b"}
    clean = pca_reconstruction_drift(ref, _correlated(rng, 2000, 0.95))
    assert not clean.drifted


def test_multivariate_small_and_arrays() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    small = multivariate_drift(x, x + 1, columns=["p", "q", "r"])
    assert [r.status for r in small] == ["insufficient_data", "insufficient_data"]
    big = pca_reconstruction_drift(rng.normal(size=(600, 3)), rng.normal(size=(300, 3)))
    assert big.status == "ok" and not big.drifted


def test_rank_auc_equals_sklearn_roc_auc() -> None:
    from sklearn.metrics import roc_auc_score

    r = np.random.default_rng(3)
    for n in (10, 500, 3000):
        y = (r.random(n) < 0.4).astype(float)
        for score in (r.random(n) + y * 0.3, np.round(r.random(n) * 5) + y):  # ties in the 2nd
            assert rank_auc(y, score) == pytest.approx(roc_auc_score(y, score), rel=1e-12)
    with pytest.raises(InputError):
        rank_auc(np.zeros(4), np.arange(4.0))


def test_columns_without_a_drift_verdict_are_quality_findings() -> None:
    from monitor.statistics import detect_drift
    from monitor.statistics.quality import verdict_checks

    rng = np.random.default_rng(3)
    ref = {"a": rng.normal(size=500), "b": rng.normal(size=500), "c": rng.normal(size=500)}
    cur = {"a": rng.normal(size=300), "b": np.full(300, np.nan), "c": rng.normal(size=10)}
    res = detect_drift(ref, cur)
    checks = verdict_checks(res.columns, ["a", "b", "c", "d"])
    assert [c.column for c in checks] == ["b", "c", "d"]
    assert all(c.check == "no_drift_verdict" and not c.passed for c in checks)
    assert "not enough data" in checks[0].message and "no values" in checks[2].message
