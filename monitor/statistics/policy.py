"""Decision policies: which method a column gets, and when a column counts as drifted.

``evidently``
    Evidently 0.7's defaults, so its users can switch and compare: the method chosen by column
    kind, non-null reference size (<= 1000 or not) and number of distinct values; each
    method's own threshold; a dataset drifts when at least half its columns do.

``default``
    Decisions that stay sound at any sample size. Evidently's defaults change character with
    n: below 1,000 reference rows a p-value test flags any detectable difference (and at large
    current sizes everything is detectable), above it fixed distance thresholds flag noise at
    small n and miss nothing at large n. Here every column gets a test (numeric: ``ks_mw``, KS
    and Mann-Whitney combined, rank tests calibrated on any shape; categorical:
    ``chi2_contingency``, Pearson's test of homogeneity) *and* an effect size with a confidence
    interval (numeric: Wasserstein distance in reference sd; categorical: total variation); a
    column drifts only when

    1. its p-value, adjusted with Benjamini-Hochberg across the columns of the window, is below
       ``alpha`` (false alarms are controlled for the whole window, not per column), and
    2. the lower confidence bound of its effect size exceeds a practical tolerance (the shift
       is big enough to matter: 0.1 reference sd for numeric columns, total variation 0.02
       for categorical ones by default). The lower bound subtracts the sampling noise of the
       distance (for categories: its exact permutation quantile), so noise in many categories
       or a small sample is not mistaken for a shift.

    Columns with fewer than ``min_n`` values on a side get ``status="insufficient_data"``
    instead of a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.errors import InputError

from .columns import ColumnPair
from .results import ColumnKind, DriftResult

POLICIES = ("default", "evidently")

EVIDENTLY_SMALL_REFERENCE = 1000
"""Evidently switches from tests to distances above this many non-null reference values."""
EVIDENTLY_DRIFT_SHARE = 0.5
"""Evidently's share of drifted columns at which the dataset drifts."""


@dataclass(frozen=True)
class DefaultPolicy:
    """Parameters of the default policy (see the module docstring).

    The defaults were chosen with ``benchmarks/detection_quality.py``: clean windows flag
    nothing in far fewer than 1% of windows, shifts of 0.2 sd or 0.05 total variation are
    caught in >= 95% of windows from 5,000 rows, shifts of 0.02 sd are ignored at 1M rows.
    """

    alpha: float = 0.01
    tolerance: dict[ColumnKind, float] = field(default_factory=lambda: {"num": 0.1, "cat": 0.02})
    methods: dict[ColumnKind, str] = field(
        default_factory=lambda: {"num": "ks_mw", "cat": "chi2_contingency"}
    )
    min_n: int = 30
    ci_level: float = 0.90


def check_policy(policy: str) -> str:
    """The policy name, or InputError listing the valid ones."""
    if policy not in POLICIES:
        raise InputError(f"unknown policy {policy!r}; available: {', '.join(POLICIES)}")
    return policy


def evidently_default_method(pair: ColumnPair) -> str:
    """Evidently 0.7's default method for a column (``_get_default_stattest``)."""
    n_values = pair.nunique_union_at_most(5)
    if pair.n_ref <= EVIDENTLY_SMALL_REFERENCE:
        if pair.kind == "num" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if pair.kind == "num" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up, monotone, capped at 1).

    Parameters
    ----------
    p_values : sequence of float
        Raw p-values of one family (the columns of a window).

    Returns
    -------
    list of float
        Adjusted p-values in the input order; ``adjusted <= alpha`` controls the false
        discovery rate at ``alpha`` (and the family-wise error rate when nothing drifted).
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def apply_default_policy(results: list[DriftResult], params: DefaultPolicy | None = None) -> None:
    """Judge a window's column records together (in place): BH, then the tolerance gate.

    Window jobs that compute columns one by one (e.g. with ``drift_from_profiles``) call this
    on the list of a window's records so false alarms are controlled across its columns.
    Records of distance methods keep their own threshold verdict; records without a verdict
    (``status != "ok"``) are left alone.
    """
    params = params or DefaultPolicy()
    tested = [
        r
        for r in results
        if r.status == "ok"
        and r.method_kind == "p_value"
        and r.p_value is not None
        and not math.isnan(r.p_value)
    ]
    adjusted = benjamini_hochberg([r.p_value for r in tested])  # type: ignore[misc]
    for r, adj in zip(tested, adjusted, strict=True):
        r.p_value_adjusted = adj
    for r in results:
        if r.status != "ok":
            continue
        r.tolerance = params.tolerance[r.kind]
        lower = r.effect_ci[0] if r.effect_ci else (r.effect_size or 0.0)
        if r.method_kind == "p_value":
            r.drifted = (
                r.p_value_adjusted is not None
                and r.p_value_adjusted <= r.threshold
                and lower > r.tolerance
            )
