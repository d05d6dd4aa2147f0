"""Time series of stored results: the drift heatmap and per-family lines, bucketed when long.

A drift *score* puts every method on one scale for the heatmap: distance / threshold for
distances, ``ln(p) / ln(alpha)`` for tests (both reach 1 exactly where the method flags drift),
so a Wasserstein distance and a chi-squared p-value can share a colour bar.

Postgres buckets the windows (bucket index ``i`` from the range start) and returns one row per
line with its points as arrays: a 14-day heatmap of 50 features is 50 rows, not 16,800, which
keeps driver and Python time per request small.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError
from monitor.storage import vocabulary as v
from monitor.web.reads.common import ModelRef, TimeRange, finite, iso

SCORE_SQL = """
    CASE
      WHEN p_value IS NOT NULL AND threshold > 0 AND threshold < 1
        THEN ln(greatest(p_value, 1e-300)) / ln(threshold)
      WHEN value IS NOT NULL AND threshold > 0 THEN value / threshold
      WHEN drifted THEN 1.5
      ELSE 0
    END
"""
AGGREGATES = {"avg": "avg", "max": "max", "min": "min", "sum": "sum"}
BUCKET_SQL = "floor(date_part('epoch', window_start - :o) / :b)::int"
"""Bucket index of a window: float8 arithmetic (``extract`` is numeric since PG 14, ~10% slower
on a 90-day aggregation); exact, epochs differ by whole seconds."""

_HEATMAP = sa.text(
    f"""
    SELECT column_name, array_agg(i ORDER BY i), array_agg(score ORDER BY i),
           array_agg(drifted ORDER BY i)
    FROM (
        SELECT column_name, {BUCKET_SQL} AS i, round(max({SCORE_SQL})::numeric, 4)::float8 AS score,
               coalesce(bool_or(drifted), false) AS drifted
        FROM results
        WHERE model_id = :m AND family = 'drift' AND segment = :s
          AND window_start >= :start AND window_start < :end
        GROUP BY 1, 2
    ) x
    GROUP BY column_name
    """
)


def bucket_times(tr: TimeRange) -> list[str]:
    """ISO start of every bucket of the range (index ``i`` of the SQL above)."""
    step = timedelta(seconds=tr.bucket_seconds)
    n = int((tr.end - tr.start) / step) + 1
    return [iso(tr.start + k * step) or "" for k in range(n)]


def _params(model: ModelRef, tr: TimeRange, segment: str) -> dict[str, Any]:
    return {
        "m": model.id, "s": segment, "b": tr.bucket_seconds, "o": tr.start,
        "start": tr.start, "end": tr.end,
    }  # fmt: skip


def heatmap(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, segment: str = "", sort: str = "drifted"
) -> dict[str, Any]:
    """Drift score per feature (rows) and window bucket (columns), features sorted.

    ``sort="drifted"`` puts the features drifted in most buckets first (ties: highest mean
    score); ``sort="name"`` sorts alphabetically. Model outputs (``@prediction``...) are
    returned separately under ``outputs``. Columns are the buckets that have any result.
    """
    if sort not in ("drifted", "name"):
        raise InputError("sort must be 'drifted' or 'name'")
    rows = conn.execute(_HEATMAP, _params(model, tr, segment)).all()
    grid = bucket_times(tr)
    used = sorted({i for r in rows for i in r[1] if 0 <= i < len(grid)})
    pos = {i: k for k, i in enumerate(used)}
    cells: dict[str, list[float | None]] = {}
    flags: dict[str, list[bool]] = {}
    stats: list[dict[str, Any]] = []
    for col, idx, scores, drifted in rows:
        zs: list[float | None] = [None] * len(used)
        fs = [False] * len(used)
        for i, z, d in zip(idx, scores, drifted, strict=True):
            if i in pos:
                zs[pos[i]], fs[pos[i]] = finite(z), bool(d)
        cells[col], flags[col] = zs, fs
        present = [z for z in zs if z is not None]
        n_drift = sum(fs)
        stats.append(
            {
                "name": col,
                "windows": len(present),
                "drifted_windows": n_drift,
                "drifted_share": round(n_drift / len(present), 4) if present else 0.0,
                "mean_score": round(sum(present) / len(present), 4) if present else 0.0,
                "max_score": max(present) if present else None,
            }
        )
    if sort == "drifted":
        stats.sort(key=lambda s: (-s["drifted_share"], -s["mean_score"], s["name"]))
    else:
        stats.sort(key=lambda s: s["name"])
    features = [s for s in stats if not s["name"].startswith("@")]
    outputs = [s for s in stats if s["name"].startswith("@")]
    return {
        "times": [grid[i] for i in used],
        "features": features,
        "outputs": outputs,
        "z": [cells[s["name"]] for s in features],
        "drifted": [flags[s["name"]] for s in features],
        "outputs_z": [cells[s["name"]] for s in outputs],
    }


def _line(
    grid: list[str], idx: list[int], values: list[Any], p_values: list[Any],
    thresholds: list[Any], drifted: list[Any], ns: list[Any],
) -> dict[str, list[Any]]:  # fmt: skip
    keep = [k for k, i in enumerate(idx) if 0 <= i < len(grid)]
    return {
        "t": [grid[idx[k]] for k in keep],
        "value": [finite(values[k]) for k in keep],
        "p_value": [finite(p_values[k]) for k in keep],
        "threshold": [finite(thresholds[k]) for k in keep],
        "drifted": [bool(drifted[k]) for k in keep],
        "n": [None if ns[k] is None else int(ns[k]) for k in keep],
    }


_LINE_ARRAYS = """
    array_agg(i ORDER BY i), array_agg(value ORDER BY i), array_agg(p_value ORDER BY i),
    array_agg(threshold ORDER BY i), array_agg(drifted ORDER BY i), array_agg(n ORDER BY i)
