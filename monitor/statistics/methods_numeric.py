"""Drift methods on the values of numeric columns (Evidently's definitions, same numbers).

Each function mirrors Evidently 0.7's ``evidently.legacy.calculations.stattests`` module of the
same registry name - same scipy call, same normalisation, same reported score - so the
``evidently`` policy reproduces Evidently's values. Where we compute faster (Wasserstein on
arrays sorted once per column, MMD permutations as matrix products) the result is the same
number up to rounding (tested at 1e-9 relative).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from monitor.errors import InputError

from .columns import ColumnPair
from .effect import ks_statistic, merged_cdfs, wasserstein_with_se
from .registry import MethodOutput, register

KS_EXACT_MAX = 10_000
"""scipy's ks_2samp computes exact p-values up to this many values per side ('auto')."""
WASSERSTEIN_MIN_NORM = 0.001
"""Evidently's floor on the reference standard deviation that normalises Wasserstein."""
MMD_MAX_PER_SIDE = 1_000
"""Empirical MMD builds an (n+m)^2 kernel matrix: above this many values per side we test a
seeded random subsample (Evidently would need ~8 GB at 10k+10k and does not subsample)."""
MMD_PERMUTATIONS = 100
"""Evidently's number of permutations for the MMD p-value."""


@register("ks", kind="p_value", column_kinds=("num",), default_threshold=0.05, rule="<=")
def ks(pair: ColumnPair) -> MethodOutput:
    """Two-sample Kolmogorov-Smirnov test (scipy ``ks_2samp``, method 'auto')."""
    if max(pair.n_ref, pair.n_cur) <= KS_EXACT_MAX:
        res = stats.ks_2samp(pair.ref, pair.cur)
        return MethodOutput(float(res.statistic), float(res.pvalue))
    # scipy's 'asymp' branch on the statistic of the shared pooled merge (no extra sorts)
    d = ks_statistic(pair)
    big, small = sorted([float(pair.n_ref), float(pair.n_cur)], reverse=True)
    p = float(np.clip(stats.kstwo.sf(d, np.round(big * small / (big + small))), 0, 1))
    return MethodOutput(d, p)


@register("ks_t", kind="p_value", column_kinds=("num",), default_threshold=0.05, source="monitor")
def ks_t(pair: ColumnPair) -> MethodOutput:
    """KS and Welch's t test combined (Bonferroni: ``p = min(1, 2 min(p_ks, p_t))``).

    Not calibrated on heavy-tailed columns: Welch's t needs moments that a lognormal with a
    large sigma or a Pareto tail does not have at any practical n (p <= 0.01 in ~15% of clean
    windows, see ``benchmarks/detection_quality.py --calibration``). Kept for comparison; the
    default policy uses ``ks_mw``.

    KS sees any change of shape but is weak against pure location shifts of flat or wide
    distributions (a 0.2 sd shift of a uniform moves its CDF by only 0.058); Welch's t test is
    the most powerful test for a mean shift and blind to everything else. Taking the better of
    the two at twice the p-value keeps the level and the power of each. The statistic is KS D.
    """
    ks_out = ks(pair)
    assert ks_out.p_value is not None
    if pair.n_ref < 2 or pair.n_cur < 2:
        return ks_out
    t = stats.ttest_ind(pair.ref, pair.cur, equal_var=False)
    p_t = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
    return MethodOutput(ks_out.statistic, min(1.0, 2.0 * min(ks_out.p_value, p_t)))


