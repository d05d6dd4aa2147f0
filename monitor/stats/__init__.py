"""Drift statistics engine: pure numpy/scipy, no I/O (scikit-learn only in ``multivariate``).

Public API (import from ``monitor.stats``):

Raw data
    ``detect_drift(reference, current, *, policy="default", columns=None, column_kinds=None,
    method=None, methods=None, kind_methods=None, threshold=None, thresholds=None,
    kind_thresholds=None, drift_share=None, params=None) -> DatasetDriftResult``
        Every common column of two DataFrames / mappings of arrays.
    ``infer_column_kind(values) -> "num" | "cat" | None``
        Evidently 0.7's type inference (None = skipped: text, datetime, unknown).
    ``DefaultPolicy(alpha=0.01, tolerance={"num": 0.1, "cat": 0.02}, methods=..., min_n=30,
    ci_level=0.9)``
        Parameters of the default policy (see :mod:`monitor.stats.policy`).

Methods
    ``available_methods(column_kind=None) -> list[str]``, ``get_method(name, column_kind=None)
    -> DriftMethod`` (name, kind, column_kinds, default_threshold, rule, func),
    ``register(...)`` to add one.

Results
    ``DriftResult`` (column, kind, method, method_kind, statistic, p_value, threshold, drifted,
    effect_size, n_reference, n_current, effect_name, effect_ci, tolerance, p_value_adjusted,
    status, message, error_bound; ``to_dict()``) and ``DatasetDriftResult`` (columns, policy,
    drift_share, skipped; n_columns, n_drifted, share, drifted; ``to_dict()``).

Profiles (mergeable window summaries, :mod:`monitor.stats.profiles`)
    ``NumericProfile``, ``CategoricalProfile`` (``merge``, ``to_dict``, ``from_dict``),
    ``reference_profile_numeric(values, *, n_bins=50, sample_size=2000, seed=0)``,
    ``profile_numeric(values, edges, *, sample_size=2000, seed=0)``,
    ``reference_profile_categorical(values)``, ``profile_categorical(values)``,
    ``profile_from_dict(d)``,
    ``drift_from_profiles(reference, current, *, method=None, threshold=None, policy="default",
    params=None, column="") -> DriftResult``.
"""

from .engine import detect_drift, infer_column_kind
from .policy import DefaultPolicy, benjamini_hochberg
from .profiles import (
    CategoricalProfile,
    NumericProfile,
    profile_categorical,
    profile_from_dict,
    profile_numeric,
    reference_profile_categorical,
    reference_profile_numeric,
)
from .registry import DriftMethod, available_methods, get_method, register
from .results import DatasetDriftResult, DriftResult

__all__ = [
    "CategoricalProfile",
    "DatasetDriftResult",
    "DefaultPolicy",
    "DriftMethod",
    "DriftResult",
    "NumericProfile",
    "available_methods",
    "benjamini_hochberg",
    "detect_drift",
    "get_method",
    "infer_column_kind",
    "profile_categorical",
    "profile_from_dict",
    "profile_numeric",
    "reference_profile_categorical",
    "reference_profile_numeric",
    "register",
]
