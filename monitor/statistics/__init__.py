"""Drift statistics engine: pure numpy/scipy, no I/O (scikit-learn only in ``multivariate``).

Public API (import from ``monitor.statistics``):

Raw data
    ``detect_drift(reference, current, *, policy="default", columns=None, column_kinds=None,
    method=None, methods=None, kind_methods=None, threshold=None, thresholds=None,
    kind_thresholds=None, drift_share=None, params=None) -> DatasetDriftResult``
        Every common column of two DataFrames / mappings of arrays.
    ``infer_column_kind(values) -> "num" | "cat" | None``
        Evidently 0.7's type inference (None = skipped: text, datetime, unknown).
    ``DefaultPolicy(alpha=0.01, tolerance={"num": 0.1, "cat": 0.02}, methods=..., min_n=30,
    ci_level=0.9)``
        Parameters of the default policy (see :mod:`monitor.statistics.policy`).

Methods
    ``available_methods(column_kind=None) -> list[str]``, ``get_method(name, column_kind=None)
    -> DriftMethod`` (name, kind, column_kinds, default_threshold, rule, func),
    ``register(...)`` to add one.

Results
    ``DriftResult`` (column, kind, method, method_kind, statistic, p_value, threshold, drifted,
    effect_size, n_reference, n_current, effect_name, effect_ci, tolerance, p_value_adjusted,
    status, message, error_bound; ``to_dict()``) and ``DatasetDriftResult`` (columns, policy,
    drift_share, skipped; n_columns, n_drifted, share, drifted; ``to_dict()``).

Profiles (mergeable window summaries, :mod:`monitor.statistics.profiles`)
    ``NumericProfile``, ``CategoricalProfile`` (``merge``, ``to_dict``, ``from_dict``),
    ``reference_profile_numeric(values, *, n_bins=100, sample_size=2000, seed=0)``,
    ``profile_numeric(values, edges, *, sample_size=2000, seed=0)``,
    ``reference_profile_categorical(values)``, ``profile_categorical(values)``,
    ``profile_from_dict(d)``,
    ``drift_from_profiles(reference, current, *, method=None, threshold=None, policy="default",
    params=None, column="") -> DriftResult``, and
    ``apply_default_policy(results, params=None)`` to judge a window's records together (BH).

Data quality (:mod:`monitor.statistics.quality`)
    ``quality_checks(reference_profiles, current_profiles, expected_columns=None,
    seen_columns=None, *, null_tolerance=0.05, out_of_range_tolerance=0.01,
    unseen_tolerance=0.01, type_error_tolerance=0.0) -> list[QualityCheck]`` (check, column,
    value, threshold, passed, message).

Multivariate (:mod:`monitor.statistics.multivariate`, imports scikit-learn lazily; not re-exported
here so ``import monitor.statistics`` stays sklearn-free)
    ``domain_classifier_drift(reference, current, *, columns=None, alpha=0.01,
    min_auc_gain=0.05, max_rows=5000, folds=3, top=5, seed=0)``,
    ``pca_reconstruction_drift(reference, current, *, columns=None, z=3.0,
    min_relative_increase=0.05, variance=0.65, max_rows=5000, top=5, seed=0)``,
    ``multivariate_drift(reference, current, **kw)`` -> ``MultivariateDriftResult`` (method,
    statistic, threshold, drifted, p_value, top_features, n_reference, n_current, status).
"""

from .engine import detect_drift, infer_column_kind
from .policy import DefaultPolicy, apply_default_policy, benjamini_hochberg
from .profile_drift import drift_from_profiles
from .profiles import (
    CategoricalProfile,
    NumericProfile,
    profile_categorical,
    profile_from_dict,
    profile_numeric,
    reference_profile_categorical,
    reference_profile_numeric,
)
from .quality import QualityCheck, quality_checks
from .registry import DriftMethod, available_methods, get_method, register
from .results import DatasetDriftResult, DriftResult

__all__ = [
    "CategoricalProfile",
    "DatasetDriftResult",
    "DefaultPolicy",
    "DriftMethod",
    "DriftResult",
    "NumericProfile",
    "QualityCheck",
    "apply_default_policy",
    "available_methods",
    "benjamini_hochberg",
    "detect_drift",
    "drift_from_profiles",
    "get_method",
    "infer_column_kind",
    "profile_categorical",
    "profile_from_dict",
    "profile_numeric",
    "quality_checks",
    "reference_profile_categorical",
    "reference_profile_numeric",
    "register",
]