def mann_whitney_grouped(ref_counts: ArrayLike, cur_counts: ArrayLike) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test from counts per ordered group (distinct value or bin).

    Every value in a group shares the group's midrank, so this is the tie-corrected normal
    approximation with continuity correction -- the numbers of scipy's ``mannwhitneyu(...,
    alternative="two-sided", method="asymptotic")`` on the raw values -- computed from a
    2 x K table. It therefore works on profiles (bins are groups of tied values: a valid test
    of the binned data) as well as on raw data grouped by distinct value.

    Returns
    -------
    (U, p_value) : tuple of float
        ``U`` of the reference sample (scipy's ``U1`` with x = reference).
    """
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    n1, n2 = float(r.sum()), float(c.sum())
    n = n1 + n2
    if n1 == 0 or n2 == 0:
        return math.nan, 1.0
    t = r + c
    before = np.cumsum(t) - t
    u = float(np.dot(r, before + (t + 1) / 2)) - n1 * (n1 + 1) / 2
    ties = float(np.sum(t**3 - t))
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:  # every value tied: no evidence of a change in location
        return u, 1.0
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return u, float(min(1.0, 2 * stats.norm.sf(max(z, 0.0))))


def cauchy_combination(p_values: list[float]) -> float:
    """Cauchy combination of p-values (Liu & Xie 2020, "ACAT"), equal weights.

    ``T = mean(tan((0.5 - p_i) pi))`` has a standard Cauchy tail whatever the dependence
    between the tests (exactly when they are independent or identical, asymptotically in the
    tail otherwise), so ``p = 1/2 - arctan(T) / pi`` keeps its level where Bonferroni
    (``2 min p``) spends only half of it on two strongly correlated tests such as KS and
    Mann-Whitney.
    """
    p = np.clip(np.asarray(p_values, dtype=np.float64), 0.0, 1.0)
    if np.any(p == 0.0):
        return 0.0
    small = p < 1e-15  # tan((0.5 - p) pi) = 1 / tan(p pi) ~ 1 / (p pi), without cancellation
    terms = np.where(small, 1 / (np.maximum(p, 1e-300) * math.pi), np.tan((0.5 - p) * math.pi))
    t = float(terms.mean())
    if t > 1e15:  # 1/2 - arctan(t)/pi = arctan(1/t)/pi ~ 1/(t pi)
        return 1 / (t * math.pi)
    return float(min(1.0, max(0.0, 0.5 - math.atan(t) / math.pi)))


def grouped_counts(pair: ColumnPair) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reference and current counts per distinct pooled value, in increasing order."""
    m = merged_cdfs(pair)
    run_id = np.cumsum(np.r_[False, m.run_end[:-1]])
    k = int(run_id[-1]) + 1 if run_id.size else 0
    ref = np.bincount(run_id, weights=m.is_ref, minlength=k)
    total = np.bincount(run_id, minlength=k).astype(np.float64)
    return ref.astype(np.float64), total - ref


@register("ks_mw", kind="p_value", column_kinds=("num",), default_threshold=0.05, source="monitor")
def ks_mw(pair: ColumnPair) -> MethodOutput:
    """KS and Mann-Whitney combined (Cauchy combination); the default policy's numeric test.

    Both are rank tests, so under "no change" their p-values do not depend on the column's
    shape: heavy tails, outliers and skew cannot make them fire (Welch's t, in ``ks_t``, can:
    on a lognormal with sigma 2.5 it gives p <= 0.01 in ~15% of clean windows). KS sees any
    change of shape; Mann-Whitney is the stronger test for a shift of location (as strong as
    the t test on normal data, stronger on heavy-tailed). Ties are handled by midranks
    (Mann-Whitney's variance correction); KS stays conservative on ties. The statistic is KS D.
    """
    ks_out = ks(pair)
    assert ks_out.p_value is not None
    if pair.n_ref < 2 or pair.n_cur < 2:
        return ks_out
    _, p_mw = mann_whitney_grouped(*grouped_counts(pair))
    return MethodOutput(ks_out.statistic, cauchy_combination([ks_out.p_value, p_mw]))


@register("wasserstein", kind="distance", column_kinds=("num",), default_threshold=0.1)
def wasserstein(pair: ColumnPair) -> MethodOutput:
    """Wasserstein-1 distance divided by max(reference sd, 0.001) (Evidently's "normed")."""
    norm = max(float(np.std(pair.ref)), WASSERSTEIN_MIN_NORM)
    w, _ = wasserstein_with_se(pair)
    return MethodOutput(w / norm)


@register("ed", kind="distance", column_kinds=("num",), default_threshold=0.1, rule=">")
def energy(pair: ColumnPair) -> MethodOutput:
    """Energy distance (scipy ``energy_distance``); not scale-free, so thresholds are in units."""
    return MethodOutput(float(stats.energy_distance(pair.sorted_ref, pair.sorted_cur)))


@register("t_test", kind="p_value", column_kinds=("num",), default_threshold=0.05)
def t_test(pair: ColumnPair) -> MethodOutput:
    """Student's t test with pooled variance (scipy ``ttest_ind`` defaults)."""
    res = stats.ttest_ind(pair.ref, pair.cur)
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register("mannw", kind="p_value", column_kinds=("num",), default_threshold=0.05)
def mann_whitney(pair: ColumnPair) -> MethodOutput:
    """Mann-Whitney U test, *one-sided* ``alternative="less"`` as Evidently runs it.

    Evidently's choice means a current window shifted *down* is never flagged; use ``ks`` or
    ``anderson`` for a two-sided rank-type test.
    """
    res = stats.mannwhitneyu(pair.ref, pair.cur, alternative="less")
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register("anderson", kind="p_value", column_kinds=("num",), default_threshold=0.1)
def anderson(pair: ColumnPair) -> MethodOutput:
    """k-sample Anderson-Darling; its p-value is clipped to [0.001, 0.25] by scipy."""
    with warnings.catch_warnings():
        # scipy warns that the p-value is clipped and about its `midrank` parameter; the
        # clipped value is exactly what Evidently reports, so both are expected here.
        warnings.simplefilter("ignore", UserWarning)
        res = stats.anderson_ksamp([pair.ref, pair.cur])
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register(
    "cramer_von_mises", kind="p_value", column_kinds=("num",), default_threshold=0.1, rule="<="
)
def cramer_von_mises(pair: ColumnPair) -> MethodOutput:
    """Two-sample Cramer-von Mises (scipy ``cramervonmises_2samp``, Evidently's vendored copy)."""
    if pair.n_ref < 2 or pair.n_cur < 2:
        raise InputError("cramer_von_mises needs at least two values on each side")
    res = stats.cramervonmises_2samp(pair.ref, pair.cur)
    return MethodOutput(float(res.statistic), float(res.pvalue))


@register("es", kind="p_value", column_kinds=("num",), default_threshold=0.05)
def epps_singleton(pair: ColumnPair) -> MethodOutput:
    """Epps-Singleton test; undefined (error) when the pooled interquartile range is zero."""
    if stats.iqr(np.concatenate([pair.ref, pair.cur])) == 0:
        raise InputError("Epps-Singleton needs a non-zero interquartile range")
    res = stats.epps_singleton_2samp(pair.ref, pair.cur)
    return MethodOutput(float(res.statistic), float(res.pvalue))


def _squared_dist(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    # Same expression (and so the same rounding) as Evidently's squared_paired_dist.
    return (y**2).T - 2 * np.dot(x, y.T) + x**2


def mmd_test(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    permutation: Callable[[int], NDArray[np.int64]],
    n_permutations: int = MMD_PERMUTATIONS,
) -> tuple[float, float]:
    """Unbiased MMD^2 with an RBF kernel (median heuristic) and its permutation p-value.

    Parameters
    ----------
    x, y : ndarray
        The two samples (1-d).
    permutation : callable
        ``permutation(n)`` returns a random permutation of ``range(n)``; Evidently uses
        numpy's global ``np.random.permutation``, which tests pass to reproduce its p-value.
    n_permutations : int
        Number of permutations.

    Returns
    -------
    (mmd, p_value) : tuple of float
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    nx, ny = x.shape[0], y.shape[0]
    if nx < 2 or ny < 2:
        raise InputError("empirical_mmd needs at least two values on each side")
    dxx = _squared_dist(x, x)
    med = float(np.percentile(dxx.ravel(), 50, method="nearest"))
    sigma = (0.5 * med) ** 0.5 if med != 0 else 0.5**0.5
    gamma = 1.0 / (2.0 * sigma**2)
    kxy = np.exp(-gamma * _squared_dist(x, y))
    k = np.block([[np.exp(-gamma * dxx), kxy], [kxy.T, np.exp(-gamma * _squared_dist(y, y))]])
    np.fill_diagonal(k, 0.0)
    a, b = 1 / (nx * (nx - 1)), 1 / (ny * (ny - 1))
    observed = a * k[:nx, :nx].sum() + b * k[nx:, nx:].sum() - 2.0 * k[nx:, :nx].mean()
    n = nx + ny
    u = np.zeros((n, n_permutations))
    for j in range(n_permutations):
        u[permutation(n)[:nx], j] = 1.0
    v = 1.0 - u
    ku, kv = k @ u, k @ v
    sxx, syy, sxy = (u * ku).sum(axis=0), (v * kv).sum(axis=0), (v * ku).sum(axis=0)
    permuted = a * sxx + b * syy - 2.0 * sxy / (nx * ny)
    return float(observed), float(np.mean(observed <= permuted))


@register("empirical_mmd", kind="p_value", column_kinds=("num",), default_threshold=0.1)
def empirical_mmd(pair: ColumnPair, seed: int = 0) -> MethodOutput:
    """Maximum mean discrepancy with a permutation p-value (subsampled past 1,000 per side)."""
    rng = np.random.default_rng(seed)
    x, y = pair.ref, pair.cur
    if x.size > MMD_MAX_PER_SIDE:
        x = x[rng.choice(x.size, MMD_MAX_PER_SIDE, replace=False)]
    if y.size > MMD_MAX_PER_SIDE:
        y = y[rng.choice(y.size, MMD_MAX_PER_SIDE, replace=False)]
    mmd, p = mmd_test(x, y, rng.permutation)
    return MethodOutput(mmd, p)
