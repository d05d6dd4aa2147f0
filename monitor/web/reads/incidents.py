"""Incidents: a model's alerts grouped by overlapping time and shared cause, with what moved and
what it did to the model.

A five-feature drift fires a dozen alerts (one per feature, the outputs, data quality, the
performance estimate): one incident for the person on call. Alerts of one model whose active
periods overlap (or follow within :data:`GRACE_WINDOWS` windows) and share a cause join one
incident. Causes: the *data* (drift, data quality, realised and estimated performance: a shift
in the inputs shows in all of them) and *operations* (volume, latency, errors), which have
causes of their own.

The alerts table is the stored truth; an incident is derived from it on read (no second state
to keep in step with alert transitions). Its period is in data time: from the window where each
alert's episode fired (``fired_window``) to the window where its data cleared
(``cleared_window``), not when the evaluator happened to raise or resolve it (a catch-up raises
a week of alerts in one tick). Its numbers come from stored results: each feature's
largest effect size in the period, and performance over the period against the baseline
(realised where labels exist, estimated otherwise). Reads are bounded: alerts that started in
the last ``days`` or are still open, and per incident two index-backed result queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from monitor.web.cache import ViewCache, cached_view, results_version
from monitor.web.reads.common import ModelRef, finite, iso, reread_model

GRACE_WINDOWS = 2
"""Alerts starting within this many windows of an incident's end still belong to it."""
MAX_ALERTS = 5000
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
OPERATIONS = ("operational",)


def cause_of(metric: str) -> str:
    """The cause family of a rule's metric (``drift.*``, ``operational.latency_p95``...)."""
    family = metric.split(".", 1)[0]
    aliases = {"volume": "operational", "latency_p95": "operational"}
    family = aliases.get(family, family)
    return "operations" if family in OPERATIONS else "data"


@dataclass
class _Incident:
    model: str
    model_id: int
    window_seconds: int
    cause: str
    start: datetime
    end: datetime | None  # None while any member is open
    last: datetime
    version: int | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)


_ALERTS = sa.text(
    """
    SELECT a.id, m.name AS model, m.id AS model_id, m.window_seconds, ar.name AS rule,
           ar.metric, ar.operator, ar.threshold, ar.for_windows, ar.of_windows, ar.severity,
           a.state, a.column_name, a.segment, a.value, a.window_start,
           COALESCE(a.fired_window, a.started_at) AS started_at,
           CASE WHEN a.state = 'resolved' THEN COALESCE(a.cleared_window, a.resolved_at)
           END AS resolved_at,
           rv.version AS results_version
    FROM alerts a JOIN models m ON m.id = a.model_id JOIN alert_rules ar ON ar.id = a.rule_id
    LEFT JOIN results_versions rv ON rv.model_id = m.id
    WHERE (a.state <> 'resolved' OR COALESCE(a.fired_window, a.started_at) >= :since)
      AND (CAST(:model AS text) IS NULL OR m.name = :model)
    ORDER BY m.name, COALESCE(a.fired_window, a.started_at), a.id
    LIMIT :cap
    """
)


def _group(rows: Sequence[Any], now: datetime) -> list[_Incident]:
    out: list[_Incident] = []
    current: dict[tuple[str, str], _Incident] = {}
    for r in rows:
        cause = cause_of(r.metric)
        key = (r.model, cause)
        end = r.resolved_at if r.state == "resolved" else None
        grace = timedelta(seconds=GRACE_WINDOWS * max(int(r.window_seconds), 1))
        inc = current.get(key)
        if inc is None or (inc.end is not None and r.started_at > inc.end + grace):
            inc = _Incident(
                r.model, r.model_id, int(r.window_seconds), cause, r.started_at, end,
                end or now, getattr(r, "results_version", None),
            )  # fmt: skip
            current[key] = inc
            out.append(inc)
        elif inc.end is not None:
            inc.end = None if end is None else max(inc.end, end)
        inc.last = max(inc.last, end or now)
        inc.alerts.append(
            {
                "id": r.id,
                "rule": r.rule,
                "metric": r.metric,
                "operator": r.operator,
                "threshold": finite(r.threshold),
                "for_windows": r.for_windows,
                "of_windows": r.of_windows,
                "severity": r.severity,
                "state": r.state,
                "column": r.column_name,
                "segment": r.segment,
                "value": finite(r.value),
                "window_start": iso(r.window_start),
                "started_at": iso(r.started_at),
                "resolved_at": iso(r.resolved_at),
            }
        )
    return out


