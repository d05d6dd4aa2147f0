"""Alerts and their events, silences, deliveries and attempts, rules, channels, baselines."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError
from monitor.web.reads.common import finite, iso

ALERT_STATES = ("pending", "firing", "resolved")


def _alert(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": r.model,
        "rule": r.rule,
        "severity": r.severity,
        "state": r.state,
        "column": r.column_name,
        "segment": r.segment,
        "labels": r.labels or {},
        "annotations": r.annotations or {},
        "value": finite(r.value),
        "window_start": iso(r.window_start),
        "started_at": iso(r.started_at),
        "resolved_at": iso(r.resolved_at),
        "last_notified_at": iso(r.last_notified_at),
        "window_end": iso(r.window_end),
        "threshold": r.threshold,
        "fired_window": iso(r.fired_window),
        "cleared_window": iso(r.cleared_window),
        "resolve_reason": r.resolve_reason,
        "notified": r.notified,
    }


_ALERT_SELECT = """
    SELECT a.id, m.name AS model, ar.name AS rule, ar.severity, a.state, a.column_name,
           a.segment, a.labels, a.annotations, a.value, a.window_start, a.started_at,
           a.resolved_at, a.last_notified_at, a.window_end, a.threshold, a.fired_window,
           a.cleared_window, a.resolve_reason, a.notified
    FROM alerts a JOIN models m ON m.id = a.model_id JOIN alert_rules ar ON ar.id = a.rule_id
"""


def list_alerts(
    conn: sa.Connection,
    state: str | None,
    model: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], bool]:
    if state is not None and state not in (*ALERT_STATES, "open"):
        raise InputError(f"state must be one of {', '.join((*ALERT_STATES, 'open'))}")
    where: list[str] = []
    params: dict[str, Any] = {"l": limit + 1, "o": offset}
    if state == "open":
        where.append("a.state <> 'resolved'")
    elif state:
        where.append("a.state = :state")
        params["state"] = state
    if model:
        where.append("m.name = :model")
        params["model"] = model
    sql = _ALERT_SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY (a.state = 'resolved'), a.started_at DESC, a.id DESC LIMIT :l OFFSET :o"
    rows = [_alert(r) for r in conn.execute(sa.text(sql), params)]
    return rows[:limit], len(rows) > limit


def get_alert(conn: sa.Connection, alert_id: int) -> dict[str, Any]:
    r = conn.execute(sa.text(_ALERT_SELECT + " WHERE a.id = :i"), {"i": alert_id}).first()
    if r is None:
        raise NotFoundError(f"no alert with id {alert_id}")
    out = _alert(r)
    out["events"] = [
        {
            "at": iso(e.at),
            "from_state": e.from_state,
            "to_state": e.to_state,
            "window_start": iso(e.window_start),
            "value": finite(e.value),
            "details": e.details,
        }
        for e in conn.execute(
            sa.text(
                "SELECT at, from_state, to_state, window_start, value, details "
                "FROM alert_events WHERE alert_id = :i ORDER BY at DESC, id DESC LIMIT 200"
            ),
            {"i": alert_id},
        )
    ]
    return out


def list_silences(
    conn: sa.Connection, active_only: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    where = "WHERE ends_at > now()" if active_only else ""
    rows = conn.execute(
        sa.text(
            f"SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at, "
            f"(starts_at <= now() AND ends_at > now()) AS active FROM silences {where} "
            f"ORDER BY (ends_at > now()) DESC, ends_at DESC, id DESC LIMIT :l OFFSET :o"
        ),
        {"l": limit + 1, "o": offset},
    ).all()
    out = [
        {
            "id": r.id,
            "matchers": r.matchers,
            "starts_at": iso(r.starts_at),
            "ends_at": iso(r.ends_at),
            "created_by": r.created_by,
            "comment": r.comment,
            "created_at": iso(r.created_at),
            "active": bool(r.active),
        }
        for r in rows
    ]
    return out[:limit], len(out) > limit


def list_deliveries(
    conn: sa.Connection, limit: int, offset: int, attempts_per_delivery: int = 5
) -> tuple[list[dict[str, Any]], bool]:
    rows = conn.execute(
        sa.text(
            """
            SELECT d.id, c.name AS channel, c.kind, d.event_type, d.status, d.attempts,
                   d.last_status_code, d.last_error, d.created_at, d.delivered_at,
                   d.next_attempt_at
            FROM deliveries d JOIN channels c ON c.id = d.channel_id
            ORDER BY d.created_at DESC, d.id DESC LIMIT :l OFFSET :o
            """
        ),
        {"l": limit + 1, "o": offset},
    ).all()
    ids = [r.id for r in rows[:limit]]
    attempts: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for a in conn.execute(
            sa.text(
                """
                SELECT delivery_id, at, status_code, error, duration_ms FROM (
                  SELECT *, row_number() OVER (PARTITION BY delivery_id ORDER BY at DESC) AS k
                  FROM delivery_attempts WHERE delivery_id = ANY(:ids)) x
                WHERE k <= :k ORDER BY at DESC
                """
            ),
            {"ids": ids, "k": attempts_per_delivery},
        ):
            attempts.setdefault(a.delivery_id, []).append(
                {
                    "at": iso(a.at),
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": finite(a.duration_ms),
                }
            )
    out = [
        {
            "id": r.id,
            "channel": r.channel,
            "channel_kind": r.kind,
            "event_type": r.event_type,
            "status": r.status,
            "attempts": r.attempts,
            "last_status_code": r.last_status_code,
            "last_error": r.last_error,
            "created_at": iso(r.created_at),
            "delivered_at": iso(r.delivered_at),
            "next_attempt_at": iso(r.next_attempt_at),
            "recent_attempts": attempts.get(r.id, []),
        }
        for r in rows[:limit]
    ]
    return out, len(rows) > limit


def list_rules(
    conn: sa.Connection, model: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    where = "WHERE m.name = :model" if model else ""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT r.id, m.name AS model, r.name, r.metric, r.column_selector, r.operator,
                   r.threshold, r.for_windows, r.of_windows, r.resolve_after, r.severity,
                   r.labels, r.channels, r.enabled, r.source, r.updated_at, r.annotations,
                   r.group_wait_seconds, r.group_interval_seconds, r.repeat_interval_seconds,
                   r.error, r.error_at, r.errors_total
            FROM alert_rules r JOIN models m ON m.id = r.model_id {where}
            ORDER BY m.name, r.name LIMIT :l OFFSET :o
            """
        ),
        {"model": model, "l": limit + 1, "o": offset},
    ).all()
    out = [
        {
            "id": r.id,
            "model": r.model,
            "name": r.name,
            "metric": r.metric,
            "column_selector": r.column_selector,
            "operator": r.operator,
            "threshold": finite(r.threshold),
            "condition": r.operator
            if r.operator == "drifted" or r.threshold is None
            else f"{r.operator} {r.threshold:g}",
            "for_windows": r.for_windows,
            "of_windows": r.of_windows,
            "resolve_after": r.resolve_after,
            "severity": r.severity,
            "labels": r.labels or {},
            "channels": list(r.channels or []),
            "enabled": r.enabled,
            "source": r.source,
            "updated_at": iso(r.updated_at),
            "annotations": r.annotations or {},
            "group_wait_seconds": r.group_wait_seconds,
            "group_interval_seconds": r.group_interval_seconds,
            "repeat_interval_seconds": r.repeat_interval_seconds,
            "error": r.error,
            "error_at": iso(r.error_at),
            "errors_total": r.errors_total,
        }
        for r in rows
    ]
    return out[:limit], len(out) > limit


