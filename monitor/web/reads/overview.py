"""Health of each model at a glance: the newest result of every family, alerts, baseline age.

Each family's newest window is found with an index-backed ``ORDER BY window_start DESC LIMIT 1``
(``ix_results_model_id_family_window_start``), so the cost does not grow with history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from monitor.storage import vocabulary as v
from monitor.web.cache import ViewCache, cached_view, results_version
from monitor.web.reads.common import (
    MODEL_SELECT,
    ModelRef,
    finite,
    get_model,
    iso,
    model_ref,
    reread_model,
)

PERFORMANCE_PREFERENCE = (
    "roc_auc", "accuracy", "f1", "precision", "recall", "r2", "rmse", "mae", "mape",
)  # fmt: skip

_LATEST = sa.text(
    """
    SELECT f.family, lw.window_start, lw.window_end
    FROM unnest(CAST(:families AS text[])) AS f(family)
    CROSS JOIN LATERAL (
        SELECT window_start, window_end FROM results r
        WHERE r.model_id = :m AND r.family = f.family AND r.segment = ''
        ORDER BY r.window_start DESC LIMIT 1
    ) lw
    """
)

_ROWS = sa.text(
    """
    SELECT family, column_name, metric, value, p_value, threshold, drifted, status
    FROM results
    WHERE model_id = :m AND segment = '' AND family = :f AND window_start = :w
    """
)


def _pick_metric(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The metric to show for a window: the one that fell furthest below its baseline among
    those the job flagged as worse (does it hurt the model?), else the customary one."""
    by_metric = {r["metric"]: r for r in rows if r["column_name"] == ""}
    worse = [
        r
        for r in by_metric.values()
        if r["drifted"] and finite(r["value"]) is not None and finite(r["threshold"])
    ]
    if worse:
        return max(worse, key=lambda r: abs(r["value"] - r["threshold"]) / abs(r["threshold"]))
    for name in PERFORMANCE_PREFERENCE:
        if name in by_metric:
            return by_metric[name]
    return next(iter(by_metric.values()), None)


_UNREAD: Any = object()


def model_health(
    conn: sa.Connection, model: ModelRef, cache: ViewCache | None = None, version: Any = _UNREAD
) -> dict[str, Any]:
    """Everything the models page shows for one model.

    The part read from results and the newest baseline are cached per results version
    (``version``: already read by the caller, else read here; a new baseline changes it too);
    alerts are read every time (they change without a job writing results).
    """
    if version is _UNREAD:
        version = results_version(conn, model) if cache is not None else None

    def compute(c: sa.Connection) -> tuple[Any, Any]:
        m = reread_model(c, model)  # version first, see monitor.web.cache
        ver = results_version(c, m)
        return ver, (_from_results(c, m), _baseline(c, m))

    _, (results_part, baseline) = cached_view(cache, ("health", model.id), version, conn, compute)
    alerts: dict[str, int] = dict(
        conn.execute(
            sa.text(
                "SELECT state, count(*) FROM alerts WHERE model_id = :m AND state <> 'resolved' "
                "GROUP BY state"
            ),
            {"m": model.id},
        ).all()
    )
    now = datetime.now(UTC)
    drift = results_part["drift"]
    return {
        **results_part,
        "alerts": {
            "firing": int(alerts.get("firing", 0)),
            "pending": int(alerts.get("pending", 0)),
        },
        "baseline": {
            "version": baseline[1],
            "rows": baseline[2],
            "created_at": iso(baseline[0]),
            "age_days": round((now - baseline[0]).total_seconds() / 86400, 1),
        }
        if baseline
        else None,
        "status": _status(drift["drifted"], drift["features"], int(alerts.get("firing", 0))),
    }


def _baseline(conn: sa.Connection, model: ModelRef) -> Any:
    """The newest baseline: (created_at, version, rows), or None."""
    return conn.execute(
        sa.text(
            "SELECT b.created_at, mv.version, b.n_rows FROM baselines b "
            "JOIN model_versions mv ON mv.id = b.version_id WHERE b.model_id = :m "
            "ORDER BY b.created_at DESC LIMIT 1"
        ),
        {"m": model.id},
    ).first()


