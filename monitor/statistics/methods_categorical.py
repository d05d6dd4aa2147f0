"""Drift tests on category counts: Evidently's set plus a proper contingency chi-square.

Evidently's ``chisquare`` is a *goodness-of-fit* test of the current counts against reference
shares treated as known truth; it ignores the reference's own sampling noise, so at equal sizes
its statistic is about twice a correct one's and it flags clean windows far more often than its
nominal level (about a third of clean 5-level windows at n=1000 in our measurements). We keep it
under its name for parity and add ``chi2_contingency``, Pearson's test of homogeneity on the
2 x K table, which treats both samples as samples; the default policy uses that one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from monitor.errors import InputError

from .columns import ColumnPair
from .registry import MethodOutput, register

TVD_PERMUTATIONS = 1000
"""Evidently's number of permutations for the TVD p-value."""
TVD_EXACT_MAX = 50_000
"""Up to this many values in total, TVD permutations replay Evidently's exact random stream
(``np.random.seed(0)`` then ``choice`` without replacement); above, we draw the permuted
reference counts directly (multivariate hypergeometric, same law, a different stream)."""
MIN_EXPECTED = 5.0
"""Categories with an expected count below this are pooled before a chi-square test."""


def _sorted_keys(keys: list[object]) -> list[object]:
    try:
        return sorted(keys)  # type: ignore[type-var]
    except TypeError:  # mixed types
        return sorted(keys, key=str)


