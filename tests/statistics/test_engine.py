"""detect_drift: Evidently policy parity through DataDriftPreset, default policy decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.errors import InputError
from monitor.statistics.effect import debiased_tvd, tvd_null
from monitor.statistics.engine import detect_drift, infer_column_kind
from monitor.statistics.policy import DefaultPolicy, benjamini_hochberg
from monitor.statistics.registry import get_method


def frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": rng.normal(shift, 1, n),
            "skewed": rng.lognormal(0, 0.5 + shift, n),
            "few": rng.choice([0.0, 1.0, 2.0, 3.0], n),
            "flag": rng.choice([0, 1], n, p=[0.7 - shift / 2, 0.3 + shift / 2]),
            "cat": rng.choice(list("abcdef"), n, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]),
            "counts": rng.poisson(40 + 10 * shift, n),
            "with_nan": np.where(rng.random(n) < 0.2, np.nan, rng.normal(shift, 2, n)),
        }
    )


@pytest.mark.parametrize("sizes", [(600, 500), (3000, 800)])
def test_evidently_policy_matches_data_drift_preset(evidently_report, sizes) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(sum(sizes))
    ref, cur = frame(rng, sizes[0]), frame(rng, sizes[1], shift=0.2)
    summary, theirs = evidently_report(ref, cur)
    ours = detect_drift(ref, cur, policy="evidently")
    assert {c.column for c in ours.columns} == set(theirs)
    for c in ours.columns:
        method, threshold, value = theirs[c.column]
        assert method == _display_name(c.method), c.column
        assert c.threshold == threshold
        assert c.score == pytest.approx(value, rel=1e-9), c.column
    assert ours.n_drifted == summary["count"]
    assert ours.share == pytest.approx(summary["share"])


def test_evidently_overrides_match_preset(evidently_report) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    ref, cur = frame(rng, 800), frame(rng, 700, shift=0.1)
    kwargs = {
        "num_method": "psi",
        "cat_method": "jensenshannon",
        "per_column_method": {"num": "anderson"},
        "per_column_threshold": {"num": 0.2},
        "cat_threshold": 0.05,
    }
    _, theirs = evidently_report(ref, cur, **kwargs)
    ours = detect_drift(
        ref,
        cur,
        policy="evidently",
        kind_methods={"num": "psi", "cat": "jensenshannon"},
        methods={"num": "anderson"},
        thresholds={"num": 0.2},
        kind_thresholds={"cat": 0.05},
    )
    for c in ours.columns:
        method, threshold, value = theirs[c.column]
        assert method in (c.method, _display_name(c.method)) and threshold == c.threshold
        assert c.score == pytest.approx(value, rel=1e-9)


def _display_name(name: str) -> str:
    from evidently.legacy.calculations.stattests import registry

    return next(iter(registry._registered_stat_tests[name].values())).display_name


def test_infer_column_kind_follows_evidently() -> None:
    assert infer_column_kind(np.array([1.0, 2.0])) == "num"
    assert infer_column_kind(np.arange(5)) == "cat"
    assert infer_column_kind(np.arange(50)) == "num"
    assert infer_column_kind(np.array([True, False])) == "cat"
    assert infer_column_kind(pd.Series(["a", "b"] * 10)) == "cat"
    assert infer_column_kind(pd.Series([f"id{i}" for i in range(10)])) is None  # text
    assert infer_column_kind(pd.Series(["a", "b"] * 5).astype("category")) == "cat"
    assert infer_column_kind(pd.Series(pd.date_range("2024-01-01", periods=3))) is None
    assert infer_column_kind(pd.Series([1, None, 3], dtype="Int64")) == "cat"
    assert infer_column_kind(pd.Series([None, None], dtype=object)) is None


def test_default_policy_flags_big_shift_only() -> None:
    rng = np.random.default_rng(1)
    n = 20_000
    ref = {
        "big": rng.normal(0, 1, n),
        "tiny": rng.normal(0, 1, n),
        "same": rng.normal(0, 1, n),
        "cat": rng.choice(list("abc"), n, p=[0.5, 0.3, 0.2]),
    }
    cur = {
        "big": rng.normal(0.3, 1, n),
        "tiny": rng.normal(0.04, 1, n),
        "same": rng.normal(0, 1, n),
        "cat": rng.choice(list("abc"), n, p=[0.4, 0.35, 0.25]),
    }
    res = detect_drift(ref, cur)
    by = {c.column: c for c in res.columns}
    assert by["big"].drifted and by["cat"].drifted
    assert not by["same"].drifted
    # 0.04 sd at n=20k is real (tiny p-value) but below the 0.1 sd tolerance
    assert by["tiny"].p_value < 1e-3 and not by["tiny"].drifted
    assert by["big"].effect_ci[0] > 0.2 and by["big"].effect_name == "wasserstein_sd"
    assert by["cat"].effect_size == pytest.approx(0.1, abs=0.02)
    assert res.drifted and res.n_drifted == 2
    assert all(c.p_value_adjusted is not None for c in res.columns)


def test_default_policy_edge_cases() -> None:
    ref = {
        "tiny": [1.0, 2.0, 3.0],
        "const": [5.0] * 100,
        "nan": [np.nan] * 100,
        "unseen": ["a"] * 60 + ["b"] * 40,
        "const_moved": [1.0] * 100,
        "text": [f"t{i}" for i in range(100)],
    }
    cur = {
        "tiny": [1.0, 2.0],
        "const": [5.0] * 80,
        "nan": [1.0] * 80,
        "unseen": ["a"] * 30 + ["b"] * 20 + ["c"] * 30,
        "const_moved": [2.0] * 80,
        "text": [f"u{i}" for i in range(80)],
    }
    res = detect_drift(ref, cur)
    by = {c.column: c for c in res.columns}
    assert by["tiny"].status == "insufficient_data" and not by["tiny"].drifted
    assert "not enough data" in by["tiny"].message
    assert by["nan"].status == "insufficient_data" and by["nan"].n_reference == 0
    assert by["const"].status == "ok" and not by["const"].drifted
    assert by["const"].effect_size == 0.0 and by["const"].p_value == 1.0
    # a constant reference has no sd: the pooled sd scales the effect instead
    assert by["const_moved"].drifted and by["const_moved"].effect_size > 1
    # debiased TVD minus the mean of its permutation null (noise of 3 categories, n ~ 100)
    unseen = by["unseen"]
    ref_c, cur_c = np.array([60, 40, 0]), np.array([30, 20, 30])
    null = tvd_null(ref_c, cur_c, debiased=True)
    d = debiased_tvd(ref_c, cur_c)
    assert 0.3 < d < 0.375  # plug-in 0.375
    assert unseen.drifted and unseen.effect_size == pytest.approx(d - null.mean())
    assert unseen.effect_ci[0] < unseen.effect_size < 0.375 < unseen.effect_ci[1]
    assert "text" in res.skipped
    d = res.to_dict()
    assert d["dataset"]["columns"] == 5 and d["columns"][1]["effect_size"] == 0.0
    assert d["columns"][0]["p_value"] is None and d["columns"][0]["status"] == "insufficient_data"


def test_clean_windows_rarely_flag() -> None:
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(30):
        ref = {f"x{i}": rng.normal(size=2000) for i in range(10)}
        cur = {f"x{i}": rng.normal(size=2000) for i in range(10)}
        flagged += detect_drift(ref, cur).drifted
    assert flagged == 0


def test_errors_and_overrides() -> None:
    ref = {"a": np.arange(100.0), "b": ["x", "y"] * 50}
    cur = {"a": np.arange(100.0) + 3, "c": [1]}
    with pytest.raises(InputError, match="available"):
        detect_drift(ref, {"a": np.arange(10.0)}, method="nope")
    with pytest.raises(InputError, match="no columns in common"):
        detect_drift({"x": [1.0]}, {"y": [1.0]})
    with pytest.raises(InputError, match="missing"):
        detect_drift(ref, cur, columns=["b"])
    with pytest.raises(InputError, match="does not accept"):
        detect_drift(ref, ref, methods={"b": "ks"})
    with pytest.raises(InputError, match="policy"):
        detect_drift(ref, ref, policy="strict")
    res = detect_drift(ref, cur, method="psi", threshold=0.5)
    assert res.columns[0].method == "psi" and res.columns[0].threshold == 0.5
    with pytest.raises(InputError, match="methods for 'cat'"):
        detect_drift({"a": [0.0, 1.0]}, {"a": [0.0, 1.0]}, column_kinds={"a": "cat"}, method="es")


def test_method_errors_become_column_status() -> None:
    res = detect_drift(
        {"a": [1.0] * 50 + [2.0]}, {"a": [1.0] * 40}, policy="evidently", method="es"
    )
    assert res.columns[0].status == "error" and "interquartile" in res.columns[0].message
    assert not res.columns[0].drifted


def test_benjamini_hochberg_matches_reference_values() -> None:
    # scipy.stats.false_discovery_control is the independent reference
    from scipy.stats import false_discovery_control

    p = [0.01, 0.04, 0.03, 0.5, 0.001, 0.2]
    assert benjamini_hochberg(p) == pytest.approx(false_discovery_control(p).tolist())
    assert benjamini_hochberg([]) == []


def test_default_policy_parameters() -> None:
    rng = np.random.default_rng(2)
    ref, cur = {"a": rng.normal(size=5000)}, {"a": rng.normal(0.15, 1, 5000)}
    assert detect_drift(ref, cur).columns[0].drifted
    strict = DefaultPolicy(tolerance={"num": 0.3, "cat": 0.1})
    assert not detect_drift(ref, cur, params=strict).columns[0].drifted
    assert get_method("ks").kind == "p_value"


def test_clean_awkward_windows_do_not_flag() -> None:
    # issue 16, item 7 (a guard; the benchmark measures the rate): heavy tails, zero
    # inflation, a constant and a 500-level column at 1k rows
    rng = np.random.default_rng(12)
    p500 = 1 / np.arange(1, 501)
    p500 /= p500.sum()

    def window(n: int) -> dict[str, np.ndarray]:
        return {
            "t3": rng.standard_t(3, n),
            "heavy": rng.lognormal(0, 2.5, n),
            "zero_inflated": np.where(rng.random(n) < 0.7, 0.0, rng.lognormal(3, 1.5, n)),
            "counts": rng.poisson(30, n).astype(float),
            "const": np.zeros(n),
            "cat500": rng.choice(500, n, p=p500),
        }

    kinds = {"cat500": "cat"}
    flagged = sum(
        detect_drift(window(5_000), window(1_000), column_kinds=kinds).drifted for _ in range(25)
    )
    assert flagged == 0