_EFFECTS = sa.text(
    """
    SELECT c.column_name, top.window_start, top.metric, top.effect_size, top.ci_low,
           top.ci_high, (top.details->>'tolerance')::float8, top.details->>'effect_name',
           top.threshold, top.p_value, top.value, n.drifted_windows
    FROM unnest(CAST(:cols AS text[])) AS c(column_name)
    CROSS JOIN LATERAL (
        SELECT window_start, metric, effect_size, ci_low, ci_high, details, threshold,
               p_value, value
        FROM results
        WHERE model_id = :m AND family = 'drift' AND segment = ''
          AND column_name = c.column_name AND window_start >= :start AND window_start < :end
        ORDER BY ci_low DESC NULLS LAST, effect_size DESC NULLS LAST, window_start
        LIMIT 1
    ) top
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE drifted) AS drifted_windows
        FROM results
        WHERE model_id = :m AND family = 'drift' AND segment = ''
          AND column_name = c.column_name AND window_start >= :start AND window_start < :end
    ) n
    """
)

_PERFORMANCE = sa.text(
    """
    SELECT family, metric, avg(value), avg(threshold), count(value),
           bool_or(coalesce(drifted, false))
    FROM results
    WHERE model_id = :m AND segment = '' AND column_name = ''
      AND family IN ('performance', 'estimated_performance') AND status = 'ok'
      AND window_start >= :start AND window_start < :end
    GROUP BY family, metric
    """
)

LOWER_IS_BETTER = {"log_loss", "calibration_error", "mae", "rmse", "mape"}


def _effects(conn: sa.Connection, inc: _Incident, columns: list[str]) -> list[dict[str, Any]]:
    if not columns:
        return []
    rows = conn.execute(
        _EFFECTS,
        {"m": inc.model_id, "cols": columns, "start": inc.start - _window(inc), "end": _until(inc)},
    )
    out = [
        {
            "column": r[0],
            "window_start": iso(r[1]),
            "method": r[2],
            "effect_size": finite(r[3]),
            "ci_low": finite(r[4]),
            "ci_high": finite(r[5]),
            "tolerance": finite(r[6]),
            "effect_name": r[7],
            "alpha": finite(r[8]),
            "p_value": finite(r[9]),
            "statistic": finite(r[10]),
            "drifted_windows": int(r[11]),
        }
        for r in rows
    ]
    out.sort(key=lambda e: -((e["ci_low"] or 0.0) / (e["tolerance"] or 1.0)))
    return out


def _window(inc: _Incident) -> timedelta:
    return timedelta(seconds=inc.window_seconds)


def _until(inc: _Incident) -> datetime:
    """End of the results an incident reads: its end, or every window so far while open (a
    bound that does not move with the clock, so its numbers cache per results version)."""
    return inc.end or datetime.max.replace(tzinfo=UTC)


