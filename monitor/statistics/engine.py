"""Drift of whole datasets from raw values: ``detect_drift`` and column-kind inference.

Inputs are mappings of column name to array-like (pandas DataFrames work as they are: they are
read through ``.columns`` and ``df[name].to_numpy()``, without importing pandas). Each column
is cleaned and counted once (:class:`~monitor.statistics.columns.ColumnPair`), its method runs, and
the policy (:mod:`monitor.statistics.policy`) turns scores into verdicts. A column whose method
fails (e.g. Epps-Singleton on a zero-IQR column) gets ``status="error"`` with the reason; one
bad column never sinks the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitor.errors import InputError

from .columns import ColumnPair, count_values
from .effect import effect_for
from .policy import (
    EVIDENTLY_DRIFT_SHARE,
    DefaultPolicy,
    apply_default_policy,
    check_policy,
    evidently_default_method,
)
from .profiles import _is_null, as_1d
from .registry import DriftMethod, get_method
from .results import ColumnKind, DatasetDriftResult, DriftResult

INTEGER_CARDINALITY_LIMIT = 10
"""Evidently: an integer column with at most this many distinct values is categorical."""
TEXT_CARDINALITY_SHARE = 0.5
"""Evidently: a string column with more distinct values than this share of rows is text."""


def infer_column_kind(values: Any) -> ColumnKind | None:
    """Column kind by Evidently 0.7's rules (``infer_column_type``), or None to skip it.

    float -> num; integer -> cat if at most 10 distinct values, else num; bool and pandas
    ``category`` -> cat; strings -> cat, unless more than half the non-null values are distinct
    (Evidently's *text*, which we skip: per-value categories of IDs or free text are not a
    drift signal); datetimes, empty and mixed-type object columns -> None (skipped).
    """
    return _infer(values)[0]


def _infer(values: Any) -> tuple[ColumnKind | None, tuple[dict[Any, int], int] | None]:
    """The kind, plus the category counts when inference had to count them anyway."""
    dtype = getattr(values, "dtype", None)
    name = getattr(dtype, "name", "") if dtype is not None else ""
    if name == "category":
        return "cat", None
    arr = as_1d(values)
    kind = arr.dtype.kind
    if name.startswith(("Int", "UInt")):  # pandas nullable integers (Evidently: unknown)
        distinct = {v for v in arr.tolist() if not _is_null(v)}
        return ("cat" if len(distinct) <= INTEGER_CARDINALITY_LIMIT else "num"), None
    if name.startswith(("Float", "float")) or kind == "f":
        return "num", None
    if kind in "iu":
        return ("cat" if np.unique(arr).size <= INTEGER_CARDINALITY_LIMIT else "num"), None
    if name == "boolean" or kind == "b":
        return "cat", None
    if kind not in "OUS":
        return None, None
    first = next((v for v in arr if not _is_null(v)), None)
    last = next((v for v in arr[::-1] if not _is_null(v)), None)
    if not (isinstance(first, str) and isinstance(last, str)):
        return None, None
    counts = count_values(values)
    n_valid = len(arr) - counts[1]
    if len(counts[0]) > n_valid * TEXT_CARDINALITY_SHARE:
        return None, None
    return "cat", counts


def _columns_of(data: Any) -> list[str]:
    if hasattr(data, "columns"):
        return [str(c) for c in data.columns]
    if isinstance(data, Mapping):
        return [str(c) for c in data]
    raise InputError("reference and current must be DataFrames or mappings of column -> values")


def _override(
    name: str,
    kind: ColumnKind,
    per_column: Mapping[str, Any] | None,
    per_kind: Mapping[str, Any] | None,
    everywhere: Any,
) -> Any:
    """Evidently's precedence: per column, then per column kind, then for all columns."""
    if per_column and name in per_column:
        return per_column[name]
    if per_kind and kind in per_kind:
        return per_kind[kind]
    return everywhere


