"""Drift from profiles: exact where promised, within the stated bounds elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.errors import InputError
from monitor.statistics import apply_default_policy, detect_drift, drift_from_profiles
from monitor.statistics.columns import ColumnPair
from monitor.statistics.profile_drift import KS_ASYMPTOTIC_MIN_N, binned_ks, ks_sf_asymptotic
from monitor.statistics.profiles import (
    bin_counts,
    profile_categorical,
    profile_numeric,
    reference_profile_categorical,
    reference_profile_numeric,
)
from monitor.statistics.registry import get_method

rng = np.random.default_rng(9)
CAT_REF = rng.choice(list("abcdefg"), 3000, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05])
CAT_CUR = rng.choice(list("abcdefgh"), 2500, p=[0.25, 0.2, 0.15, 0.15, 0.1, 0.05, 0.05, 0.05])


@pytest.mark.parametrize(
    "method",
    [
        "chisquare",
        "z",
        "psi",
        "kl_div",
        "jensenshannon",
        "hellinger",
        "linf",
        "g_test",
        "chi2_contingency",
        "TVD",
    ],
)
def test_categorical_profiles_are_exact(method: str) -> None:
    ref, cur = reference_profile_categorical(CAT_REF), profile_categorical(CAT_CUR)
    prof = drift_from_profiles(ref, cur, method=method, policy="evidently")
    raw = detect_drift(
        {"c": CAT_REF}, {"c": CAT_CUR}, policy="evidently", method=method, column_kinds={"c": "cat"}
    ).columns[0]
    assert prof.statistic == pytest.approx(raw.statistic, rel=1e-9)
    if method != "TVD":  # TVD's permutation p-value: same law, another random stream
        assert prof.score == pytest.approx(raw.score, rel=1e-9)
        assert prof.drifted == raw.drifted
    assert prof.effect_size == pytest.approx(raw.effect_size, rel=1e-12)


@pytest.mark.parametrize("method", ["psi", "kl_div", "jensenshannon", "hellinger", "linf"])
def test_numeric_binned_methods_equal_raw_data_on_the_same_bins(method: str) -> None:
    x, y = rng.normal(0, 1, 4000), rng.normal(0.2, 1.1, 3000)
    ref = reference_profile_numeric(x)
    cur = profile_numeric(y, ref.edges)
    edges = np.asarray(ref.edges)
    binned = ColumnPair.from_counts(
        dict(enumerate(bin_counts(x, edges).tolist())),
        dict(enumerate(bin_counts(y, edges).tolist())),
    )
    expected = get_method(method).func(binned).statistic
    assert drift_from_profiles(ref, cur, method=method).statistic == pytest.approx(
        expected, rel=1e-12
    )


@pytest.mark.parametrize("method", ["psi", "jensenshannon", "chisquare", "z"])
def test_discrete_numeric_profiles_match_evidently_values(method: str) -> None:
    # <= n_bins distinct values: one bin per value, which is Evidently's own binning
    # for a reference with <= 20 distinct values - the profile value is Evidently's value.
    values = [0.0, 1.0, 2.0] if method == "z" else [0.0, 1.0, 2.0, 3.0, 5.0, 8.0]
    x = rng.choice(values, 2000)
    y = rng.choice(values, 1500, p=None)
    if method == "z":
        x, y = x[x < 2], y[y < 2]
    ref = reference_profile_numeric(x)
    prof = drift_from_profiles(
        ref, profile_numeric(y, ref.edges), method=method, policy="evidently"
    )
    raw = detect_drift(
        {"v": x}, {"v": y}, method=method, policy="evidently", column_kinds={"v": "num"}
    ).columns[0]
    assert prof.score == pytest.approx(raw.score, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31),
    st.floats(-0.5, 0.5),
    st.floats(0.5, 2.0),
    st.sampled_from(["normal", "exponential", "t3"]),
)
def test_ks_and_wasserstein_within_stated_bounds(
    seed: int, shift: float, scale: float, dist: str
) -> None:
    r = np.random.default_rng(seed)
    draw = {
        "normal": r.normal,
        "exponential": lambda size: r.exponential(1.0, size),
        "t3": lambda size: r.standard_t(3, size),
    }[dist]
    x, y = draw(size=3000), draw(size=2000) * scale + shift
    ref = reference_profile_numeric(x)
    cur = profile_numeric(y, ref.edges)
    ks = drift_from_profiles(ref, cur, method="ks", policy="evidently")
    d_true = stats.ks_2samp(x, y).statistic
    assert ks.statistic <= d_true + 1e-12 <= ks.statistic + ks.error_bound + 1e-12
    w = drift_from_profiles(ref, cur, method="wasserstein", policy="evidently")
    w_true = stats.wasserstein_distance(x, y) / max(np.std(x), 0.001)
    assert abs(w.statistic - w_true) <= w.error_bound + 1e-12


def test_t_test_from_moments_is_exact() -> None:
    x, y = rng.normal(0, 1, 5000), rng.normal(0.05, 1, 4000)
    ref = reference_profile_numeric(x)
    prof = drift_from_profiles(
        ref, profile_numeric(y, ref.edges), method="t_test", policy="evidently"
    )
    assert prof.p_value == pytest.approx(stats.ttest_ind(x, y).pvalue, rel=1e-9)


def test_merged_windows_give_the_drift_of_the_union() -> None:
    x = rng.normal(0, 1, 5000)
    parts = [rng.normal(0.1, 1, 1000) for _ in range(4)]
    ref = reference_profile_numeric(x)
    merged = profile_numeric(parts[0], ref.edges)
    for p in parts[1:]:
        merged = merged.merge(profile_numeric(p, ref.edges))
    whole = profile_numeric(np.concatenate(parts), ref.edges)
    for method in ("psi", "ks", "wasserstein", "t_test"):
        a = drift_from_profiles(ref, merged, method=method, policy="evidently")
        b = drift_from_profiles(ref, whole, method=method, policy="evidently")
        assert a.statistic == pytest.approx(b.statistic, rel=1e-9)


def test_default_policy_from_profiles() -> None:
    x = rng.normal(0, 1, 20_000)
    ref = reference_profile_numeric(x)
    shifted = drift_from_profiles(ref, profile_numeric(rng.normal(0.3, 1, 5000), ref.edges))
    clean = drift_from_profiles(ref, profile_numeric(rng.normal(0, 1, 5000), ref.edges))
    tiny = drift_from_profiles(ref, profile_numeric(rng.normal(0.03, 1, 200_000), ref.edges))
    assert shifted.drifted and shifted.method == "ks_mw" and shifted.effect_ci[0] > 0.1
    assert not clean.drifted and not tiny.drifted
    small = drift_from_profiles(ref, profile_numeric([1.0, 2.0], ref.edges))
    assert small.status == "insufficient_data"
    records = [shifted, clean, tiny]
    apply_default_policy(records)
    assert [r.drifted for r in records] == [True, False, False]
    assert all(r.p_value_adjusted is not None for r in records)


def test_sampled_methods_and_errors() -> None:
    x, y = rng.normal(0, 1, 5000), rng.normal(1, 1, 5000)
    ref = reference_profile_numeric(x)
    res = drift_from_profiles(
        ref, profile_numeric(y, ref.edges), method="anderson", policy="evidently"
    )
    assert res.drifted and "samples" in res.message
    with pytest.raises(InputError):
        drift_from_profiles(ref, profile_categorical(["a"]))
    with pytest.raises(InputError):
        drift_from_profiles(ref, profile_numeric(y, [0.0, 1.0]))
    with pytest.raises(InputError, match="available"):
        drift_from_profiles(ref, ref, method="nope")


@pytest.mark.parametrize("n", [KS_ASYMPTOTIC_MIN_N, 47_619, 400_000])
def test_asymptotic_ks_p_value_is_within_its_stated_error_of_the_exact_one(n: int) -> None:
    d = np.linspace(0.2, 3.0, 60) / np.sqrt(n)  # p from ~1 down to ~1e-7
    exact = stats.kstwo.sf(d, n)
    approx = np.array([ks_sf_asymptotic(float(v), n) for v in d])
    assert np.max(np.abs(approx - exact)) < 3e-6
    tail = exact > 1e-6
    assert np.max(np.abs(approx - exact)[tail] / exact[tail]) < 2e-3
    # the uncorrected limit would not meet the documented bound
    assert np.max(np.abs(stats.kstwobign.sf(d * np.sqrt(n)) - exact)) > 3e-6


def test_binned_ks_switches_to_the_asymptotic_form_only_for_large_samples() -> None:
    x = rng.normal(0, 1, 60_000)
    ref = reference_profile_numeric(x)
    for m in (2_000, 40_000):  # effective n ~1.9k (exact) and ~24k (asymptotic)
        cur = profile_numeric(rng.normal(0.01, 1, m), ref.edges)
        d, p, _ = binned_ks(ref, cur)
        n = round(60_000 * m / (60_000 + m))
        exact = float(stats.kstwo.sf(d, n))
        if n < KS_ASYMPTOTIC_MIN_N:
            assert p == exact
        else:
            assert p == pytest.approx(exact, abs=3e-6)