def _numbers(
    conn: sa.Connection, inc: _Incident, columns: list[str], cache: ViewCache | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Effect sizes and performance impact of an incident, cached per results version like the
    other views (answered stale for a bounded time while a write is recomputed): over a long
    incident they read every window of its columns."""

    def compute(c: sa.Connection) -> tuple[Any, Any]:
        ref = ModelRef(inc.model_id, inc.model, None, None, inc.window_seconds, None)
        ver = results_version(c, reread_model(c, ref))  # first, see monitor.web.cache
        impact = _impact(c, inc) if inc.cause == "data" else None
        return ver, (_effects(c, inc, columns), impact)

    family = ("incident", inc.model_id, inc.cause, inc.start, inc.end, tuple(columns))
    return cached_view(cache, family, inc.version, conn, compute)[1]


def _impact(conn: sa.Connection, inc: _Incident) -> dict[str, Any] | None:
    """Performance over the incident against the baseline: the metric that fell furthest,
    realised where labels exist, estimated otherwise (and both when both exist)."""
    rows = conn.execute(
        _PERFORMANCE, {"m": inc.model_id, "start": inc.start - _window(inc), "end": _until(inc)}
    ).all()
    by: dict[str, dict[str, Any]] = defaultdict(dict)
    for family, metric, value, base, n, worse in rows:
        by[metric][family] = (finite(value), finite(base), int(n), bool(worse))
    best: dict[str, Any] | None = None
    for metric, fams in by.items():
        real, est = fams.get("performance"), fams.get("estimated_performance")
        pick = real if real and real[0] is not None else est
        if pick is None or pick[0] is None or pick[1] is None or pick[1] == 0:
            continue
        sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
        change = sign * (pick[0] - pick[1]) / abs(pick[1])  # negative: worse
        entry = {
            "metric": metric,
            "source": "realised" if pick is real else "estimated",
            "value": pick[0],
            "baseline": pick[1],
            "change": pick[0] - pick[1],
            "relative": change,
            "realised": real[0] if real else None,
            "realised_windows": real[2] if real else 0,
            "estimated": est[0] if est else None,
            "worse": pick[3],
        }
        if best is None or entry["relative"] < best["relative"]:
            best = entry
    return best


def list_incidents(
    conn: sa.Connection,
    model: str | None = None,
    days: int = 30,
    limit: int = 20,
    now: datetime | None = None,
    cache: ViewCache | None = None,
) -> list[dict[str, Any]]:
    """Incidents newest first (open ones first): alerts grouped, with effects and impact."""
    now = now or datetime.now(UTC)
    rows = conn.execute(
        _ALERTS, {"since": now - timedelta(days=days), "model": model, "cap": MAX_ALERTS}
    ).all()
    groups = _group(rows, now)
    groups.sort(key=lambda i: (i.end is not None, -i.start.timestamp()))
    out = []
    for inc in groups[:limit]:
        columns = sorted({a["column"] for a in inc.alerts if a["column"]})
        features = [c for c in columns if not c.startswith("@")]
        outputs = [c for c in columns if c.startswith("@")]
        rules: dict[str, dict[str, Any]] = {}
        for a in inc.alerts:
            rules.setdefault(
                a["rule"],
                {"rule": a["rule"], "metric": a["metric"], "operator": a["operator"],
                 "threshold": a["threshold"], "for_windows": a["for_windows"],
                 "of_windows": a["of_windows"], "severity": a["severity"]},
            )  # fmt: skip
        effects, impact = _numbers(conn, inc, columns, cache)
        severity = min((a["severity"] for a in inc.alerts), key=lambda s: SEVERITY_RANK.get(s, 9))
        end = inc.end
        out.append(
            {
                "model": inc.model,
                "cause": inc.cause,
                "state": "open" if end is None else "resolved",
                "severity": severity,
                "start": iso(inc.start),
                "end": iso(end),
                "duration_seconds": ((end or now) - inc.start).total_seconds(),
                "alerts": len(inc.alerts),
                "open_alerts": sum(1 for a in inc.alerts if a["state"] != "resolved"),
                "features": features,
                "outputs": outputs,
                "segments": sorted({a["segment"] for a in inc.alerts if a["segment"]}),
                "rules": list(rules.values()),
                "effects": effects,
                "impact": impact,
                "range_start": iso(inc.start - timedelta(days=1)),
                "range_end": iso(min((end or now) + timedelta(days=1), now)),
                "members": inc.alerts,
            }
        )
    return out
