"""Names that the jobs write and the web, alerts and Grafana read: one place to agree on them.

A ``results`` row is identified by (model, window_start, segment, family, column_name, metric).
``segment`` is ``''`` for all traffic, else canonical ``key=value`` pairs joined by ``,`` and
sorted by key (e.g. ``region=eu``). ``column_name`` is ``''`` for results about the whole window.
"""

from __future__ import annotations

# result families
DRIFT = "drift"  # per column; metric = method name (e.g. "wasserstein"); value = statistic
DATASET_DRIFT = "dataset_drift"  # column ''; metrics "share_drifted", "drifted_columns"
MULTIVARIATE = "multivariate"  # column ''; metrics "domain_classifier_auc", "pca_reconstruction"
QUALITY = "quality"  # per column or ''; metrics below
PERFORMANCE = "performance"  # realised, from labels; metric = "accuracy", "roc_auc", "mae", ...
ESTIMATED_PERFORMANCE = "estimated_performance"  # label-free (CBPE / DLE)
OPERATIONAL = "operational"  # column ''; metrics below
FAMILIES = (
    DRIFT,
    DATASET_DRIFT,
    MULTIVARIATE,
    QUALITY,
    PERFORMANCE,
    ESTIMATED_PERFORMANCE,
    OPERATIONAL,
)

# quality metrics
NULL_SHARE = "null_share"
OUT_OF_RANGE_SHARE = "out_of_range_share"
UNSEEN_CATEGORY_SHARE = "unseen_category_share"
TYPE_ERRORS = "type_errors"
MISSING_COLUMN = "missing_column"
UNEXPECTED_COLUMN = "unexpected_column"

# operational metrics
VOLUME = "volume"
LATENCY_P50 = "latency_p50"
LATENCY_P95 = "latency_p95"
LATENCY_P99 = "latency_p99"
LABEL_COVERAGE = "label_coverage"

# pseudo-columns for the model's outputs, so they never clash with a feature's name
PREDICTION_COLUMN = "@prediction"
SCORE_COLUMN = "@score"  # probability of the positive class (binary) or the regression output

# result status
OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"

# job names in the runs table
JOB_WINDOW = "window"
JOB_PERFORMANCE = "performance"


def segment_key(segment: dict[str, object] | None) -> str:
    """Canonical text of a segment mapping (``''`` for all traffic)."""
    if not segment:
        return ""
    return ",".join(f"{k}={segment[k]}" for k in sorted(segment))
