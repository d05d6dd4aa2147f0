"""Drift over long ranges (a day, a week, a month) from stored window profiles, never from rows.

Hourly profiles merge exactly (counts, moments, histograms, categories) and their samples merge
into a uniform sample of the union, so the cost of a range depends on the number of windows and
columns, not on the number of rows the range once held (``benchmarks/window_job.py`` shows it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.errors import NotFoundError
from monitor.jobs.drift import ProfilePair, profile_drift
from monitor.jobs.reference import Reference, load_training, merge_compatible
from monitor.stats.profiles import Profile, profile_from_dict
from monitor.stats.results import DatasetDriftResult


def merged_profiles(
    conn: sa.Connection, model_id: int, start: datetime, end: datetime, segment: str = ""
) -> dict[str, Profile]:
    """Each column's profile over ``[start, end)``: the merge of its stored window profiles."""
    merged: dict[str, Profile] = {}
    rows = conn.execute(
        sa.text(
            "SELECT column_name, profile, sample_num FROM window_profiles"
            " WHERE model_id = :m AND segment = :s AND window_start >= :a"
            " AND window_start < :b ORDER BY window_start"
        ),
        {"m": model_id, "s": segment, "a": start, "b": end},
    )
    for name, prof, sample in rows:
        d: dict[str, Any] = {**prof, "sample": sample or []} if prof["type"] == "numeric" else prof
        p = profile_from_dict(d)
        merged[name] = merge_compatible(merged[name], p) if name in merged else p
    return merged


def drift_over_range(
    engine: sa.Engine, model: str, start: datetime, end: datetime, *, segment: str = ""
) -> tuple[DatasetDriftResult, Reference]:
    """Drift of ``model`` over ``[start, end)`` against its latest training baseline."""
    with engine.connect() as conn:
        model_id = conn.execute(
            sa.text("SELECT id FROM models WHERE name = :n"), {"n": model}
        ).scalar()
        if model_id is None:
            raise NotFoundError(f"no model named {model!r}")
        ref = load_training(conn, int(model_id), None)
        if ref is None:
            raise NotFoundError(f"model {model!r} has no baseline")
        current = merged_profiles(conn, int(model_id), start, end, segment)
    pairs = [
        ProfilePair(c.name, c.profile, current[c.name])
        for c in ref.columns
        if c.role != "target" and c.name in current and current[c.name].count
    ]
    return profile_drift(pairs), ref
