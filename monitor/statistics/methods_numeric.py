"""Drift methods on the values of numeric columns (Evidently's definitions, same numbers).

Each function mirrors Evidently 0.7's ``evidently.legacy.calculations.stattests`` module of the
same registry name - same scipy call, same normalisation, same reported score - so the
``evidently`` policy reproduces Evidently's values. Where we compute faster (Wasserstein on
arrays sorted once per column, MMD permutations as matrix products) the result is the same
number up to rounding (tested at 1e-9 relative).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from monitor.errors import InputError

from .columns import ColumnPair
from .effect import ks_statistic, wasserstein_with_se
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