def _pick_method(method_name: str, kind: ColumnKind, column: str) -> DriftMethod:
    try:
        return get_method(method_name, kind)
    except InputError as exc:
        raise InputError(f"column {column!r}: {exc}") from exc


def _empty_result(
    column: str,
    kind: ColumnKind,
    method: DriftMethod,
    threshold: float,
    pair: ColumnPair,
    status: str,
    message: str,
) -> DriftResult:
    return DriftResult(
        column=column,
        kind=kind,
        method=method.name,
        method_kind=method.kind,
        statistic=None,
        p_value=None,
        threshold=threshold,
        drifted=False,
        effect_size=None,
        n_reference=pair.n_ref,
        n_current=pair.n_cur,
        status=status,  # type: ignore[arg-type]
        message=message,
    )


def column_drift(
    pair: ColumnPair,
    method: DriftMethod,
    threshold: float,
    *,
    min_n: int = 1,
    ci_level: float = 0.90,
) -> DriftResult:
    """Run one method on one column and judge it by the method's own rule.

    Parameters
    ----------
    pair : ColumnPair
        The cleaned column.
    method : DriftMethod
        A registered method accepting the column's kind.
    threshold : float
        Threshold of the verdict (a p-value level or a distance).
    min_n : int
        Fewer non-null values than this on either side -> ``insufficient_data``.
    ci_level : float
        Level of the effect size's confidence interval.

    Returns
    -------
    DriftResult
    """
    kind = pair.kind
    if pair.n_ref < max(min_n, 1) or pair.n_cur < max(min_n, 1):
        return _empty_result(
            pair.name,
            kind,
            method,
            threshold,
            pair,
            "insufficient_data",
            f"not enough data: {pair.n_ref} reference and {pair.n_cur} "
            f"current values (need {max(min_n, 1)} on each side)",
        )
    try:
        # scipy warns about precision loss on (near-)constant data; the numbers it returns are
        # still the right ones (p = 1, nan handled by the policy), so the warning is noise here.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = method.func(pair)
            effect = effect_for(pair, ci_level)
    except (InputError, ValueError, ZeroDivisionError, FloatingPointError) as exc:
        return _empty_result(pair.name, kind, method, threshold, pair, "error", str(exc))
    score = method.score(out)
    return DriftResult(
        column=pair.name,
        kind=kind,
        method=method.name,
        method_kind=method.kind,
        statistic=out.statistic,
        p_value=out.p_value,
        threshold=threshold,
        drifted=method.decide(score, threshold),
        effect_size=effect.value,
        effect_name=effect.name,
        effect_ci=effect.ci,
        n_reference=pair.n_ref,
        n_current=pair.n_cur,
    )


