"""Drift over long ranges (a day, a week, a month) from stored window profiles, never from rows.

A range's profile is the merge of its hourly profiles, done in one pass rather than hour by
hour (:func:`monitor.statistics.profiles.pool_numeric` / ``merge_categorical``): counts, nulls
and histograms are summed, min/max taken, means and squared deviations pooled exactly (Chan et
al.), category tables added. The uniform sample of the union is drawn
the same way a chain of pairwise merges would draw it, but at once: the number of values taken
from each window is multivariate-hypergeometric in the windows' row counts, and because stored
samples are in random order, those values are simply a prefix of each window's sample. So the
query fetches ~2,000 sample values per column whatever the range, and the cost depends on the
number of windows and columns, not on the rows they once held (``benchmarks/window_job.py``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from monitor.errors import NotFoundError
from monitor.jobs.drift import ProfilePair, profile_drift
from monitor.jobs.reference import Reference, load_training
from monitor.statistics.profiles import (
    DEFAULT_SAMPLE_SIZE,
    CategoricalProfile,
    NumericProfile,
    Profile,
    merge_categorical,
    pool_numeric,
)
from monitor.statistics.results import DatasetDriftResult


def _numeric_part(d: dict[str, Any], edges: list[float]) -> NumericProfile:
    """A stored window profile (stored without edges or sample) on the range's edges."""
    return NumericProfile(
        count=int(d["count"]),
        nulls=int(d["nulls"]),
        invalid=int(d["invalid"]),
        min=d["min"],
        max=d["max"],
        mean=float(d["mean"]),
        m2=float(d["m2"]),
        edges=edges,
        hist=d["hist"],
        sample_size=int(d.get("sample_size", DEFAULT_SAMPLE_SIZE)),
        seed=int(d.get("seed", 0)),
    )


def _merge_numeric(
    parts: list[dict[str, Any]], edges: list[float]
) -> tuple[NumericProfile, list[int]]:
    """Pool the windows' summaries; returns the profile (sample empty) and per-window quotas."""
    total = sum(int(p["count"]) for p in parts)
    rng = np.random.default_rng([total & 0xFFFFFFFF, len(parts)])
    return pool_numeric([_numeric_part(p, edges) for p in parts], rng)


def merged_profiles(
    conn: sa.Connection,
    model_id: int,
    start: datetime,
    end: datetime,
    segment: str = "",
    edges: dict[str, list[float]] | None = None,
) -> dict[str, Profile]:
    """Each column's profile over ``[start, end)``: the merge of its stored window profiles.

    ``edges`` (column -> bin edges, normally the reference's) selects which numeric window
    profiles can merge; without it the edges of each column's latest window are used. Windows
    profiled on other edges (another baseline) are left out.
    """
    rows = conn.execute(
        sa.text(
            "SELECT window_start, column_name, profile - 'edges' AS profile,"
            " md5(profile->>'edges') AS e"
            " FROM window_profiles WHERE model_id = :m AND segment = :s"
            " AND window_start >= :a AND window_start < :b ORDER BY window_start"
        ),
        {"m": model_id, "s": segment, "a": start, "b": end},
    ).all()
    by_column: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_column[row.column_name].append(row)
    wanted_edges = _edge_groups(conn, model_id, segment, start, end, by_column, edges)
    merged: dict[str, Profile] = {}
    quotas: list[tuple[datetime, str, int]] = []
    for name, items in by_column.items():
        if items[-1].profile["type"] == "categorical":
            merged[name] = merge_categorical(
                [
                    CategoricalProfile.from_dict(r.profile)
                    for r in items
                    if r.profile["type"] == "categorical"
                ]
            )
            continue
        digest, column_edges = wanted_edges[name]
        same = [r for r in items if r.profile["type"] == "numeric" and r.e == digest]
        if not same:  # every window of the range was profiled on another baseline's edges
            continue
        profile, quota = _merge_numeric([r.profile for r in same], column_edges)
        merged[name] = profile
        quotas += [(r.window_start, name, q) for r, q in zip(same, quota, strict=True) if q]
    _fill_samples(conn, model_id, segment, merged, quotas)
    return merged


def _edge_groups(
    conn: sa.Connection,
    model_id: int,
    segment: str,
    start: datetime,
    end: datetime,
    by_column: dict[str, list[Any]],
    edges: dict[str, list[float]] | None,
) -> dict[str, tuple[str, list[float]]]:
    """Per numeric column: (md5 of the edges to keep, the edges)."""
    out: dict[str, tuple[str, list[float]]] = {}
    for name, items in by_column.items():
        if items[-1].profile["type"] != "numeric":
            continue
        if edges and name in edges:
            digest = conn.execute(
                sa.text("SELECT md5(CAST(:e AS jsonb)::text)"), {"e": _json(edges[name])}
            ).scalar_one()
            out[name] = (digest, list(edges[name]))
        else:
            latest = items[-1]
            found = conn.execute(
                sa.text(
                    "SELECT profile->'edges' FROM window_profiles WHERE model_id = :m AND"
                    " segment = :s AND window_start = :w AND column_name = :c"
                ),
                {"m": model_id, "s": segment, "w": latest.window_start, "c": name},
            ).scalar_one()
            out[name] = (latest.e, found)
    return out


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _fill_samples(
    conn: sa.Connection,
    model_id: int,
    segment: str,
    merged: dict[str, Profile],
    quotas: list[tuple[datetime, str, int]],
) -> None:
    """Fetch each window's sample prefix of its quota (one query for the whole range)."""
    if not quotas:
        return
    rows = conn.execute(
        sa.text(
            "SELECT q.c, w.sample_num[1:q.k] FROM unnest(CAST(:ws AS timestamptz[]),"
            " CAST(:cs AS text[]), CAST(:ks AS int[])) AS q(ws, c, k) JOIN window_profiles w"
            " ON w.model_id = :m AND w.segment = :s AND w.window_start = q.ws"
            " AND w.column_name = q.c"
        ),
        {
            "ws": [q[0] for q in quotas],
            "cs": [q[1] for q in quotas],
            "ks": [q[2] for q in quotas],
            "m": model_id,
            "s": segment,
        },
    )
    samples: dict[str, list[float]] = defaultdict(list)
    for name, values in rows:
        samples[name] += values or []
    for name, values in samples.items():
        profile = merged[name]
        assert isinstance(profile, NumericProfile)
        profile.sample = values


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
        edges = {
            c.name: list(c.profile.edges)
            for c in ref.columns
            if isinstance(c.profile, NumericProfile)
        }
        current = merged_profiles(conn, int(model_id), start, end, segment, edges)
    pairs = [
        ProfilePair(c.name, c.profile, current[c.name])
        for c in ref.columns
        if c.role != "target" and c.name in current and current[c.name].count
    ]
    return profile_drift(pairs), ref