def _from_results(conn: sa.Connection, model: ModelRef) -> dict[str, Any]:
    latest = {
        fam: (ws, we)
        for fam, ws, we in conn.execute(_LATEST, {"m": model.id, "families": list(v.FAMILIES)})
    }
    rows: dict[str, list[dict[str, Any]]] = {}
    for fam, (ws, _) in latest.items():
        rows[fam] = [
            dict(r._mapping) for r in conn.execute(_ROWS, {"m": model.id, "f": fam, "w": ws})
        ]

    drift_rows = [r for r in rows.get(v.DRIFT, []) if not r["column_name"].startswith("@")]
    drifted_features = sorted({r["column_name"] for r in drift_rows if r["drifted"]})
    features = sorted({r["column_name"] for r in drift_rows})
    output_rows = [r for r in rows.get(v.DRIFT, []) if r["column_name"].startswith("@")]
    dataset = {r["metric"]: finite(r["value"]) for r in rows.get(v.DATASET_DRIFT, [])}

    quality: dict[str, Any] = {}
    for r in rows.get(v.QUALITY, []):
        val = finite(r["value"])
        if val is None:
            continue
        quality[r["metric"]] = max(quality.get(r["metric"], val), val)
    quality_flags = sum(1 for r in rows.get(v.QUALITY, []) if r["drifted"])

    operational = {r["metric"]: finite(r["value"]) for r in rows.get(v.OPERATIONAL, [])}
    perf = _pick_metric(rows.get(v.PERFORMANCE, []))
    est = _pick_metric(rows.get(v.ESTIMATED_PERFORMANCE, []))

    last_run = conn.execute(
        sa.text("SELECT max(finished_at) FROM runs WHERE model_id = :m AND status = 'succeeded'"),
        {"m": model.id},
    ).scalar()
    drift_window = latest.get(v.DRIFT)
    recent: list[list[Any]] = []
    if drift_window:
        recent = [
            [r[0], int(r[1])]
            for r in conn.execute(
                sa.text(
                    "SELECT column_name, count(*) FROM results WHERE model_id = :m "
                    "AND family = 'drift' AND segment = '' AND drifted "
                    "AND window_start > :w - interval '7 days' AND window_start <= :w "
                    "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 50"
                ),
                {"m": model.id, "w": drift_window[0]},
            )
        ]
    return {
        "name": model.name,
        "task": model.task,
        "description": model.description,
        "window_seconds": model.window_seconds,
        "last_window_start": iso(drift_window[0]) if drift_window else None,
        "last_window_end": iso(drift_window[1]) if drift_window else None,
        "last_run_finished_at": iso(last_run),
        "drift": {
            "features": len(features),
            "drifted": len(drifted_features),
            "drifted_features": drifted_features[:20],
            "share_drifted": dataset.get("share_drifted"),
            "prediction_drifted": any(bool(r["drifted"]) for r in output_rows),
            "recent": recent,  # [column, windows drifted] over the 7 days to the newest window
        },
        "quality": {"max": quality, "flagged": quality_flags},
        "performance": _perf(perf, latest.get(v.PERFORMANCE)),
        "estimated_performance": _perf(est, latest.get(v.ESTIMATED_PERFORMANCE)),
        "volume": operational.get(v.VOLUME),
        "latency_p95": operational.get(v.LATENCY_P95),
        "label_coverage": operational.get(v.LABEL_COVERAGE),
    }


def _perf(row: dict[str, Any] | None, window: tuple[datetime, datetime] | None) -> Any:
    if row is None or window is None:
        return None
    return {
        "metric": row["metric"],
        "value": finite(row["value"]),
        "baseline": finite(row["threshold"]),
        "window_start": iso(window[0]),
        "drifted": row["drifted"],
    }


def _status(drifted: int, features: int, firing: int) -> str:
    """One word for the row's colour: alert if anything fires, drift if features drift."""
    if firing:
        return "alert"
    if features and drifted:
        return "drift"
    if not features:
        return "no-data"
    return "ok"


STATUS_ORDER = {"alert": 0, "drift": 1, "no-data": 2, "ok": 3}
"""Models needing attention first (the overview's order within a page)."""


def list_models(
    conn: sa.Connection, limit: int, offset: int, cache: ViewCache | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """One page of models with their health; the flag says whether more follow."""
    refs = [
        model_ref(r)
        for r in conn.execute(
            sa.text(MODEL_SELECT + "ORDER BY m.name LIMIT :l OFFSET :o"),
            {"l": limit + 1, "o": offset},
        )
    ]
    return [model_health(conn, m, cache) for m in refs[:limit]], len(refs) > limit


def model_detail(
    conn: sa.Connection,
    name: str,
    cache: ViewCache | None = None,
    model: ModelRef | None = None,
    version: Any = _UNREAD,
) -> dict[str, Any]:
    """A model's health plus its versions, features and segments.

    ``model`` and ``version`` spare the lookups when the caller has them already.
    """
    model = model or get_model(conn, name)
    if version is _UNREAD:
        version = results_version(conn, model) if cache is not None else None
    out = model_health(conn, model, cache, version)
    # versions, features and segments change only with the results version (triggers on
    # model_versions, features and results bump it)

    def compute(c: sa.Connection) -> tuple[Any, dict[str, Any]]:
        m = reread_model(c, model)  # version first, see monitor.web.cache
        ver = results_version(c, m)
        return ver, _lists(c, m)

    out.update(cached_view(cache, ("detail", model.id), version, conn, compute)[1])
    return out


def _lists(conn: sa.Connection, model: ModelRef) -> dict[str, Any]:
    return {
        "versions": [
            {"version": r[0], "created_at": iso(r[1])}
            for r in conn.execute(
                sa.text(
                    "SELECT version, created_at FROM model_versions WHERE model_id = :m "
                    "ORDER BY created_at"
                ),
                {"m": model.id},
            )
        ],
        "features": [
            {"name": r[0], "kind": r[1]}
            for r in conn.execute(
                sa.text(
                    "SELECT name, kind FROM features WHERE model_id = :m ORDER BY kind, position"
                ),
                {"m": model.id},
            )
        ],
        "segments": segments(conn, model),
    }


def segments(conn: sa.Connection, model: ModelRef) -> list[str]:
    """Segments with drift results in the model's newest day (a bounded scan)."""
    last = conn.execute(
        sa.text(
            "SELECT window_start FROM results WHERE model_id = :m AND family = 'drift' "
            "ORDER BY window_start DESC LIMIT 1"
        ),
        {"m": model.id},
    ).scalar()
    if last is None:
        return []
    return [
        r[0]
        for r in conn.execute(
            sa.text(
                "SELECT DISTINCT segment FROM results WHERE model_id = :m AND family = 'drift' "
                "AND window_start >= :w - interval '1 day' AND segment <> '' ORDER BY 1 LIMIT 200"
            ),
            {"m": model.id, "w": last},
        )
    ]
