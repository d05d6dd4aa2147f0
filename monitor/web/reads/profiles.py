"""Reference vs current distributions of a column, from stored profiles (never raw rows).

Profiles are the JSON of ``monitor.statistics.profiles`` (``to_dict``): numeric profiles carry
``edges`` and ``hist`` (underflow, inner bins, overflow), categorical ones ``counts`` and
``other``. Only those keys are read from the database (the reservoir sample stays there), and
everything is read defensively: a profile of an unexpected shape yields an empty side, not an
error page.
"""

from __future__ import annotations

import itertools
import math
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
    """Every window in range merged (a day or a week is the merge of its hours): counts added,
    moments combined exactly (Chan et al.), extremes kept."""
    rows = conn.execute(
        sa.text(
            """
            SELECT profile->'type', profile->'hist', profile->'counts', profile->'other',
                   (profile->>'nulls')::bigint, profile->'edges', (profile->>'count')::bigint,
                   (profile->>'mean')::float8, (profile->>'m2')::float8,
                   (profile->>'min')::float8, (profile->>'max')::float8,
                   (profile->>'invalid')::bigint
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
    merged: dict[str, Any] = {"type": kind, "nulls": 0, "invalid": 0, "count": 0}
    if kind == "numeric":
        edges = rows[0][5]
        hist: list[int] | None = None
        mean = m2 = 0.0
        lo: float | None = None
        hi: float | None = None
        for _, h, _, _, nulls, e, count, w_mean, w_m2, w_min, w_max, invalid in rows:
            if not isinstance(h, list) or e != edges:
                continue
            hist = list(h) if hist is None else [a + b for a, b in zip(hist, h, strict=False)]
            merged["nulls"] += nulls or 0
            merged["invalid"] += invalid or 0
            n_b = int(count or 0)
            if n_b and w_mean is not None:
                n_a = merged["count"]
                n = n_a + n_b
                delta = w_mean - mean
                mean += delta * n_b / n
                m2 += (w_m2 or 0.0) + delta * delta * n_a * n_b / n
                merged["count"] = n
            lo = w_min if lo is None or (w_min is not None and w_min < lo) else lo
            hi = w_max if hi is None or (w_max is not None and w_max > hi) else hi
        merged.update(edges=edges, hist=hist or [], mean=mean, m2=m2, min=lo, max=hi)
    else:
        counts: dict[str, int] = {}
        other = 0
        for _, _, c, o, nulls, _, count, *_rest in rows:
            if isinstance(c, dict):
                for k, n in c.items():
                    counts[k] = counts.get(k, 0) + int(n)
            other += int(o or 0)
            merged["nulls"] += nulls or 0
            merged["invalid"] += _rest[-1] or 0
            merged["count"] += int(count or 0)
        merged.update(counts=counts, other=other)
    return {
        "profile": merged,
        "window_start": iso(tr.start),
        "window_end": iso(tr.end),
        "n": None,
        "windows": len(rows),
    }


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_MOVERS = 8


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def histogram_quantiles(profile: dict[str, Any], qs: tuple[float, ...] = QUANTILES) -> list[Any]:
    """Quantiles read off a stored histogram, linear within a bin.

    The bins are the baseline's quantile bins (a hundred by default), so a quantile is exact
    to about one percentile of the baseline; the outer bins run to the profile's min and max.
    """
    edges, hist = profile.get("edges"), profile.get("hist")
    if not isinstance(edges, list) or not isinstance(hist, list) or len(edges) < 2:
        return [None] * len(qs)
    lo, hi = _num(profile.get("min")), _num(profile.get("max"))
    e = [float(x) for x in edges]
    if len(hist) == len(e) + 1:
        bins = [(min(lo, e[0]) if lo is not None else e[0], e[0])]
        bins += list(itertools.pairwise(e))
        bins.append((e[-1], max(hi, e[-1]) if hi is not None else e[-1]))
    elif len(hist) == len(e) - 1:
        bins = list(itertools.pairwise(e))
    else:
        return [None] * len(qs)
    counts = [max(int(c), 0) for c in hist]
    total = sum(counts)
    if total == 0:
        return [None] * len(qs)
    out: list[Any] = []
    for q in qs:
        target, cum = q * total, 0
        value = bins[-1][1]
        for (b_lo, b_hi), c in zip(bins, counts, strict=True):
            if c and cum + c >= target:
                value = b_lo + (b_hi - b_lo) * (target - cum) / c
                break
            cum += c
        if lo is not None:
            value = max(value, lo)
        if hi is not None:
            value = min(value, hi)
        out.append(value)
    return out


def _missing_share(profile: dict[str, Any]) -> float | None:
    count = int(profile.get("count") or 0)
    bad = int(profile.get("nulls") or 0) + int(profile.get("invalid") or 0)
    return bad / (count + bad) if count + bad else None


def _numeric_summary(profile: dict[str, Any]) -> dict[str, Any]:
    count = int(profile.get("count") or 0)
    m2 = _num(profile.get("m2"))
    sd = math.sqrt(max(m2, 0.0) / count) if m2 is not None and count > 1 else None
    return {
        "count": count,
        "mean": _num(profile.get("mean")) if count else None,
        "sd": sd,
        "quantiles": histogram_quantiles(profile),
        "missing": _missing_share(profile),
    }


def what_changed(
    reference: dict[str, Any] | None, current: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Baseline against the current window in the feature's own terms.

    Numeric: mean, spread, quantiles and the share of missing values on both sides, each change
    also in baseline standard deviations. Categorical: the categories whose share moved most
    (in percentage points; new ones marked), and the missing share.
    """
    ref = (reference or {}).get("profile") or {}
    cur = (current or {}).get("profile") or {}
    if not ref or not cur:
        return None
    kind = ref.get("type") or cur.get("type")
    if kind == "numeric":
        a, b = _numeric_summary(ref), _numeric_summary(cur)
        sd = a["sd"] or None
        rows = [("mean", a["mean"], b["mean"]), ("standard deviation", a["sd"], b["sd"])]
        rows += [
            (f"{round(q * 100)}th percentile" if q != 0.5 else "median", x, y)
            for q, x, y in zip(QUANTILES, a["quantiles"], b["quantiles"], strict=True)
        ]
        return {
            "kind": "numeric",
            "rows": [
                {
                    "stat": name,
                    "baseline": finite(x),
                    "current": finite(y),
                    "change": finite(y - x) if x is not None and y is not None else None,
                    "change_sd": finite((y - x) / sd)
                    if x is not None and y is not None and sd
                    else None,
                }
                for name, x, y in rows
            ],
            "missing": {"baseline": a["missing"], "current": b["missing"]},
            "n": {"baseline": a["count"], "current": b["count"]},
        }
    rs, cs = _categorical(ref) or {}, _categorical(cur) or {}
    movers = [
        {
            "category": k,
            "baseline": finite(rs.get(k, 0.0)),
            "current": finite(cs.get(k, 0.0)),
            "points": finite(100 * (cs.get(k, 0.0) - rs.get(k, 0.0))),
            "new": k not in rs and k != "(other)",
        }
        for k in set(rs) | set(cs)
    ]
    movers.sort(key=lambda r: (-abs(r["points"] or 0.0), r["category"]))
    return {
        "kind": "categorical",
        "movers": movers[:MAX_MOVERS],
        "more": max(len(movers) - MAX_MOVERS, 0),
        "new": sorted(r["category"] for r in movers if r["new"])[:MAX_CATEGORIES],
        "missing": {"baseline": _missing_share(ref), "current": _missing_share(cur)},
        "n": {"baseline": int(ref.get("count") or 0), "current": int(cur.get("count") or 0)},
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
