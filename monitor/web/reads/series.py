"""Time series of stored results: the drift heatmap and per-family lines, bucketed when long.

A drift *score* puts every column on one scale for the heatmap: the size of the change in
multiples of its practical tolerance, taken at the effect size's lower confidence bound (the
number the default policy compares with the tolerance, so 1 is where a significant shift starts
to count as drift). Rows without an effect size (distance methods, older results) fall back to
distance / threshold, or ``ln(p) / ln(alpha)`` for tests: each also reaches 1 exactly at the
method's threshold. A p-value alone is not a size: every p of 0 would look alike.

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
from monitor.web.reads.common import ModelRef, TimeRange, finite, iso, latest_window_end

SCORE_SQL = """
    CASE
      WHEN ci_low IS NOT NULL AND (details->>'tolerance')::float8 > 0
        THEN ci_low / (details->>'tolerance')::float8
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

    ``sort="drifted"`` puts the features drifting in the newest bucket first, then those drifted
    in most buckets (ties: highest mean score); ``sort="name"`` sorts alphabetically. Model
    outputs (``@prediction``...) are returned separately under ``outputs``. Columns are the
    buckets that have any result.
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
                "drifting_since": _drifting_since(zs, fs, used, grid),
            }
        )
    if sort == "drifted":  # drifting now first, then by how often and how much
        stats.sort(
            key=lambda s: (
                s["drifting_since"] is None, -s["drifted_share"], -s["mean_score"], s["name"],
            )
        )  # fmt: skip
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


def _drifting_since(
    zs: list[float | None], fs: list[bool], used: list[int], grid: list[str]
) -> str | None:
    """Start of the bucket where the column's current run of drifted buckets began, if its
    newest bucket with a result drifted (buckets without a result do not break the run)."""
    since = None
    for k in range(len(zs) - 1, -1, -1):
        if zs[k] is None:
            continue
        if not fs[k]:
            break
        since = grid[used[k]]
    return since


def _line(
    grid: list[str], idx: list[int], values: list[Any], p_values: list[Any],
    thresholds: list[Any], drifted: list[Any], ns: list[Any], lows: list[Any],
    highs: list[Any],
) -> dict[str, list[Any]]:  # fmt: skip
    keep = [k for k, i in enumerate(idx) if 0 <= i < len(grid)]
    return {
        "t": [grid[idx[k]] for k in keep],
        "value": [finite(values[k]) for k in keep],
        "p_value": [finite(p_values[k]) for k in keep],
        "threshold": [finite(thresholds[k]) for k in keep],
        "drifted": [bool(drifted[k]) for k in keep],
        "n": [None if ns[k] is None else int(ns[k]) for k in keep],
        "ci_low": [finite(lows[k]) for k in keep],
        "ci_high": [finite(highs[k]) for k in keep],
    }


_LINE_ARRAYS = """
    array_agg(i ORDER BY i), array_agg(value ORDER BY i), array_agg(p_value ORDER BY i),
    array_agg(threshold ORDER BY i), array_agg(drifted ORDER BY i), array_agg(n ORDER BY i),
    array_agg(ci_low ORDER BY i), array_agg(ci_high ORDER BY i)
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
                   coalesce(bool_or(drifted), false) AS drifted, sum(n_current) AS n,
                   avg(ci_low) AS ci_low, avg(ci_high) AS ci_high
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
               coalesce(bool_or(drifted), false) AS drifted, sum(n_current) AS n,
               avg(ci_low) AS ci_low, avg(ci_high) AS ci_high
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


def focus_window(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, column: str, segment: str = ""
) -> Any:
    """The window a feature page opens on: the newest one while the column is drifting now
    (what on-call needs first), else the one where it drifted most in range."""
    newest = conn.execute(
        sa.text(
            """
            SELECT window_start, bool_or(coalesce(drifted, false)) FROM results
            WHERE model_id = :m AND family = 'drift' AND segment = :s AND column_name = :c
              AND window_start >= :start AND window_start < :end
            GROUP BY window_start ORDER BY window_start DESC LIMIT 1
            """
        ),
        {"m": model.id, "s": segment, "c": column, "start": tr.start, "end": tr.end},
    ).first()
    if newest is not None and newest[1]:
        return newest[0]
    return most_drifted_window(conn, model, tr, column, segment)


def window_drift(
    conn: sa.Connection, model: ModelRef, column: str, window_start: Any, segment: str = ""
) -> dict[str, Any] | None:
    """The column's drift verdict in one window, with what it rests on (or None)."""
    if window_start is None:
        return None
    rows = _drift_rows(
        conn,
        "AND window_start = :w ORDER BY drifted DESC NULLS LAST, metric LIMIT 1",
        {"m": model.id, "s": segment, "c": column, "w": window_start},
    )
    return rows[0] if rows else None


