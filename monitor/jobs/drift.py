"""Drift between a reference profile and a window's profile, column by column, for the jobs.

Everything here works from profiles, never rows, so a day or a week (a merge of hourly
profiles) costs the same as an hour. The statistics come from :mod:`monitor.stats`: categorical
columns are compared on their exact category counts; numeric columns on the profiles' bounded
uniform samples (the sample is what makes exact tests possible from a profile). The ``default``
policy corrects p-values across the window's columns (Benjamini-Hochberg) and requires the
effect size's lower confidence bound to exceed a practical tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.stats.engine import detect_drift
from monitor.stats.profiles import CategoricalProfile, NumericProfile, Profile
from monitor.stats.results import DatasetDriftResult, DriftResult

POLICY = "default"


@dataclass(frozen=True)
class ProfilePair:
    name: str
    reference: Profile
    current: Profile


def _categorical_arrays(
    ref: CategoricalProfile, cur: CategoricalProfile
) -> tuple[np.ndarray, np.ndarray]:
    """Integer-coded rows rebuilt from exact counts (codes shared by both sides)."""
    keys = list(ref.counts) + [k for k in cur.counts if k not in ref.counts]
    code = {k: i for i, k in enumerate(keys)}
    other = len(keys)

    def rows(p: CategoricalProfile) -> np.ndarray:
        idx = np.fromiter((code[k] for k in p.counts), np.int64, len(p.counts))
        cnt = np.fromiter(p.counts.values(), np.int64, len(p.counts))
        out = np.repeat(idx, cnt)
        return np.concatenate([out, np.full(p.other, other, np.int64)]) if p.other else out

    return rows(ref), rows(cur)


def profile_drift(pairs: list[ProfilePair], *, policy: str = POLICY) -> DatasetDriftResult:
    """Drift of each column pair, with the policy's multiple-testing control across them."""
    reference: dict[str, Any] = {}
    current: dict[str, Any] = {}
    kinds: dict[str, Any] = {}
    for pair in pairs:
        if isinstance(pair.reference, NumericProfile) and isinstance(pair.current, NumericProfile):
            reference[pair.name] = np.asarray(pair.reference.sample, dtype=np.float64)
            current[pair.name] = np.asarray(pair.current.sample, dtype=np.float64)
            kinds[pair.name] = "num"
        elif isinstance(pair.reference, CategoricalProfile) and isinstance(
            pair.current, CategoricalProfile
        ):
            reference[pair.name], current[pair.name] = _categorical_arrays(
                pair.reference, pair.current
            )
            kinds[pair.name] = "cat"
    if not reference:
        return DatasetDriftResult(columns=[], policy=policy)
    result = detect_drift(
        reference, current, policy=policy, columns=list(reference), column_kinds=kinds
    )
    by_name = {p.name: p for p in pairs}
    for r in result.columns:
        _true_counts(r, by_name[r.column])
    return result


def _true_counts(r: DriftResult, pair: ProfilePair) -> None:
    """Report the window's real row counts; the tested sample size goes to the details."""
    r.message = r.message or (
        f"tested on samples of {r.n_reference} and {r.n_current}"
        if isinstance(pair.current, NumericProfile)
        else None
    )
    r.n_reference = pair.reference.count
    r.n_current = pair.current.count
