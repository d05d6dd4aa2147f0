"""The metrics a rule may watch: every ``family.metric`` the jobs write, and friendly aliases.

A rule that names a metric no job writes would never see a result: it would stay silent
forever, which is the one thing a monitor must not do. So rules are checked against this
catalogue when they are written (YAML, API, CLI alike). Drift metrics are the names of the
registered drift methods (read from :mod:`monitor.statistics.registry` on first use, so the
web process pays for scipy only when a rule names a drift method); the others are the
vocabulary's names. ``tests/alerts/test_catalogue.py`` checks that every metric the jobs write
is listed here.
"""

from __future__ import annotations

import difflib
import fnmatch
from functools import lru_cache

from monitor.storage import vocabulary as v

_PERFORMANCE = (*v.CLASSIFICATION_METRICS, *v.REGRESSION_METRICS)
_STATIC: dict[str, tuple[str, ...]] = {
    v.DATASET_DRIFT: ("share_drifted", "drifted_columns"),
    v.MULTIVARIATE: ("domain_classifier_auc", "pca_reconstruction"),
    v.QUALITY: (
        v.NULL_SHARE,
        v.OUT_OF_RANGE_SHARE,
        v.UNSEEN_CATEGORY_SHARE,
        v.TYPE_ERRORS,
        "kind_mismatch",
        v.MISSING_COLUMN,
        v.UNEXPECTED_COLUMN,
        v.NO_DRIFT_VERDICT,
    ),
    v.PERFORMANCE: _PERFORMANCE,
    v.ESTIMATED_PERFORMANCE: _PERFORMANCE,
    v.OPERATIONAL: (
        v.VOLUME,
        v.LATENCY_P50,
        v.LATENCY_P95,
        v.LATENCY_P99,
        v.LABEL_COVERAGE,
        v.LABELS,
        v.LABEL_DELAY_P50,
        v.LABEL_DELAY_P90,
        v.LABELS_UNMATCHED,
        v.DUPLICATE_IDS,
        v.ERRORS,
        v.VOLUME_ANOMALY,
        v.COLD_REQUESTS,
        v.LATENCY_COLD_P50,
        v.LATENCY_COLD_P95,
        v.LATENCY_WARM_P50,
        v.COLD_START_RATIO,
        v.COST,
        v.COST_PER_DAY,
        v.VERSION_AGE_DAYS,
        v.BASELINE_AGE_DAYS,
        v.RETRAIN_INTERVAL_DAYS,
        v.DRIFT_TREND,
    ),
}


@lru_cache(maxsize=1)
def _drift_methods() -> tuple[str, ...]:
    from monitor.statistics.registry import available_methods

    return tuple(available_methods())


def metrics_of(family: str) -> tuple[str, ...]:
    """Every metric name the jobs write in ``family``."""
    if family == v.DRIFT:
        return _drift_methods()
    return _STATIC.get(family, ())


def check_metric(family: str, pattern: str) -> str | None:
    """None if ``family.pattern`` names (or, with ``*``/``?``, matches) a metric the jobs
    write; else the reason, with the closest names."""
    if pattern == "*":
        return None
    known = metrics_of(family)
    if any(c in pattern for c in "*?["):
        if any(fnmatch.fnmatchcase(name, pattern) for name in known):
            return None
        return f"{family}.{pattern} matches no metric of {family} ({', '.join(known)})"
    if pattern in known:
        return None
    close = difflib.get_close_matches(pattern, known, n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; one of {', '.join(known)}"
    return f"unknown metric {family}.{pattern}{hint}"


_WINDOW_JOB_OPERATIONAL = (v.VOLUME, v.LATENCY_P50, v.LATENCY_P95, v.LATENCY_P99)


def producing_job(family: str, metric: str) -> str:
    """The job (``runs.job``) that writes ``family.metric``: performance results and the
    label, cost and trend numbers come from the performance job, the rest from the window
    job. A pattern spanning both counts as the window job's."""
    if family in (v.PERFORMANCE, v.ESTIMATED_PERFORMANCE):
        return v.JOB_PERFORMANCE
    if family == v.OPERATIONAL and metric in _STATIC[v.OPERATIONAL]:
        return v.JOB_WINDOW if metric in _WINDOW_JOB_OPERATIONAL else v.JOB_PERFORMANCE
    return v.JOB_WINDOW