def _drift_rows(conn: sa.Connection, tail: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            f"""
            SELECT window_start, metric, value, p_value, threshold, {SCORE_SQL} AS score,
                   n_reference, n_current, effect_size, ci_low, ci_high,
                   (details->>'tolerance')::float8, details->>'effect_name',
                   (details->>'p_value_adjusted')::float8, drifted, status
            FROM results
            WHERE model_id = :m AND family = 'drift' AND segment = :s AND column_name = :c
            {tail}
            """
        ),
        params,
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
            "effect_size": finite(r[8]),
            "ci_low": finite(r[9]),
            "ci_high": finite(r[10]),
            "tolerance": finite(r[11]),
            "effect_name": r[12],
            "p_value_adjusted": finite(r[13]),
            "drifted": r[14],
            "status": r[15],
        }
        for r in rows
    ]


def drift_windows(
    conn: sa.Connection,
    model: ModelRef,
    tr: TimeRange,
    column: str,
    segment: str = "",
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The column's drifted windows in range, largest change first (by the effect size's lower
    bound against its tolerance), with what each verdict rests on."""
    return _drift_rows(
        conn,
        "AND window_start >= :start AND window_start < :end AND drifted "
        "ORDER BY score DESC NULLS LAST, window_start DESC LIMIT :l",
        {"m": model.id, "s": segment, "c": column, "start": tr.start, "end": tr.end, "l": limit},
    )


_EFFECT_LINES = sa.text(
    f"""
    SELECT column_name, array_agg(i ORDER BY i), array_agg(effect_size ORDER BY i),
           array_agg(ci_low ORDER BY i), array_agg(ci_high ORDER BY i),
           array_agg(tolerance ORDER BY i), array_agg(drifted ORDER BY i),
           array_agg(p_min ORDER BY i), array_agg(threshold ORDER BY i),
           array_agg(value ORDER BY i), array_agg(n_current ORDER BY i),
           array_agg(status ORDER BY i), array_agg(metric ORDER BY i),
           array_agg(effect_name ORDER BY i), array_agg(window_start ORDER BY i)
    FROM (
        SELECT DISTINCT ON (column_name, i) column_name, i, effect_size, ci_low, ci_high,
               tolerance, threshold, value, n_current, status, metric, effect_name, window_start,
               coalesce(bool_or(drifted) OVER w, false) AS drifted, min(p_value) OVER w AS p_min
        FROM (
            SELECT column_name, {BUCKET_SQL} AS i, effect_size, ci_low, ci_high,
                   (details->>'tolerance')::float8 AS tolerance, details->>'effect_name'
                   AS effect_name, threshold, value, n_current, status, metric, drifted,
                   p_value, window_start
            FROM results
            WHERE model_id = :m AND family = 'drift' AND segment = :s
              AND column_name = ANY(CAST(:cols AS text[]))
              AND window_start >= :start AND window_start < :end
        ) r
        WINDOW w AS (PARTITION BY column_name, i)
        ORDER BY column_name, i, ci_low DESC NULLS LAST, effect_size DESC NULLS LAST,
                 window_start DESC
    ) x
    GROUP BY column_name
    """
)


def effect_lines(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, columns: list[str], segment: str = ""
) -> dict[str, dict[str, Any]]:
    """Per column, its effect size over time with the confidence interval and the tolerance it
    is judged against, the verdict, and the smallest p-value (secondary: at large n every shift
    is "significant" and p underflows to 0, so p says nothing about size).

    A bucket of several windows shows its window with the largest lower bound (and that window's
    interval), drifted if any of its windows drifted. ``window`` holds each point's own window
    start, which is what a click on the point opens.
    """
    if not columns:
        return {}
    grid = bucket_times(tr)
    out: dict[str, dict[str, Any]] = {}
    for col, idx, *arrays in conn.execute(
        _EFFECT_LINES, {**_params(model, tr, segment), "cols": list(columns)}
    ):
        eff, lo, hi, tol, drifted, p, thr, val, n, status, metric, name, ws = arrays
        keep = [k for k, i in enumerate(idx) if 0 <= i < len(grid)]
        names = [x for x in name if x]
        methods = [x for x in metric if x]
        out[col] = {
            "t": [grid[idx[k]] for k in keep],
            "window": [iso(ws[k]) for k in keep],
            "effect": [finite(eff[k]) for k in keep],
            "ci_low": [finite(lo[k]) for k in keep],
            "ci_high": [finite(hi[k]) for k in keep],
            "tolerance": [finite(tol[k]) for k in keep],
            "drifted": [bool(drifted[k]) for k in keep],
            "p_value": [finite(p[k]) for k in keep],
            "threshold": [finite(thr[k]) for k in keep],
            "value": [finite(val[k]) for k in keep],
            "n": [None if n[k] is None else int(n[k]) for k in keep],
            "status": [status[k] for k in keep],
            "effect_name": names[-1] if names else None,
            "method": methods[-1] if methods else None,
        }
    return out


_NEWEST_EFFECTS = sa.text(
    """
    SELECT DISTINCT ON (column_name) column_name, window_start, effect_size, ci_low, ci_high,
           (details->>'tolerance')::float8, details->>'effect_name', drifted, p_value, status,
           metric, value, threshold
    FROM results
    WHERE model_id = :m AND family = 'drift' AND segment = :s AND window_start = (
        SELECT max(window_start) FROM results WHERE model_id = :m AND family = 'drift'
        AND segment = :s AND window_start >= :start AND window_start < :end)
    ORDER BY column_name, drifted DESC NULLS LAST, metric
    """
)


def newest_effects(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, segment: str = ""
) -> dict[str, dict[str, Any]]:
    """Each column's verdict and effect size in the newest window of the range."""
    return {
        r[0]: {
            "window_start": iso(r[1]),
            "effect_size": finite(r[2]),
            "ci_low": finite(r[3]),
            "ci_high": finite(r[4]),
            "tolerance": finite(r[5]),
            "effect_name": r[6],
            "drifted": r[7],
            "p_value": finite(r[8]),
            "status": r[9],
            "metric": r[10],
            "value": finite(r[11]),
            "threshold": finite(r[12]),
        }
        for r in conn.execute(_NEWEST_EFFECTS, _params(model, tr, segment))
    }