"""


def family_series(
    conn: sa.Connection,
    model: ModelRef,
    tr: TimeRange,
    family: str,
    segment: str = "",
    column: str | None = "",
    agg: str = "avg",
) -> dict[str, Any]:
    """Lines per metric of one family over the range.

    ``column``: ``''`` the whole-window rows, a name that column's rows, ``None`` every column
    aggregated (e.g. the worst null share of any feature). Buckets aggregate with ``agg``.
    """
    if family not in v.FAMILIES:
        raise InputError(f"family must be one of {', '.join(v.FAMILIES)}")
    if agg not in AGGREGATES:
        raise InputError(f"agg must be one of {', '.join(AGGREGATES)}")
    where_col = "" if column is None else "AND column_name = :c"
    sql = sa.text(
        f"""
        SELECT metric, {_LINE_ARRAYS}
        FROM (
            SELECT metric, {BUCKET_SQL} AS i, {AGGREGATES[agg]}(value) AS value,
                   min(p_value) AS p_value, max(threshold) AS threshold,
                   coalesce(bool_or(drifted), false) AS drifted, sum(n_current) AS n
            FROM results
            WHERE model_id = :m AND family = :f AND segment = :s
              AND window_start >= :start AND window_start < :end {where_col}
            GROUP BY 1, 2
        ) x
        GROUP BY metric ORDER BY metric
        """
    )
    params = {**_params(model, tr, segment), "f": family, "c": column}
    grid = bucket_times(tr)
    lines = {r[0]: _line(grid, *r[1:]) for r in conn.execute(sql, params)}
    return {"family": family, "column": column, "segment": segment, "metrics": lines}


_PAGE_SERIES = sa.text(
    f"""
    SELECT family, col, metric, {_LINE_ARRAYS}
    FROM (
        SELECT family, CASE WHEN family = 'quality' THEN '*' ELSE column_name END AS col,
               metric, {BUCKET_SQL} AS i,
               CASE WHEN family IN ('quality', 'drift') THEN max(value)
                    WHEN family = 'operational' AND metric = 'volume' THEN sum(value)
                    ELSE avg(value) END AS value,
               min(p_value) AS p_value, max(threshold) AS threshold,
               coalesce(bool_or(drifted), false) AS drifted, sum(n_current) AS n
        FROM results
        WHERE model_id = :m AND segment = :s AND window_start >= :start AND window_start < :end
          AND family = ANY(CAST(:families AS text[]))
          AND (family = 'quality' OR column_name = ''
               OR (family = 'drift' AND column_name IN ('@prediction', '@score')))
        GROUP BY 1, 2, 3, 4
    ) x
    GROUP BY family, col, metric ORDER BY 1, 2, 3
    """
)


def page_series(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, segment: str = ""
) -> dict[str, dict[str, dict[str, dict[str, list[Any]]]]]:
    """Every line of the model page in one query: family -> column -> metric -> line.

    Quality is aggregated over columns (the worst column, column ``*``); the outputs' drift is
    per pseudo-column; the other families are whole-window rows. Volume sums over a bucket.
    """
    families = [v.DRIFT, v.DATASET_DRIFT, v.QUALITY, v.PERFORMANCE, v.ESTIMATED_PERFORMANCE,
                v.OPERATIONAL]  # fmt: skip
    out: dict[str, dict[str, dict[str, dict[str, list[Any]]]]] = {f: {} for f in families}
    grid = bucket_times(tr)
    params = {**_params(model, tr, segment), "families": families}
    for fam, col, metric, *arrays in conn.execute(_PAGE_SERIES, params):
        out[fam].setdefault(col, {})[metric] = _line(grid, *arrays)
    return out


def most_drifted_window(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, column: str, segment: str = ""
) -> Any:
    """The window in range where ``column`` drifted most (by score), else the newest one."""
    return conn.execute(
        sa.text(
            f"""
            SELECT window_start FROM results
            WHERE model_id = :m AND family = 'drift' AND segment = :s AND column_name = :c
              AND window_start >= :start AND window_start < :end
            ORDER BY {SCORE_SQL} DESC NULLS LAST, window_start DESC LIMIT 1
            """
        ),
        {"m": model.id, "s": segment, "c": column, "start": tr.start, "end": tr.end},
    ).scalar()


def drift_windows(
    conn: sa.Connection,
    model: ModelRef,
    tr: TimeRange,
    column: str,
    segment: str = "",
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The column's drifted windows in range, worst first (links to their distributions)."""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT window_start, metric, value, p_value, threshold, {SCORE_SQL} AS score,
                   n_reference, n_current
            FROM results
            WHERE model_id = :m AND family = 'drift' AND segment = :s AND column_name = :c
              AND window_start >= :start AND window_start < :end AND drifted
            ORDER BY score DESC NULLS LAST LIMIT :l
            """
        ),
        {"m": model.id, "s": segment, "c": column, "start": tr.start, "end": tr.end, "l": limit},
    )
    return [
        {
            "window_start": iso(r[0]),
            "metric": r[1],
            "value": finite(r[2]),
            "p_value": finite(r[3]),
            "threshold": finite(r[4]),
            "score": finite(r[5]),
            "n_reference": r[6],
            "n_current": r[7],
        }
        for r in rows
    ]
