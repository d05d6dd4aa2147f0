"""Method-level checks against independent references (scipy, published definitions)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.errors import InputError
from monitor.statistics.columns import ColumnPair
from monitor.statistics.effect import numeric_effect, tvd_with_se
from monitor.statistics.registry import available_methods, get_method


def _p(name: str, ref, cur, kind: str = "cat") -> float:  # type: ignore[no-untyped-def]
    out = get_method(name).func(ColumnPair(kind, ref, cur))
    assert out.p_value is not None
    return out.p_value


def test_evidently_chisquare_over_flags_clean_windows_contingency_does_not() -> None:
    # 5 levels, n = 1000 per side, no change at all: a test at level 0.05 should flag ~5%.
    rng = np.random.default_rng(0)
    p = [0.3, 0.25, 0.2, 0.15, 0.1]
    gof = contingency = 0
    reps = 400
    for _ in range(reps):
        ref, cur = rng.choice(5, 1000, p=p), rng.choice(5, 1000, p=p)
        gof += _p("chisquare", ref, cur) < 0.05
        contingency += _p("chi2_contingency", ref, cur) < 0.05
    assert 0.25 < gof / reps < 0.42  # Evidently's definition: about a third
    assert contingency / reps < 0.08


def test_chi2_contingency_equals_scipy_and_pools_rare_categories() -> None:
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 40 + ["b"] * 40 + ["c"] * 15 + ["d"] * 5
    table = np.array([[50, 30, 20, 0], [40, 40, 15, 5]])
    # "d" has expected count 2.5 < 5: pooled with nothing else rare -> its own pooled column
    expected = stats.chi2_contingency(table, correction=False)
    out = get_method("chi2_contingency").func(ColumnPair("cat", ref, cur))
    assert out.statistic == pytest.approx(expected.statistic)
    assert out.p_value == pytest.approx(expected.pvalue)
    same = get_method("chi2_contingency").func(ColumnPair("cat", ["a"] * 10, ["a"] * 10))
    assert same.p_value == 1.0


def test_linf_and_tvd_definitions() -> None:
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 30 + ["b"] * 50 + ["c"] * 20
    assert get_method("linf").func(ColumnPair("cat", ref, cur)).statistic == pytest.approx(0.3)
    tvd, se = tvd_with_se(np.array([60, 40, 0]), np.array([30, 50, 20]))
    assert tvd == pytest.approx(0.3) and se > 0
    out = get_method("TVD").func(ColumnPair("cat", ref, cur))
    assert out.statistic == pytest.approx(0.3) and out.p_value < 0.01


def test_ks_large_samples_use_scipy_asymptotics() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30_000), rng.normal(0.02, 1, 20_000).round(2)
    out = get_method("ks").func(ColumnPair("num", x, y))
    ref = stats.ks_2samp(x, y)
    assert out.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert out.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_ks_t_is_bonferroni_of_ks_and_welch() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, 3000), rng.uniform(0.03, 1.03, 3000)
    out = get_method("ks_t").func(ColumnPair("num", x, y))
    p_ks = stats.ks_2samp(x, y).pvalue
    p_t = stats.ttest_ind(x, y, equal_var=False).pvalue
    assert out.p_value == pytest.approx(min(1.0, 2 * min(p_ks, p_t)))


def test_wasserstein_effect_matches_scipy_and_shift() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, 50_000)
    y = x[:20_000] + 0.5  # an exact shift of 0.25 sd
    eff = numeric_effect(ColumnPair("num", x, y))
    w = stats.wasserstein_distance(x, y) / np.std(x)
    assert eff.value == pytest.approx(w, rel=1e-9)
    assert eff.ci[0] < eff.value < eff.ci[1]
    # delta-method se of a pure shift is the se of the mean difference
    se_mean = np.sqrt(np.var(x) / x.size + np.var(y) / y.size) / np.std(x)
    assert eff.se == pytest.approx(se_mean, rel=0.2)


def test_registry_metadata() -> None:
    for name in available_methods():
        m = get_method(name)
        assert m.kind in ("p_value", "distance") and m.column_kinds
        assert set(m.column_kinds) <= {"num", "cat"} and m.default_threshold > 0
    assert "ks" in available_methods("num") and "ks" not in available_methods("cat")
    with pytest.raises(InputError, match="unknown drift method 'x'; available: TVD"):
        get_method("x")
    with pytest.raises(InputError):
        ColumnPair("text", [1], [2])  # type: ignore[arg-type]


def test_import_hygiene() -> None:
    # monitor.statistics needs numpy/scipy only; sklearn is imported lazily by multivariate.
    import subprocess
    import sys

    code = (
        "import sys, monitor.statistics, monitor.statistics.multivariate, "
        "monitor.statistics.profiles; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'sklearn', 'evidently', 'plotly', 'click'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
