"""Method-level checks against independent references (scipy, published definitions)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.errors import InputError
from monitor.statistics import detect_drift
from monitor.statistics.columns import ColumnPair
from monitor.statistics.effect import categorical_effect, numeric_effect, tvd_null, tvd_with_se
from monitor.statistics.methods_numeric import (
    cauchy_combination,
    grouped_counts,
    mann_whitney_grouped,
)
from monitor.statistics.registry import available_methods, get_method


def _p(name: str, ref, cur, kind: str = "cat", pair=None) -> float:  # type: ignore[no-untyped-def]
    out = get_method(name).func(pair or ColumnPair(kind, ref, cur))
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
    # "d" has expected count 2.5 < 5; alone it would still be a column below 5, so it is
    # merged with the smallest other category, "c"
    table = np.array([[50, 30, 20], [40, 40, 20]])
    expected = stats.chi2_contingency(table, correction=False)
    out = get_method("chi2_contingency").func(ColumnPair("cat", ref, cur))
    assert out.statistic == pytest.approx(expected.statistic)
    assert out.p_value == pytest.approx(expected.pvalue)
    same = get_method("chi2_contingency").func(ColumnPair("cat", ["a"] * 10, ["a"] * 10))
    assert same.p_value == 1.0


def test_chi2_contingency_does_not_explode_on_one_unseen_row() -> None:
    # issue 16: one row of a new category among 1,000 against 100k reference rows gave
    # p = 1.9e-22 (an expected count of 0.01 in its own column)
    rng = np.random.default_rng(16)
    ref = rng.choice(list("abcde"), 100_000)
    cur = np.append(rng.choice(list("abcde"), 999), "new")
    assert _p("chi2_contingency", ref, cur) > 0.01
    # a new category that matters is still its own column and is detected
    cur = np.append(rng.choice(list("abcde"), 900), ["new"] * 100)
    assert _p("chi2_contingency", ref, cur) < 1e-6


def test_mann_whitney_from_groups_equals_scipy_with_ties() -> None:
    rng = np.random.default_rng(4)
    for x, y in (
        (rng.poisson(5, 300).astype(float), rng.poisson(5.4, 200).astype(float)),
        (rng.normal(size=300), rng.normal(0.1, 1, 250)),
        (np.zeros(50), np.r_[np.zeros(40), np.ones(3)]),
    ):
        u, p = mann_whitney_grouped(*grouped_counts(ColumnPair("num", x, y)))
        ref = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        assert u == ref.statistic and p == pytest.approx(ref.pvalue, rel=1e-9)


def test_cauchy_combination_reference_values() -> None:
    # identical p-values combine to themselves; independent uniforms stay uniform (Liu & Xie)
    assert cauchy_combination([0.01, 0.01]) == pytest.approx(0.01)
    assert cauchy_combination([0.3, 0.7]) == pytest.approx(0.5)
    assert cauchy_combination([1e-30, 0.5]) == pytest.approx(2e-30)
    assert cauchy_combination([1.0, 1.0]) == 1.0 and cauchy_combination([0.0, 0.9]) == 0.0
    u = np.random.default_rng(5).random((20_000, 2))
    combined = np.array([cauchy_combination(list(r)) for r in u])
    assert np.mean(combined <= 0.05) == pytest.approx(0.05, abs=0.006)


def test_ks_mw_is_ks_and_mann_whitney_combined() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.uniform(0, 1, 3000), rng.uniform(0.03, 1.03, 2000)
    out = get_method("ks_mw").func(ColumnPair("num", x, y))
    p_ks = stats.ks_2samp(x, y).pvalue
    p_mw = stats.mannwhitneyu(x, y, method="asymptotic").pvalue
    assert out.p_value == pytest.approx(cauchy_combination([p_ks, p_mw]), rel=1e-9)
    assert out.statistic == pytest.approx(stats.ks_2samp(x, y).statistic)


def test_ks_mw_is_calibrated_on_heavy_tails_where_ks_t_is_not() -> None:
    # issue 16, item 1: a lognormal with sigma 2.5 (extreme outliers), reference 20k, current
    # 1k, no change. Welch's t half of ks_t fires far above its level; ks_mw is rank-based.
    rng = np.random.default_rng(7)
    draws = 300
    ks_mw = ks_t = 0
    for _ in range(draws):
        pair = ColumnPair("num", rng.lognormal(0, 2.5, 20_000), rng.lognormal(0, 2.5, 1000))
        ks_mw += _p("ks_mw", None, None, pair=pair) <= 0.05
        ks_t += _p("ks_t", None, None, pair=pair) <= 0.05
    assert ks_t / draws > 0.12  # the defect: ~2.5x its level
    assert 0.02 <= ks_mw / draws <= 0.08  # nominal 0.05 (binomial 99% interval ~0.02-0.08)


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


def _counts(codes: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(codes, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def test_tvd_lower_bound_is_not_biased_by_many_levels() -> None:
    # issue 16, item 2: 500 levels, no change, 1k current rows: the old debiased bound exceeded
    # the 0.02 tolerance in 100 of 100 draws (median 0.046)
    rng = np.random.default_rng(8)
    p = 1 / np.arange(1, 501)
    p /= p.sum()
    lows, values = [], []
    for _ in range(30):
        pair = ColumnPair.from_counts(
            _counts(rng.choice(500, 5000, p=p)), _counts(rng.choice(500, 1000, p=p))
        )
        effect = categorical_effect(pair)
        assert tvd_with_se(pair.categories.ref, pair.categories.cur)[0] > 0.2  # plug-in noise
        lows.append(effect.ci[0])
        values.append(effect.value)
    assert max(lows) <= 0.02 and np.median(values) < 0.01


def test_true_tvd_below_tolerance_is_not_flagged() -> None:
    # issue 16, item 2: at 10k rows a true TV of 0.01 was flagged with CI (0.025, 0.076)
    rng = np.random.default_rng(9)
    p = 1 / np.arange(1, 201)
    p /= p.sum()
    q = p.copy()
    q[0] -= 0.01
    q[1] += 0.01  # total variation exactly 0.01
    flagged = 0
    for _ in range(20):
        ref = {"c": rng.choice(200, 10_000, p=p)}
        cur = {"c": rng.choice(200, 10_000, p=q)}
        res = detect_drift(ref, cur, column_kinds={"c": "cat"}).columns[0]
        assert res.effect_ci[0] <= 0.02 < res.effect_ci[1]
        flagged += res.drifted
    assert flagged == 0


def test_tvd_null_has_the_exact_permutation_law() -> None:
    # two categories: TVD = |a/n_r - (t - a)/n_c| with a hypergeometric (scipy: the reference)
    ref, cur = np.array([30, 170]), np.array([20, 80])
    t, n_r, n_c = 50, 200, 100
    a = np.arange(0, t + 1)
    law = stats.hypergeom(n_r + n_c, t, n_r).pmf(a)
    exact_mean = float(np.dot(law, np.abs(a / n_r - (t - a) / n_c)))
    null = tvd_null(ref, cur, draws=20_000)
    assert null.mean() == pytest.approx(exact_mean, rel=0.02)
    assert np.all(np.diff(null) >= 0)  # sorted
    assert np.array_equal(tvd_null(ref, cur), tvd_null(ref, cur))  # seeded: deterministic