def rule_errors(conn: sa.Connection, model: str | None = None) -> list[dict[str, Any]]:
    """Rules whose last evaluation failed: they are silent until fixed, so the page says so."""
    where = "AND m.name = :model" if model else ""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT r.id, m.name AS model, r.name, r.error, r.error_at, r.errors_total
            FROM alert_rules r JOIN models m ON m.id = r.model_id
            WHERE r.error IS NOT NULL {where}
            ORDER BY r.error_at DESC, r.id LIMIT 200
            """
        ),
        {"model": model},
    ).all()
    return [
        {
            "id": r.id,
            "model": r.model,
            "rule": r.name,
            "error": r.error,
            "error_at": iso(r.error_at),
            "errors_total": r.errors_total,
        }
        for r in rows
    ]


def list_channels(conn: sa.Connection) -> list[dict[str, Any]]:
    """Channels without their secrets: only the stored display form of the target."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "target": r.target_display,
            "enabled": r.enabled,
            "disabled_reason": r.disabled_reason,
            "created_at": iso(r.created_at),
        }
        for r in conn.execute(
            sa.text(
                "SELECT id, name, kind, target_display, enabled, disabled_reason, created_at "
                "FROM channels ORDER BY name LIMIT 500"
            )
        )
    ]


def list_baselines(
    conn: sa.Connection, model: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    where = "WHERE m.name = :model" if model else ""
    rows = conn.execute(
        sa.text(
            f"""
            SELECT b.id, m.name AS model, mv.version, b.n_rows, b.columns, b.prediction_column,
                   b.target_column, b.task, b.performance, b.source, b.created_at,
                   extract(epoch FROM now() - b.created_at) / 86400 AS age_days
            FROM baselines b JOIN models m ON m.id = b.model_id
            JOIN model_versions mv ON mv.id = b.version_id {where}
            ORDER BY m.name, b.created_at DESC LIMIT :l OFFSET :o
            """
        ),
        {"model": model, "l": limit + 1, "o": offset},
    ).all()
    out = [
        {
            "id": r.id,
            "model": r.model,
            "version": r.version,
            "rows": r.n_rows,
            "columns": len(r.columns or []),
            "prediction_column": r.prediction_column,
            "target_column": r.target_column,
            "task": r.task,
            "performance": r.performance,
            "source": r.source,
            "created_at": iso(r.created_at),
            "age_days": round(float(r.age_days), 1),
        }
        for r in rows
    ]
    return out[:limit], len(out) > limit


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return finite(float(value)) if ok else None


def baseline_summary(performance: dict[str, Any] | None) -> dict[str, Any]:
    """A baseline's stored ``performance`` for people: the metrics on the training data, and
    the label-free estimator in a few words (its method, threshold, calibration and how well
    it reproduced the training data's own metrics) instead of a nested dict."""
    perf = dict(performance or {})
    est = perf.pop("estimator", None)
    metrics = sorted(
        (k, finite(v))
        for k, v in perf.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    )
    out: dict[str, Any] = {"metrics": metrics, "estimator": None}
    if isinstance(est, dict):
        cal, check = _dict(est.get("calibrator")), _dict(est.get("calibration_check"))
        real, guess = _dict(est.get("reference_realised")), _dict(est.get("reference_estimated"))
        out["estimator"] = {
            "method": est.get("method"),
            "threshold": _number(est.get("threshold")),
            "calibrator": cal.get("kind"),
            "n_reference": est.get("n_reference"),
            "brier": sorted(
                (str(k).removeprefix("brier_"), _number(v))
                for k, v in check.items()
                if _number(v) is not None
            ),
            "self_check": [
                (k, _number(real[k]), _number(guess[k]))
                for k in sorted(set(real) & set(guess))
                if _number(real[k]) is not None and _number(guess[k]) is not None
            ],
        }
    return out


_BASELINE_COLUMNS = sa.text(
    """
    SELECT bp.baseline_id, bp.column_name, bp.role, bp.kind,
           (bp.profile->>'count')::bigint, (bp.profile->>'nulls')::bigint,
           (bp.profile->>'invalid')::bigint, (bp.profile->>'mean')::float8,
           (bp.profile->>'m2')::float8, (bp.profile->>'min')::float8,
           (bp.profile->>'max')::float8,
           CASE WHEN jsonb_typeof(bp.profile->'counts') = 'object' THEN
             (SELECT count(*) FROM jsonb_object_keys(bp.profile->'counts')) END,
           CASE WHEN jsonb_typeof(bp.profile->'counts') = 'object' THEN
             (SELECT array_agg(k ORDER BY n DESC, k) FROM (
                SELECT key AS k, (value #>> '{}')::bigint AS n
                FROM jsonb_each(bp.profile->'counts') ORDER BY 2 DESC, 1 LIMIT 3) top) END
    FROM baseline_profiles bp
    WHERE bp.baseline_id = ANY(:ids) AND bp.role <> 'rows'
    ORDER BY bp.baseline_id, (bp.role <> 'feature'), bp.kind, bp.column_name
    """
)


def baseline_columns(
    conn: sa.Connection, baseline_ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    """Per baseline, what each column looked like in training (summary keys of its profile)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not baseline_ids:
        return out
    for r in conn.execute(_BASELINE_COLUMNS, {"ids": baseline_ids}):
        bid, name, role, kind, count, nulls, invalid, mean, m2, lo, hi, levels, top = r
        count = int(count or 0)
        bad = int(nulls or 0) + int(invalid or 0)
        sd = (max(m2, 0.0) / count) ** 0.5 if m2 is not None and count > 1 else None
        out.setdefault(bid, []).append(
            {
                "name": name,
                "role": role,
                "kind": kind,
                "count": count,
                "missing": bad / (count + bad) if count + bad else None,
                "mean": finite(mean),
                "sd": finite(sd),
                "min": finite(lo),
                "max": finite(hi),
                "levels": levels,
                "top": list(top or []),
            }
        )
    return out


def delivery_problems(conn: sa.Connection, days: int = 7) -> dict[str, Any]:
    """Deliveries of the last ``days`` that failed or are still being retried, and the newest
    failure's error: a receiver that stopped answering must show where people look."""
    row = conn.execute(
        sa.text(
            """
            SELECT count(*) FILTER (WHERE d.status = 'failed'),
                   count(*) FILTER (WHERE d.status = 'pending' AND d.attempts > 0),
                   count(*),
                   (SELECT c.name || ': ' || coalesce(x.last_error, 'HTTP ' || x.last_status_code)
                    FROM deliveries x JOIN channels c ON c.id = x.channel_id
                    WHERE x.status = 'failed' OR (x.status = 'pending' AND x.attempts > 0)
                    ORDER BY x.created_at DESC LIMIT 1)
            FROM deliveries d WHERE d.created_at >= now() - make_interval(days => :d)
            """
        ),
        {"d": days},
    ).one()
    return {
        "days": days, "failed": int(row[0]), "retrying": int(row[1]), "total": int(row[2]),
        "latest_error": row[3],
    }  # fmt: skip
