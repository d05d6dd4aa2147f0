"""Drift between a reference profile and a window's profile, column by column, for the jobs.

Everything here works from profiles, never rows, so a day or a week (a merge of hourly
profiles) costs the same as an hour. The statistics are :mod:`monitor.statistics`'
``drift_from_profiles`` (exact for categories and binned methods, bounded for KS/Wasserstein,
see its docstring); the ``default`` policy then judges a window's columns together
(Benjamini-Hochberg across columns, and the effect size's lower confidence bound against a
practical tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.statistics.policy import apply_default_policy
from monitor.statistics.profile_drift import drift_from_profiles
from monitor.statistics.profiles import Profile
from monitor.statistics.results import DatasetDriftResult

POLICY = "default"


@dataclass(frozen=True)
class ProfilePair:
    name: str
    reference: Profile
    current: Profile


def profile_drift(pairs: list[ProfilePair], *, policy: str = POLICY) -> DatasetDriftResult:
    """Drift of each column pair, with the policy's multiple-testing control across them."""
    results = [
        drift_from_profiles(p.reference, p.current, policy=policy, column=p.name)
        for p in pairs
        if type(p.reference) is type(p.current)
    ]
    if policy == "default":
        apply_default_policy(results)
    return DatasetDriftResult(columns=results, policy=policy)
