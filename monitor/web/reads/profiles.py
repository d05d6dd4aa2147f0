"""Reference vs current distributions of a column, from stored profiles (never raw rows).

Profiles are the JSON of ``monitor.statistics.profiles`` (``to_dict``): numeric profiles carry
``edges`` and ``hist`` (underflow, inner bins, overflow), categorical ones ``counts`` and
``other``. Only those keys are read from the database (the reservoir sample stays there), and
everything is read defensively: a profile of an unexpected shape yields an empty side, not an
error page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.web.reads.common import ModelRef, TimeRange, finite, iso

MAX_CATEGORIES = 30

_PROFILE_KEYS = """
    jsonb_build_object(
      'type', profile->'type', 'edges', profile->'edges', 'hist', profile->'hist',
      'counts', profile->'counts', 'other', profile->'other', 'count', profile->'count',
      'nulls', profile->'nulls', 'invalid', profile->'invalid', 'min', profile->'min',
      'max', profile->'max', 'mean', profile->'mean')
"""


def reference_profile(conn: sa.Connection, model: ModelRef, column: str) -> dict[str, Any] | None:
    """The column's profile in the model's newest baseline."""
    row = conn.execute(
        sa.text(
            f"""
            SELECT {_PROFILE_KEYS}, b.id, mv.version
            FROM baseline_profiles bp JOIN baselines b ON b.id = bp.baseline_id
            JOIN model_versions mv ON mv.id = b.version_id
            WHERE b.model_id = :m AND bp.column_name = :c
            ORDER BY b.created_at DESC LIMIT 1
            """
        ),
        {"m": model.id, "c": column},
    ).first()
    if row is None:
        return None
    return {"profile": row[0], "baseline_id": row[1], "version": row[2]}


def current_profile(
    conn: sa.Connection, model: ModelRef, column: str, window_start: datetime, segment: str = ""
) -> dict[str, Any] | None:
    row = conn.execute(
        sa.text(
            f"""
            SELECT {_PROFILE_KEYS}, window_start, window_end, n FROM window_profiles
            WHERE model_id = :m AND window_start = :w AND segment = :s AND column_name = :c
            """
        ),
        {"m": model.id, "w": window_start, "s": segment, "c": column},
    ).first()
    if row is None:
        return None
    return {"profile": row[0], "window_start": iso(row[1]), "window_end": iso(row[2]), "n": row[3]}


def merged_profile(
    conn: sa.Connection, model: ModelRef, column: str, tr: TimeRange, segment: str = ""
) -> dict[str, Any] | None:
    """The counts of every window in range added up (a day or a week is the merge of hours)."""
    rows = conn.execute(
        sa.text(
            """
            SELECT profile->'type', profile->'hist', profile->'counts', profile->'other',
                   (profile->>'nulls')::bigint, (profile->'edges')
            FROM window_profiles
            WHERE model_id = :m AND segment = :s AND column_name = :c
              AND window_start >= :start AND window_start < :end
            """
        ),
        {"m": model.id, "s": segment, "c": column, "start": tr.start, "end": tr.end},
    ).all()
    if not rows:
        return None
    kind = rows[0][0]
    merged: dict[str, Any] = {"type": kind, "nulls": 0}
    if kind == "numeric":
        edges = rows[0][5]
        hist: list[int] | None = None
        for _, h, _, _, nulls, e in rows:
            if not isinstance(h, list) or e != edges:
                continue
            hist = list(h) if hist is None else [a + b for a, b in zip(hist, h, strict=False)]
            merged["nulls"] += nulls or 0
        merged.update(edges=edges, hist=hist or [])
    else:
        counts: dict[str, int] = {}
        other = 0
        for _, _, c, o, nulls, _ in rows:
            if isinstance(c, dict):
                for k, n in c.items():
                    counts[k] = counts.get(k, 0) + int(n)
            other += int(o or 0)
            merged["nulls"] += nulls or 0
        merged.update(counts=counts, other=other)
    return {
        "profile": merged,
        "window_start": iso(tr.start),
        "window_end": iso(tr.end),
        "n": None,
        "windows": len(rows),
    }


def _numeric(profile: dict[str, Any]) -> dict[str, Any] | None:
    edges, hist = profile.get("edges"), profile.get("hist")
    if not isinstance(edges, list) or not isinstance(hist, list) or len(edges) < 2:
        return None
    total = sum(int(c) for c in hist) or 1
    if len(hist) == len(edges) + 1:
        under, inner, over = hist[0], hist[1:-1], hist[-1]
    elif len(hist) == len(edges) - 1:
        under, inner, over = 0, hist, 0
    else:
        return None
    centers, widths, density = [], [], []
    for i, c in enumerate(inner):
        lo, hi = float(edges[i]), float(edges[i + 1])
        width = hi - lo if hi > lo else 1e-12
        centers.append((lo + hi) / 2)
        widths.append(width)
        density.append(int(c) / total / width)
    return {
        "centers": centers,
        "widths": widths,
        "density": density,
        "below_share": under / total,
        "above_share": over / total,
        "total": total,
    }


def _categorical(profile: dict[str, Any]) -> dict[str, float] | None:
    counts = profile.get("counts")
    if not isinstance(counts, dict):
        return None
    total = (sum(int(c) for c in counts.values()) + int(profile.get("other") or 0)) or 1
    shares = {str(k): int(c) / total for k, c in counts.items()}
    if profile.get("other"):
        shares["(other)"] = int(profile["other"]) / total
    return shares


def distribution(
    reference: dict[str, Any] | None, current: dict[str, Any] | None
) -> dict[str, Any]:
    """Both sides on one scale: densities on the reference's bins, or category shares."""
    ref = (reference or {}).get("profile") or {}
    cur = (current or {}).get("profile") or {}
    kind = ref.get("type") or cur.get("type")
    out: dict[str, Any] = {
        "kind": kind,
        "reference": None,
        "current": None,
        "baseline_version": (reference or {}).get("version"),
        "window_start": (current or {}).get("window_start"),
        "window_end": (current or {}).get("window_end"),
        "windows": (current or {}).get("windows", 1 if current else 0),
    }
    if kind == "numeric":
        out["reference"] = _numeric(ref) if ref else None
        out["current"] = _numeric(cur) if cur else None
    elif kind == "categorical":
        rs, cs = (_categorical(ref) or {}) if ref else {}, (_categorical(cur) or {}) if cur else {}
        keys = sorted(set(rs) | set(cs), key=lambda k: -max(rs.get(k, 0.0), cs.get(k, 0.0)))
        keys = keys[:MAX_CATEGORIES]
        out["categories"] = keys
        out["reference"] = [finite(rs.get(k, 0.0)) for k in keys] if rs else None
        out["current"] = [finite(cs.get(k, 0.0)) for k in keys] if cs else None
        out["unseen"] = sorted(k for k in cs if rs and k not in rs)[:MAX_CATEGORIES]
    return out
