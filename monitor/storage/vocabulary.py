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
NO_DRIFT_VERDICT = (
    "no_drift_verdict"  # a feature the drift job could not judge (no or too few values)
)

# operational metrics
VOLUME = "volume"
LATENCY_P50 = "latency_p50"
LATENCY_P95 = "latency_p95"
LATENCY_P99 = "latency_p99"
LABEL_COVERAGE = "label_coverage"  # share of the window's predictions with a label (Wilson CI)
LABELS = "labels"  # labelled predictions in the window
LABEL_DELAY_P50 = "label_delay_p50"  # seconds from prediction to the label's own timestamp
LABEL_DELAY_P90 = "label_delay_p90"
LABELS_UNMATCHED = "labels_unmatched"  # labels received in the window matching no prediction
DUPLICATE_IDS = "duplicate_ids"  # record ids logged more than once in the window
ERRORS = "errors"  # records the database refused (dead letters) received during the window
VOLUME_ANOMALY = "volume_anomaly"  # robust z of the volume; drifted = drop_to_zero/drop/spike
COLD_REQUESTS = "cold_requests"  # requests after a deploy or an idle gap
LATENCY_COLD_P50 = "latency_cold_p50"
LATENCY_COLD_P95 = "latency_cold_p95"
LATENCY_WARM_P50 = "latency_warm_p50"
COLD_START_RATIO = "cold_start_ratio"  # cold p50 / warm p50
COST = "cost"  # cost of the window (per 1k predictions and/or per compute-second)
COST_PER_DAY = "cost_per_day"  # the window's cost rate over 24 hours
VERSION_AGE_DAYS = "version_age_days"
BASELINE_AGE_DAYS = "baseline_age_days"
RETRAIN_INTERVAL_DAYS = "retrain_interval_days"
DRIFT_TREND = "drift_trend"  # Theil-Sen slope per day of share_drifted over the last week

# performance metrics (families performance / estimated_performance; metric = name below)
CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "calibration_error",
)
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")

# pseudo-columns for the model's outputs, so they never clash with a feature's name
PREDICTION_COLUMN = "@prediction"
SCORE_COLUMN = "@score"  # probability of the positive class (binary) or the regression output

# result status
OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
NOT_AVAILABLE = "not_available"  # e.g. no label-free estimator for this task or baseline

# job names in the runs table
JOB_WINDOW = "window"
JOB_PERFORMANCE = "performance"


def segment_key(segment: dict[str, object] | None) -> str:
    """Canonical text of a segment mapping (``''`` for all traffic)."""
    if not segment:
        return ""
    return ",".join(f"{k}={segment[k]}" for k in sorted(segment))