def detect_drift(
    reference: Any,
    current: Any,
    *,
    policy: str = "default",
    columns: Sequence[str] | None = None,
    column_kinds: Mapping[str, ColumnKind] | None = None,
    method: str | None = None,
    methods: Mapping[str, str] | None = None,
    kind_methods: Mapping[str, str] | None = None,
    threshold: float | None = None,
    thresholds: Mapping[str, float] | None = None,
    kind_thresholds: Mapping[str, float] | None = None,
    drift_share: float | None = None,
    params: DefaultPolicy | None = None,
) -> DatasetDriftResult:
    """Drift of every common column of ``reference`` and ``current``.

    Parameters
    ----------
    reference, current : DataFrame or Mapping[str, array-like]
        The baseline and the window to compare.
    policy : {"default", "evidently"}
        Decision policy (see :mod:`monitor.statistics.policy`).
    columns : sequence of str, optional
        Columns to compare (default: those of the reference; one missing from the current
        data gets a record with ``status="insufficient_data"``, never silence).
    column_kinds : mapping, optional
        Explicit "num"/"cat" per column, overriding inference (Evidently's DataDefinition).
        Inferred kinds come from the reference (the current window only when the reference
        has no value at all): a small window must not turn a column into "text".
    method, methods, kind_methods : optional
        Method for all columns, per column, per column kind (precedence: column, kind, all).
    threshold, thresholds, kind_thresholds : optional
        Threshold overrides with the same precedence. Under the default policy a p-value
        method's threshold is the false discovery rate level (``alpha``).
    drift_share : float, optional
        Share of drifted columns at which the dataset drifts; default 0.5 under ``evidently``,
        "any column" under ``default``.
    params : DefaultPolicy, optional
        Parameters of the default policy (alpha, tolerances, minimum n, CI level).

    Returns
    -------
    DatasetDriftResult
    """
    check_policy(policy)
    params = params or DefaultPolicy()
    ref_cols, cur_cols = _columns_of(reference), _columns_of(current)
    absent: list[str] = []
    if columns is None:
        cur_set = set(cur_cols)
        names = [c for c in ref_cols if c in cur_set]
        if not names:
            raise InputError("reference and current have no columns in common")
        absent = [c for c in ref_cols if c not in cur_set]
    else:
        names = list(columns)
        missing = [c for c in names if c not in ref_cols or c not in cur_cols]
        if missing:
            raise InputError(f"columns missing from reference or current: {', '.join(missing)}")
    kinds = dict(column_kinds or {})
    for c, k in kinds.items():
        if k not in ("num", "cat"):
            raise InputError(f"column {c!r}: kind must be 'num' or 'cat', not {k!r}")
    results: list[DriftResult] = []
    skipped: dict[str, str] = {}
    for name in names:
        kind = kinds.get(name)
        if kind is None:
            # the reference decides (a 20-row window of a 500-level column looks like text);
            # only a reference without a single value leaves it to the current window
            kind, _ = _infer(reference[name])
            if kind is None and _all_null(reference[name]):
                kind, _ = _infer(current[name])
        if kind is None:
            skipped[name] = "not numeric or categorical (text, datetime or unknown type)"
            continue
        pair = ColumnPair(kind, reference[name], current[name], name=name)
        chosen = _override(name, kind, methods, kind_methods, method)
        if chosen is None:
            if policy == "evidently":
                chosen = (
                    evidently_default_method(pair)
                    if pair.n_ref and pair.n_cur
                    else ("ks" if kind == "num" else "chisquare")
                )
            else:
                chosen = params.methods[kind]
        m = _pick_method(chosen, kind, name)
        t = _override(name, kind, thresholds, kind_thresholds, threshold)
        if t is None:
            t = (
                m.default_threshold
                if policy == "evidently" or m.kind == "distance"
                else params.alpha
            )
        min_n = 1 if policy == "evidently" else params.min_n
        results.append(column_drift(pair, m, float(t), min_n=min_n, ci_level=params.ci_level))
        del pair  # free this column's sorted copies before the next column is read
    for name in absent:
        kind = kinds.get(name) or _infer(reference[name])[0]
        if kind is None:
            skipped[name] = "not numeric or categorical (text, datetime or unknown type)"
            continue
        results.append(_absent_result(name, kind, reference[name]))
    if policy == "default":
        apply_default_policy(results, params)
        share = drift_share
    else:
        share = EVIDENTLY_DRIFT_SHARE if drift_share is None else drift_share
    return DatasetDriftResult(columns=results, policy=policy, drift_share=share, skipped=skipped)


def _all_null(values: Any) -> bool:
    arr = as_1d(values)
    if arr.dtype.kind == "f":
        return bool(np.isnan(arr).all())
    if arr.dtype.kind in "OUS":
        return all(_is_null(v) for v in arr.tolist())
    return arr.size == 0


def _absent_result(name: str, kind: ColumnKind, reference: Any) -> DriftResult:
    """The record of a reference column the current data does not have at all."""
    n_ref = ColumnPair(kind, reference, [], name=name).n_ref
    return DriftResult(
        column=name,
        kind=kind,
        method="-",
        method_kind="p_value",
        statistic=None,
        p_value=None,
        threshold=0.0,
        drifted=False,
        effect_size=None,
        n_reference=n_ref,
        n_current=0,
        status="insufficient_data",
        message="column missing from the current data",
    )
