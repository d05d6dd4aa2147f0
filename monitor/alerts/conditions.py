"""What a rule watches and how it decides: the metric catalogue and the condition operators.

A rule's metric is ``family.metric`` in the results vocabulary (``drift.*``,
``dataset_drift.share_drifted``, ``quality.null_share``, ``operational.latency_p95`` ...), ``*``
meaning any metric of the family. Friendly aliases (``feature_drift``, ``prediction_drift`` ...)
expand to those. The condition is either ``drifted`` (the job's own verdict, which already
carries the method's threshold) or a comparison of the result's ``value`` with a number.
"""

from __future__ import annotations

import fnmatch
import math
import operator as op
from collections.abc import Callable
from dataclasses import dataclass

from monitor.errors import InputError
from monitor.storage import vocabulary as v

DRIFTED = "drifted"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt,
    ">=": op.ge,
    "<": op.lt,
    "<=": op.le,
    "==": op.eq,
    "!=": op.ne,
}
OPERATORS = (DRIFTED, *COMPARISONS)
PER_COLUMN_FAMILIES = (v.DRIFT, v.QUALITY)  # the others describe the whole window (column '')

# alias -> (metric, default column selector)
ALIASES: dict[str, tuple[str, str]] = {
    "feature_drift": (f"{v.DRIFT}.*", "*"),
    "prediction_drift": (f"{v.DRIFT}.*", f"{v.PREDICTION_COLUMN},{v.SCORE_COLUMN}"),
    "share_drifted": (f"{v.DATASET_DRIFT}.share_drifted", ""),
    "dataset_drift": (f"{v.DATASET_DRIFT}.share_drifted", ""),
    "multivariate_drift": (f"{v.MULTIVARIATE}.*", ""),
    "null_share": (f"{v.QUALITY}.{v.NULL_SHARE}", "*"),
    "out_of_range_share": (f"{v.QUALITY}.{v.OUT_OF_RANGE_SHARE}", "*"),
    "data_quality": (f"{v.QUALITY}.*", "*"),
    "performance": (f"{v.PERFORMANCE}.*", ""),
    "estimated_performance": (f"{v.ESTIMATED_PERFORMANCE}.*", ""),
    "volume": (f"{v.OPERATIONAL}.{v.VOLUME}", ""),
    "latency_p95": (f"{v.OPERATIONAL}.{v.LATENCY_P95}", ""),
}


@dataclass(frozen=True)
class MetricRef:
    """A parsed ``family.metric`` (metric ``*`` = any)."""

    family: str
    metric: str

    @property
    def text(self) -> str:
        return f"{self.family}.{self.metric}"


def parse_metric(text: str) -> MetricRef:
    family, sep, metric = text.partition(".")
    if not sep or not metric:
        raise InputError(
            f"metric {text!r}: expected family.metric (e.g. drift.*, quality.null_share) or one "
            f"of {', '.join(sorted(ALIASES))}"
        )
    if family not in v.FAMILIES:
        raise InputError(
            f"metric {text!r}: unknown family {family!r} (one of {', '.join(v.FAMILIES)})"
        )
    return MetricRef(family, metric)


def resolve_metric(text: str, columns: str | None) -> tuple[str, str]:
    """An alias or ``family.metric`` -> (canonical metric text, column selector)."""
    if text in ALIASES:
        metric, default_columns = ALIASES[text]
        return metric, default_columns if columns is None else columns
    ref = parse_metric(text)
    if columns is not None:
        return ref.text, columns
    return ref.text, "*" if ref.family in PER_COLUMN_FAMILIES else ""


def parse_condition(text: str) -> tuple[str, float | None]:
    """``"drifted"`` or ``"> 0.3"`` -> (operator, threshold)."""
    cleaned = str(text).strip()
    if cleaned == DRIFTED:
        return DRIFTED, None
    for symbol in sorted(COMPARISONS, key=len, reverse=True):
        if cleaned.startswith(symbol):
            try:
                number = float(cleaned[len(symbol) :].strip())
            except ValueError:
                break
            if not math.isfinite(number):
                raise InputError(f"condition {text!r}: the threshold must be a finite number")
            return symbol, number
    raise InputError(
        f"condition {text!r}: expected 'drifted' or '<op> <number>' with op in "
        f"{', '.join(COMPARISONS)}"
    )


def breaches(
    operator: str, threshold: float | None, value: float | None, drifted: bool | None
) -> bool:
    """Whether one result breaches the condition (missing numbers never breach)."""
    if operator == DRIFTED:
        return bool(drifted)
    if value is None or threshold is None:
        return False
    return COMPARISONS[operator](value, threshold)


def column_matches(selector: str, column: str) -> bool:
    """Column selector: ``*`` = every feature (not the ``@`` pseudo-columns), ``''`` = the
    whole-window result, else comma-separated names or glob patterns."""
    if selector == "*":
        return not column.startswith("@")
    if selector == "":
        return column == ""
    return any(fnmatch.fnmatchcase(column, pat.strip()) for pat in selector.split(","))


def metric_matches(ref: MetricRef, family: str, metric: str) -> bool:
    return family == ref.family and (ref.metric == "*" or fnmatch.fnmatchcase(metric, ref.metric))
