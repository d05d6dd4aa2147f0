"""Data-quality checks of a window against the baseline, from profiles.

Drift asks "did the distribution move?"; these ask "is the data still well-formed?": more
nulls than the baseline had, values outside the range the baseline ever saw, categories it
never saw, values of the wrong type, and columns that disappeared or appeared. Each check is a
small record with its value, threshold and verdict, so alerting can treat them like drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .profiles import CategoricalProfile, NumericProfile, Profile

CheckName = Literal[
    "null_share",
    "out_of_range_share",
    "unseen_category_share",
    "type_errors",
    "kind_mismatch",
    "missing_column",
    "unexpected_column",
    "no_drift_verdict",
]

NULL_TOLERANCE = 0.05
"""Allowed increase of the null share over the baseline's (absolute share)."""
OUT_OF_RANGE_TOLERANCE = 0.01
"""Allowed share of values outside the baseline's range, on top of chance (2 / (n + 1))."""
UNSEEN_TOLERANCE = 0.01
"""Allowed share of values in categories the baseline never had."""
TYPE_ERROR_TOLERANCE = 0.0
"""Allowed share of values of the wrong type (none by default)."""


@dataclass
class QualityCheck:
    """One check of one column (``column`` is None for none)."""

    check: CheckName
    column: str | None
    value: float
    threshold: float
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return asdict(self)


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _column_checks(
    name: str,
    ref: Profile,
    cur: Profile,
    null_tolerance: float,
    out_of_range_tolerance: float,
    unseen_tolerance: float,
    type_error_tolerance: float,
) -> list[QualityCheck]:
    out: list[QualityCheck] = []
    if type(ref) is not type(cur):
        out.append(
            QualityCheck(
                "kind_mismatch",
                name,
                1.0,
                0.0,
                False,
                f"{name}: baseline is {type(ref).__name__}, window is {type(cur).__name__}",
            )
        )
        return out
    ref_null = _share(ref.nulls, ref.total)
    null = _share(cur.nulls, cur.total)
    limit = min(1.0, ref_null + null_tolerance)
    out.append(
        QualityCheck(
            "null_share",
            name,
            null,
            limit,
            null <= limit,
            f"{name}: {null:.1%} nulls (baseline {ref_null:.1%})",
        )
    )
    bad = _share(cur.invalid, cur.total)
    out.append(
        QualityCheck(
            "type_errors",
            name,
            bad,
            type_error_tolerance,
            bad <= type_error_tolerance,
            f"{name}: {cur.invalid} values of the wrong type",
        )
    )
    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        outside = _share(cur.hist[0] + cur.hist[-1], cur.count) if cur.hist else 0.0
        limit = out_of_range_tolerance + 2.0 / (ref.count + 1)
        out.append(
            QualityCheck(
                "out_of_range_share",
                name,
                outside,
                limit,
                outside <= limit,
                f"{name}: {outside:.2%} of values outside the baseline range "
                f"[{ref.min}, {ref.max}]",
            )
        )
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        unseen = sum(c for k, c in cur.counts.items() if k not in ref.counts)
        share = _share(unseen, cur.count)
        new = sorted((k for k in cur.counts if k not in ref.counts), key=lambda k: -cur.counts[k])[
            :5
        ]
        out.append(
            QualityCheck(
                "unseen_category_share",
                name,
                share,
                unseen_tolerance,
                share <= unseen_tolerance,
                f"{name}: {share:.2%} of values in unseen categories"
                + (f" (e.g. {', '.join(map(repr, new))})" if new else ""),
            )
        )
    return out


def quality_checks(
    reference_profiles: Mapping[str, Profile],
    current_profiles: Mapping[str, Profile],
    expected_columns: Iterable[str] | None = None,
    seen_columns: Iterable[str] | None = None,
    *,
    null_tolerance: float = NULL_TOLERANCE,
    out_of_range_tolerance: float = OUT_OF_RANGE_TOLERANCE,
    unseen_tolerance: float = UNSEEN_TOLERANCE,
    type_error_tolerance: float = TYPE_ERROR_TOLERANCE,
) -> list[QualityCheck]:
    """Quality checks of a window's profiles against the baseline's.

    Parameters
    ----------
    reference_profiles, current_profiles : Mapping[str, Profile]
        Profiles by column.
    expected_columns : iterable of str, optional
        Columns the window should have (default: the baseline's).
    seen_columns : iterable of str, optional
        Columns the window had (default: those profiled).
    null_tolerance, out_of_range_tolerance, unseen_tolerance, type_error_tolerance : float
        Allowed shares (see the module constants).

    Returns
    -------
    list of QualityCheck
        Column checks in baseline order, then missing and unexpected columns.
    """
    expected = list(expected_columns) if expected_columns is not None else list(reference_profiles)
    seen = list(seen_columns) if seen_columns is not None else list(current_profiles)
    seen_set, expected_set = set(seen), set(expected)
    out: list[QualityCheck] = []
    for name in expected:
        if name in reference_profiles and name in current_profiles:
            out.extend(
                _column_checks(
                    name,
                    reference_profiles[name],
                    current_profiles[name],
                    null_tolerance,
                    out_of_range_tolerance,
                    unseen_tolerance,
                    type_error_tolerance,
                )
            )
    for name in expected:
        if name not in seen_set:
            out.append(
                QualityCheck(
                    "missing_column", name, 1.0, 0.0, False, f"expected column {name!r} is missing"
                )
            )
    for name in seen:
        if name not in expected_set:
            out.append(
                QualityCheck(
                    "unexpected_column", name, 1.0, 0.0, False, f"unexpected column {name!r}"
                )
            )
    return out


def verdict_checks(results: Iterable[Any], expected_columns: Iterable[str]) -> list[QualityCheck]:
    """One failed check per expected column that has no drift verdict in this window.

    A drift record with ``status != "ok"`` (too few values, all null, a method error) or no
    record at all says nothing about drift; reporting it as a quality finding keeps "no drift
    flag" from reading as health when the data is missing.

    Parameters
    ----------
    results : iterable of DriftResult
        The window's drift records.
    expected_columns : iterable of str
        Columns that should have a verdict (the baseline's features).
    """
    by = {r.column: r for r in results}
    out: list[QualityCheck] = []
    for name in expected_columns:
        r = by.get(name)
        if r is not None and r.status == "ok":
            continue
        reason = r.message if r is not None and r.message else "no values in this window"
        out.append(
            QualityCheck(
                "no_drift_verdict",
                name,
                1.0,
                0.0,
                False,
                f"{name}: no drift verdict ({reason})",
            )
        )
    return out
