"""Profiles: exact merges, serialisation round trips, null/type-error accounting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.errors import InputError
from monitor.statistics.profiles import (
    CategoricalProfile,
    NumericProfile,
    bin_counts,
    merge_profiles,
    merge_samples,
    profile_categorical,
    profile_from_dict,
    profile_numeric,
    reference_edges,
    reference_profile_categorical,
    reference_profile_numeric,
)

floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, max_size=80), st.lists(floats, max_size=80))
def test_numeric_merge_is_exact(a: list[float], b: list[float]) -> None:
    edges = [-10.0, 0.0, 1.0, 100.0]
    pa = profile_numeric(a, edges, sample_size=10, seed=1)
    pb = profile_numeric(b, edges, sample_size=10, seed=2)
    merged = pa.merge(pb)
    whole = profile_numeric(a + b, edges, sample_size=10)
    assert merged.count == whole.count
    assert merged.hist == whole.hist
    assert merged.min == whole.min and merged.max == whole.max
    assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert merged.m2 == pytest.approx(whole.m2, rel=1e-7, abs=1e-3)
    assert len(merged.sample) == min(10, len(a) + len(b))
    assert set(merged.sample) <= set(a + b)


def test_numeric_nulls_and_type_errors() -> None:
    p = profile_numeric([1, 2.5, None, float("nan"), float("inf"), "x", [1], True], [0.0, 3.0])
    assert (p.count, p.nulls, p.invalid) == (3, 3, 2)
    assert p.min == 1.0 and p.max == 2.5
    assert sum(p.hist) == p.count and p.total == 8


def test_histogram_layout_and_edges() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    counts = bin_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]), edges)
    # underflow, [0,1), [1,2], overflow - last inner bin closed like numpy.histogram
    assert counts.tolist() == [1, 2, 2, 1]
    inner = np.histogram(np.array([0.0, 0.5, 1.0, 2.0]), bins=edges)[0]
    assert counts[1:-1].tolist() == inner.tolist()
    # discrete reference: one bin per distinct value
    e = reference_edges(np.array([1.0, 1.0, 2.0, 3.0, 3.0]), n_bins=10)
    assert bin_counts(np.array([1.0, 2.0, 3.0, 3.0]), e).tolist() == [0, 1, 1, 2, 0]
    constant = reference_profile_numeric([5.0] * 10)
    assert constant.hist[1] == 10 and constant.hist[0] == constant.hist[-1] == 0


def test_reference_profile_quantile_bins() -> None:
    x = np.random.default_rng(0).normal(size=10_000)
    p = reference_profile_numeric(x, n_bins=20)
    inner = np.array(p.hist[1:-1])
    assert len(inner) == 20 and inner.min() >= 490 and inner.max() <= 510
    assert p.mean == pytest.approx(x.mean()) and p.std == pytest.approx(x.std())


def test_merged_sample_is_uniform() -> None:
    # population a = 0..899 (sample 50), b = 900..999 (sample 50): merged draws of size 50
    # must take ~10% from b; a biased merge (e.g. 50/50) would fail this by far.
    rng = np.random.default_rng(3)
    a_pop, b_pop = np.arange(900.0), np.arange(900.0, 1000.0)
    from_b = []
    for _ in range(400):
        sa = rng.choice(a_pop, 50, replace=False).tolist()
        sb = rng.choice(b_pop, 50, replace=False).tolist()
        m = merge_samples(sa, 900, sb, 100, 50, rng)
        assert len(set(m)) == 50
        from_b.append(sum(v >= 900 for v in m))
    assert np.mean(from_b) == pytest.approx(5.0, abs=0.3)
    # hypergeometric law of the count
    expected = stats.hypergeom(1000, 100, 50).pmf(np.arange(0, 51))
    observed = np.bincount(from_b, minlength=51)[:51] / 400
    assert np.abs(observed - expected).sum() < 0.2


def test_categorical_profile_and_merge() -> None:
    a = profile_categorical(["a", "b", None, "a", 3, 3.0, float("nan"), [1]])
    assert a.counts == {"a": 2, "b": 1, "3": 2}
    assert (a.count, a.nulls, a.invalid) == (5, 2, 1)
    b = profile_categorical(np.array(["c", "a"]))
    m = a.merge(b)
    assert m.counts == {"a": 3, "b": 1, "3": 2, "c": 1} and m.count == 7
    assert profile_categorical(np.array([True, False, True])).counts == {"True": 2, "False": 1}
    assert profile_categorical(np.array([1.0, 2.0, np.nan])).counts == {"1": 1, "2": 1}


def test_categorical_bound_folds_rarest() -> None:
    p = profile_categorical(["a"] * 5 + ["b"] * 3 + ["c", "d"], max_categories=2)
    assert p.counts == {"a": 5, "b": 3} and p.other == 2 and p.count == 10


def test_round_trip_json() -> None:
    n = reference_profile_numeric(np.random.default_rng(1).normal(size=500), sample_size=20)
    c = reference_profile_categorical(["x", "y", "x"])
    for p in (n, c):
        back = profile_from_dict(json.loads(json.dumps(p.to_dict())))
        assert back == p
    with pytest.raises(InputError):
        profile_from_dict({"type": "nope"})
    with pytest.raises(InputError):
        NumericProfile.from_dict({"type": "numeric"})
    with pytest.raises(InputError):
        CategoricalProfile.from_dict({"type": "categorical", "counts": 3})


def test_merge_rejects_other_edges() -> None:
    a = profile_numeric([1.0], [0.0, 2.0])
    b = profile_numeric([1.0], [0.0, 3.0])
    with pytest.raises(InputError):
        a.merge(b)
    with pytest.raises(InputError):
        profile_numeric([1.0], [2.0, 1.0])
    with pytest.raises(InputError):
        reference_profile_numeric([None, float("nan")])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(floats, max_size=60), min_size=1, max_size=6))
def test_multi_way_merge_equals_a_profile_of_the_union(parts: list[list[float]]) -> None:
    edges = [-10.0, 0.0, 1.0, 100.0]
    profiles = [profile_numeric(p, edges, sample_size=10, seed=i) for i, p in enumerate(parts)]
    merged = merge_profiles(profiles)
    union = [v for p in parts for v in p]
    whole = profile_numeric(union, edges, sample_size=10)
    assert isinstance(merged, NumericProfile)
    assert (merged.count, merged.hist, merged.min, merged.max) == (
        whole.count,
        whole.hist,
        whole.min,
        whole.max,
    )
    assert merged.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-6)
    assert merged.m2 == pytest.approx(whole.m2, rel=1e-9, abs=1e-3)
    assert len(merged.sample) == min(10, len(union))
    assert all(v in union for v in merged.sample)


def test_multi_way_merge_sample_is_uniform_over_the_union() -> None:
    # 3 windows of very different sizes, values tagged by window: the merged sample must take
    # each window's share of the union (a chi-square test over many merges)
    edges = [0.0, 1.0, 2.0, 3.0]
    sizes = [50, 300, 1650]
    taken = np.zeros(3)
    for trial in range(300):
        profiles = [
            profile_numeric(np.full(n, float(i)), edges, sample_size=20, seed=trial * 3 + i)
            for i, n in enumerate(sizes)
        ]
        merged = merge_profiles(profiles, np.random.default_rng(trial))
        assert isinstance(merged, NumericProfile)
        taken += np.bincount(np.asarray(merged.sample, dtype=int), minlength=3)
    expected = taken.sum() * np.asarray(sizes) / sum(sizes)
    assert stats.chisquare(taken, expected).pvalue > 1e-3


def test_multi_way_categorical_merge_and_errors() -> None:
    parts = [profile_categorical(["a", "b", None]), profile_categorical(["b", "c", "c", "d"])]
    merged = merge_profiles(parts)
    assert isinstance(merged, CategoricalProfile)
    assert merged.counts == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert (merged.count, merged.nulls) == (6, 1)
    folded = merge_profiles([profile_categorical(list("abc"), max_categories=2)] * 3)
    assert isinstance(folded, CategoricalProfile) and folded.count == 9
    assert len(folded.counts) == 2 and folded.other == 3
    with pytest.raises(InputError):
        merge_profiles([])
    with pytest.raises(InputError):
        merge_profiles([parts[0], profile_numeric([1.0], [0.0, 2.0])])
    with pytest.raises(InputError):
        merge_profiles([profile_numeric([1.0], [0.0, 2.0]), profile_numeric([1.0], [0.0, 3.0])])