@register("chisquare", kind="p_value", column_kinds=("cat", "num"), default_threshold=0.05)
def chisquare(pair: ColumnPair) -> MethodOutput:
    """Evidently's chi-square: current counts vs reference counts scaled to the current size.

    A goodness-of-fit test that treats the reference shares as exact (see the module
    docstring); prefer ``chi2_contingency``. Unseen categories give an infinite statistic.
    """
    cats = pair.categories
    f_exp = cats.ref * (pair.n_cur / pair.n_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.chisquare(cats.cur, f_exp)
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register("z", kind="p_value", column_kinds=("cat", "num"), default_threshold=0.05)
def z_test(pair: ColumnPair) -> MethodOutput:
    """Two-proportion z test of the share of the first (sorted) category against the rest."""
    cats = pair.categories
    if pair.ref_nunique == 1 and pair.cur_nunique == 1 and len(cats.keys) == 1:
        return MethodOutput(0.0, 1.0)
    first = cats.keys.index(_sorted_keys(cats.keys)[0])
    n1, n2 = pair.n_ref, pair.n_cur
    p1 = float(n1 - cats.ref[first]) / n1
    p2 = float(n2 - cats.cur[first]) / n2
    big_p = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(big_p * (1 - big_p) * (1.0 / n1 + 1.0 / n2))
    # Evidently's formula (1 - cdf, not sf): identical digits, including its underflow to 0.
    p = 2 * (1 - stats.norm.cdf(np.abs(z)))
    return MethodOutput(float(z), float(p))


@register("fisher_exact", kind="p_value", column_kinds=("cat",), default_threshold=0.1)
def fisher_exact(pair: ColumnPair) -> MethodOutput:
    """Fisher's exact test on the 2x2 table of a binary column.

    Evidently also demands equally long samples; the test does not need that, so we don't.
    """
    cats = pair.categories
    if len(cats.keys) > 2:
        raise InputError("fisher_exact needs a binary column (at most 2 categories)")
    ref = np.append(cats.ref, [0] * (2 - len(cats.keys)))
    cur = np.append(cats.cur, [0] * (2 - len(cats.keys)))
    res = stats.fisher_exact(np.array([[cur[1], cur[0]], [ref[1], ref[0]]]))
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register("g_test", kind="p_value", column_kinds=("cat",), default_threshold=0.1)
def g_test(pair: ColumnPair) -> MethodOutput:
    """G (log-likelihood ratio) goodness-of-fit test of current counts vs reference counts.

    Evidently passes the *unscaled* reference counts as expected frequencies, which scipy
    rejects unless both sides have the same size; we scale them to the current size (as its
    ``chisquare`` does), which leaves the equal-size case - the only one Evidently computes -
    unchanged.
    """
    cats = pair.categories
    f_exp = cats.ref * (pair.n_cur / pair.n_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.power_divergence(cats.cur, f_exp, lambda_="log-likelihood")
    return MethodOutput(float(res.statistic), float(res.pvalue))


def _tvd_numerator(
    a: NDArray[np.int64], b: NDArray[np.int64], n_a: int, n_b: int
) -> NDArray[np.int64]:
    """``2 * n_a * n_b * TVD`` in exact integers, so permutations that tie the observed
    distance are recognised as ties (in floats they differ by an ulp, depending on the order
    of the sum)."""
    return np.abs(a * n_b - b * n_a).sum(axis=-1)


def _first_seen(codes: NDArray[np.int64], k: int) -> list[int]:
    """Distinct codes in order of first appearance (pandas' ``unique`` order)."""
    first = np.full(k, codes.size, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size - 1, -1, -1)  # last write = first index
    present = np.flatnonzero(first < codes.size)
    return present[np.argsort(first[present], kind="stable")].tolist()


def _evidently_tvd(
    keys: list[object],
    ref_order: list[int],
    cur_order: list[int],
    a: NDArray[np.int64],
    b: NDArray[np.int64],
    n_a: int,
    n_b: int,
) -> float:
    """TVD summed in the order Evidently sums it: over ``set(ref keys) | set(cur keys)``.

    Permutations often tie the observed distance exactly; whether Evidently counts a tie
    depends on the rounding of its float sum, which depends on that set's iteration order.
    Rebuilding the same sets from the same values in the same insertion order reproduces it.
    """
    union = set([keys[i] for i in ref_order]) | set([keys[i] for i in cur_order])
    pos = {key: i for i, key in enumerate(keys)}
    idx = np.fromiter((pos[key] for key in union), np.int64, len(union))
    return float(0.5 * np.sum(np.abs(a[idx] / n_a - b[idx] / n_b)))


@register("TVD", kind="p_value", column_kinds=("cat",), default_threshold=0.1)
def tvd_permutation(pair: ColumnPair) -> MethodOutput:
    """Total variation distance with a 1,000-permutation p-value (Evidently's ``TVD``).

    The statistic is the distance; the p-value is the share of permutations whose distance is
    at least the observed one. Up to ``TVD_EXACT_MAX`` values the permutations and the float
    arithmetic replay Evidently's exactly (same p-value); above, permuted counts are drawn
    directly and ties are compared in exact integers.
    """
    cats = pair.categories
    n_r, n_c = pair.n_ref, pair.n_cur
    k = len(cats.keys)
    total = cats.ref + cats.cur
    tvd = 0.5 * float(np.abs(cats.ref / n_r - cats.cur / n_c).sum())
    if not (pair.has_values and n_r + n_c <= TVD_EXACT_MAX):
        rng = np.random.default_rng(0)
        perm_ref = rng.multivariate_hypergeometric(total, n_r, size=TVD_PERMUTATIONS)
        observed = _tvd_numerator(cats.ref, cats.cur, n_r, n_c)
        permuted = _tvd_numerator(perm_ref, total - perm_ref, n_r, n_c)
        return MethodOutput(tvd, float(np.mean(observed <= permuted)))
    codes_r, codes_c = pair.codes
    combined = np.concatenate([codes_r, codes_c])
    keys = cats.keys
    observed_f = _evidently_tvd(
        keys, _first_seen(codes_r, k), _first_seen(codes_c, k), cats.ref, cats.cur, n_r, n_c
    )
    # Evidently's new "current" lists the remaining values grouped in the order in which the
    # categories first appear in the combined data (a Counter difference).
    combined_order = _first_seen(combined, k)
    rs = np.random.RandomState(0)  # Evidently: np.random.seed(0); np.random.choice(...)
    hits = 0
    for _ in range(TVD_PERMUTATIONS):
        new_ref = combined[rs.permutation(n_r + n_c)[:n_r]]
        a = np.bincount(new_ref, minlength=k)
        b = total - a
        cur_order = [c for c in combined_order if b[c] > 0]
        value = _evidently_tvd(keys, _first_seen(new_ref, k), cur_order, a, b, n_r, n_c)
        hits += observed_f <= abs(value)
    return MethodOutput(tvd, hits / TVD_PERMUTATIONS)


def pooled_table(ref: NDArray[np.int64], cur: NDArray[np.int64]) -> NDArray[np.int64]:
    """2 x K table in which every column has an expected count of at least 5 (Cochran).

    Categories with a smaller expected count are pooled into one column; if that pooled column
    is still below 5 (e.g. one row of a category the reference never had, which against a
    large reference has an expected current count near 0 and alone would give p ~ 1e-22), it
    is merged with the smallest remaining category, and so on. New categories stay visible
    to the test when they are frequent enough to matter (their own column); a handful of
    unseen rows is reported by data quality, not turned into an infinite chi-square.
    """
    n_r, n_c = int(ref.sum()), int(cur.sum())
    col = ref + cur
    keep = col > 0
    ref, cur, col = ref[keep], cur[keep], col[keep]
    factor = min(n_r, n_c) / max(n_r + n_c, 1)
    small = col * factor < MIN_EXPECTED
    if not small.any():
        return np.vstack([ref, cur])
    big_ref, big_cur = ref[~small], cur[~small]
    pool_ref, pool_cur = int(ref[small].sum()), int(cur[small].sum())
    order = np.argsort(big_ref + big_cur, kind="stable")
    merged = np.zeros(order.size, dtype=bool)
    for i in order:  # smallest first, until the pooled column is large enough
        if (pool_ref + pool_cur) * factor >= MIN_EXPECTED:
            break
        pool_ref += int(big_ref[i])
        pool_cur += int(big_cur[i])
        merged[i] = True
    return np.vstack([np.append(big_ref[~merged], pool_ref), np.append(big_cur[~merged], pool_cur)])


@register(
    "chi2_contingency",
    kind="p_value",
    column_kinds=("cat",),
    default_threshold=0.05,
    source="monitor",
)
def chi2_contingency(pair: ColumnPair) -> MethodOutput:
    """Pearson's chi-square test of homogeneity on the 2 x K table (rare categories pooled).

    Both samples are treated as samples (unlike ``chisquare``), unseen categories are just
    another column, and categories with an expected count below 5 are pooled (see
    :func:`pooled_table`) so the chi-square approximation holds.
    """
    table = pooled_table(pair.categories.ref, pair.categories.cur)
    if table.shape[1] < 2:
        return MethodOutput(0.0, 1.0)
    res = stats.chi2_contingency(table, correction=False)
    return MethodOutput(float(res.statistic), float(res.pvalue))