EPISODE_LOOKAROUND = timedelta(days=30)
"""How far from a window an episode is traced (beyond it: "since before ...")."""

_EPISODE_WINDOWS = sa.text(
    """
    SELECT window_start, max(window_end), bool_or(coalesce(drifted, false)),
           bool_and(status = 'ok')
    FROM results
    WHERE model_id = :m AND family = 'drift' AND segment = :s AND column_name = :c
      AND window_start >= :lo AND window_start <= :hi
    GROUP BY window_start ORDER BY window_start
    """
)


def drift_episode(
    conn: sa.Connection, model: ModelRef, column: str, at: Any, segment: str = ""
) -> dict[str, Any] | None:
    """The drift episode of ``column`` at window ``at``: the run of drifted windows around it.

    Windows without a verdict (too little data, e.g. at night) neither start nor end an
    episode; a clean window with a verdict ends it. When ``at`` itself is clean, the newest
    episode that ended before it (within :data:`EPISODE_LOOKAROUND`) is returned with
    ``contains_window`` false. ``ongoing``: no clean window after it, up to the newest window.
    """
    if at is None:
        return None
    lo, hi = at - EPISODE_LOOKAROUND, at + EPISODE_LOOKAROUND
    params = {"m": model.id, "s": segment, "c": column, "lo": lo, "hi": hi}
    rows = conn.execute(_EPISODE_WINDOWS, params).all()
    pos = next((k for k, r in enumerate(rows) if r[0] == at), None)
    if pos is None:
        return None
    contains = bool(rows[pos][2])
    if not contains:  # the newest episode before the window
        pos = next((k for k in range(pos - 1, -1, -1) if rows[k][2]), None)
        if pos is None:
            return None
    first = last = pos
    k = pos - 1
    while k >= 0 and not (rows[k][3] and not rows[k][2]):  # back to the previous clean window
        if rows[k][2]:
            first = k
        k -= 1
    window = timedelta(seconds=model.window_seconds)
    since_before = k < 0 and rows[0][0] < at - EPISODE_LOOKAROUND + window
    k = pos + 1
    while k < len(rows) and not (rows[k][3] and not rows[k][2]):
        if rows[k][2]:
            last = k
        k += 1
    newest = latest_window_end(conn, model)
    ongoing = k >= len(rows) and (newest is None or rows[-1][1] >= newest)
    drifted = sum(1 for r in rows[first : last + 1] if r[2])
    return {
        "start": iso(rows[first][0]),
        "end": iso(rows[last][1]),
        "last_window": iso(rows[last][0]),
        "windows": drifted,
        "ongoing": ongoing,
        "contains_window": contains,
        "since_before": since_before,
    }
