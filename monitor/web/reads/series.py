"""Time series of stored results: the drift heatmap and per-family lines, bucketed when long.

A drift *score* puts every method on one scale for the heatmap: distance / threshold for
distances, ``ln(p) / ln(alpha)`` for tests (both reach 1 exactly where the method flags drift),
so a Wasserstein distance and a chi-squared p-value can share a colour bar.
"""

from __future__ import annotations

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

_HEATMAP = sa.text(
    f"""
    SELECT column_name, date_bin(make_interval(secs => :b), window_start, :o) AS t,
           max({SCORE_SQL}) AS score, bool_or(drifted) AS drifted
    FROM results
    WHERE model_id = :m AND family = 'drift' AND segment = :s
      AND window_start >= :start AND window_start < :end
    GROUP BY 1, 2
    """
)


def heatmap(
    conn: sa.Connection, model: ModelRef, tr: TimeRange, segment: str = "", sort: str = "drifted"
) -> dict[str, Any]:
    """Drift score per feature (rows) and window bucket (columns), features sorted.

    ``sort="drifted"`` puts the features drifted in most buckets first (ties: highest mean
    score); ``sort="name"`` sorts alphabetically. Model outputs (``@prediction``...) are
    returned separately under ``outputs``.
    """
    if sort not in ("drifted", "name"):
        raise InputError("sort must be 'drifted' or 'name'")
    rows = conn.execute(
        _HEATMAP,
        {
            "m": model.id,
            "s": segment,
            "b": tr.bucket_seconds,
            "o": tr.start,
            "start": tr.start,
            "end": tr.end,
        },
    ).all()
    times = sorted({r[1] for r in rows})
    index = {t: i for i, t in enumerate(times)}
    cells: dict[str, list[float | None]] = {}
    flags: dict[str, list[bool]] = {}
    for col, t, score, drifted in rows:
        if col not in cells:
            cells[col] = [None] * len(times)
            flags[col] = [False] * len(times)
        cells[col][index[t]] = None if score is None else round(float(score), 4)
        flags[col][index[t]] = bool(drifted)
    stats: list[dict[str, Any]] = []
    for col, zs in cells.items():
        present = [z for z in zs if z is not None]
        n_drift = sum(flags[col])
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
        "times": [iso(t) for t in times],
        "features": features,
        "outputs": outputs,
        "z": [cells[s["name"]] for s in features],
        "drifted": [flags[s["name"]] for s in features],
        "outputs_z": [cells[s["name"]] for s in outputs],
    }


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
    fn = AGGREGATES[agg]
    sql = sa.text(
        f"""
        SELECT date_bin(make_interval(secs => :b), window_start, :o) AS t, metric,
               {fn}(value) AS value, min(p_value) AS p_value, max(threshold) AS threshold,
               bool_or(drifted) AS drifted, sum(n_current) AS n_current
        FROM results
        WHERE model_id = :m AND family = :f AND segment = :s
          AND window_start >= :start AND window_start < :end {where_col}
        GROUP BY 1, 2 ORDER BY 2, 1
        """
    )
    params: dict[str, Any] = {
        "m": model.id,
        "f": family,
        "s": segment,
        "b": tr.bucket_seconds,
        "o": tr.start,
        "start": tr.start,
        "end": tr.end,
    }
    if column is not None:
        params["c"] = column
    lines: dict[str, dict[str, list[Any]]] = {}
    for t, metric, value, p_value, threshold, drifted, n_current in conn.execute(sql, params):
        line = lines.setdefault(
            metric,
            {"t": [], "value": [], "p_value": [], "threshold": [], "drifted": [], "n": []},
        )
        line["t"].append(iso(t))
        line["value"].append(finite(value))
        line["p_value"].append(finite(p_value))
        line["threshold"].append(finite(threshold))
        line["drifted"].append(bool(drifted))
        line["n"].append(int(n_current) if n_current is not None else None)
    return {"family": family, "column": column, "segment": segment, "metrics": lines}


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
    limit: int = 50,
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
