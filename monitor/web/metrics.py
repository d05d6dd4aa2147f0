"""``/metrics`` in Prometheus text format, read from the database at scrape time.

A custom collector (the pattern client_python recommends for "proxy" exporters) turns the newest
stored results into metric families on each scrape, so any number of stateless web replicas
expose the same numbers and nothing keeps global mutable gauges. Every query is bounded: the
newest window per model via the results index, and a row limit.

Most of a scrape's text is the newest window's drift and operational numbers, which only change
when a job writes results: that part's text is cached per web process, keyed by every model's
results version (``monitor.web.cache``), so it is never stale. Alerts, SDK counters, dead
letters and job-run gauges are read on every scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.storage import run_stats
from monitor.web.auth import require_scope
from monitor.web.cache import view_cache
from monitor.web.deps import read_conn

log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"])
MAX_ROWS = 20_000

_LATEST_DRIFT = sa.text(
    """
    SELECT m.name, r.column_name, r.metric, r.value, r.p_value, r.drifted, r.window_start
    FROM models m
    CROSS JOIN LATERAL (
        SELECT window_start FROM results
        WHERE model_id = m.id AND family = 'drift' AND segment = ''
        ORDER BY window_start DESC LIMIT 1
    ) lw
    JOIN results r ON r.model_id = m.id AND r.family = 'drift' AND r.segment = ''
                  AND r.window_start = lw.window_start
    ORDER BY m.name, r.column_name, r.metric
    LIMIT :limit
    """
)

_LATEST_OPERATIONAL = sa.text(
    """
    SELECT m.name, r.metric, r.value
    FROM models m
    CROSS JOIN LATERAL (
        SELECT window_start FROM results
        WHERE model_id = m.id AND family = 'operational' AND segment = ''
        ORDER BY window_start DESC LIMIT 1
    ) lw
    JOIN results r ON r.model_id = m.id AND r.family = 'operational' AND r.segment = ''
                  AND r.window_start = lw.window_start AND r.column_name = ''
    LIMIT :limit
    """
)


class DatabaseCollector(Collector):
    """The newest results, alerts, SDK reports and run state, read on one connection.

    ``results()`` and ``live()`` are the two halves of a scrape: the first only changes when
    a job writes results (the route caches its text per results version), the second is read
    on every scrape.
    """

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def describe(self) -> list[Metric]:
        return []  # no query at registration time

    def collect(self) -> Iterator[Metric]:
        yield from self.results()
        yield from self.live()

    def results(self) -> Iterator[Metric]:
        yield from self._drift(self.conn)
        yield from self._operational(self.conn)

    def live(self) -> Iterator[Metric]:
        yield from self._alerts(self.conn)
        yield from self._sdk(self.conn)
        yield from self._jobs(self.conn)

    def _drift(self, conn: sa.Connection) -> Iterator[Metric]:
        value = GaugeMetricFamily(
            "monitor_drift_value",
            "Drift statistic of the newest window (segment: all traffic).",
            labels=["model", "feature", "method"],
        )
        p_value = GaugeMetricFamily(
            "monitor_drift_p_value",
            "p-value of the newest window's drift test, for test methods.",
            labels=["model", "feature", "method"],
        )
        flag = GaugeMetricFamily(
            "monitor_drift_detected",
            "1 if the feature drifted in the newest window, else 0.",
            labels=["model", "feature"],
        )
        window = GaugeMetricFamily(
            "monitor_drift_window_start_timestamp_seconds",
            "Start of the newest window with drift results.",
            labels=["model"],
        )
        flags: dict[tuple[str, str], bool] = {}
        starts: dict[str, datetime] = {}
        for name, col, method, val, p, drifted, ws in conn.execute(
            _LATEST_DRIFT, {"limit": MAX_ROWS}
        ):
            if val is not None:
                value.add_metric([name, col, method], float(val))
            if p is not None:
                p_value.add_metric([name, col, method], float(p))
            flags[(name, col)] = flags.get((name, col), False) or bool(drifted)
            starts[name] = ws
        for (name, col), drifted in flags.items():
            flag.add_metric([name, col], 1.0 if drifted else 0.0)
        for name, ws in starts.items():
            window.add_metric([name], ws.timestamp())
        yield from (value, p_value, flag, window)

    def _operational(self, conn: sa.Connection) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "monitor_window_operational",
            "Operational results of the newest window (volume, latency percentiles...).",
            labels=["model", "metric"],
        )
        for name, metric, val in conn.execute(_LATEST_OPERATIONAL, {"limit": MAX_ROWS}):
            if val is not None:
                gauge.add_metric([name, metric], float(val))
        yield gauge

    def _alerts(self, conn: sa.Connection) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "monitor_alerts",
            "Open alerts by state and severity.",
            labels=["model", "state", "severity"],
        )
        for name, state, severity, n in conn.execute(
            sa.text(
                "SELECT m.name, a.state, ar.severity, count(*) FROM alerts a "
                "JOIN models m ON m.id = a.model_id JOIN alert_rules ar ON ar.id = a.rule_id "
                "WHERE a.state <> 'resolved' GROUP BY 1, 2, 3"
            )
        ):
            gauge.add_metric([name, state, severity], float(n))
        yield gauge

    def _sdk(self, conn: sa.Connection) -> Iterator[Metric]:
        """Counters the SDK instances last reported (numbers; dicts become a ``reason`` label)."""
        families: dict[str, CounterMetricFamily] = {}

        def family(key: str, extra: list[str]) -> CounterMetricFamily:
            if key not in families:
                families[key] = CounterMetricFamily(
                    f"monitor_sdk_{key}",
                    f"SDK-reported counter '{key}' per instance.",
                    labels=["model", "instance", *extra],
                )
            return families[key]

        for name, instance, stats in conn.execute(
            sa.text(
                "SELECT m.name, s.instance, s.stats FROM sdk_reports s "
                "JOIN models m ON m.id = s.model_id ORDER BY s.reported_at DESC LIMIT 1000"
            )
        ):
            for key, val in (stats or {}).items():
                metric = _metric_name(key)
                if not metric:
                    continue
                if isinstance(val, int | float) and not isinstance(val, bool):
                    family(metric, []).add_metric([name, instance], float(val))
                elif isinstance(val, dict):
                    for reason, n in val.items():
                        if isinstance(n, int | float) and not isinstance(n, bool):
                            family(metric, ["reason"]).add_metric(
                                [name, instance, str(reason)], float(n)
                            )
        yield from families.values()
        dead = CounterMetricFamily(
            "monitor_dead_letters",
            "Records refused by the database, per model.",
            labels=["model"],
        )
        for name, n in conn.execute(
            sa.text(
                "SELECT coalesce(m.name, ''), count(*) FROM dead_letters d "
                "LEFT JOIN models m ON m.id = d.model_id GROUP BY 1"
            )
        ):
            dead.add_metric([name], float(n))
        yield dead

    def _jobs(self, conn: sa.Connection) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "monitor_job_lag_seconds",
            "Seconds since the end of the newest successfully computed window, per model and job.",
            labels=["model", "job"],
        )
        runs = GaugeMetricFamily(
            "monitor_runs",
            "Job runs by status (windows not yet succeeded).",
            labels=["model", "job", "status"],
        )
        now = datetime.now(UTC)
        for name, job, newest in run_stats.newest_success(conn):
            lag.add_metric([name, job], max((now - newest).total_seconds(), 0.0))
        for name, job, status, n in run_stats.unfinished_counts(conn):
            runs.add_metric([name, job, status], float(n))
        yield from (lag, runs)


def _metric_name(key: Any) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in str(key)).strip("_").lower()
    text = text.removesuffix("_total")
    return text if text and not text[0].isdigit() else ""


class _Families:
    """What ``generate_latest`` needs of a registry: ``collect()``."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


_VERSIONS = sa.text("SELECT model_id, version FROM results_versions ORDER BY model_id")


@router.get(
    "/metrics",
    summary="Prometheus metrics (drift, alerts, ingest, job lag)",
    dependencies=[Depends(require_scope("read"))],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request, conn: sa.Connection = Depends(read_conn)) -> Response:
    """The scrape: the results part's text cached per results version of every model (the
    newest window's drift and operational numbers, most of the text), the rest read fresh."""
    versions = tuple(tuple(r) for r in conn.execute(_VERSIONS))

    def results(c: sa.Connection) -> tuple[Hashable, bytes]:
        # the versions are read (again: this may run later, on a refresh's connection) first
        ver = tuple(tuple(r) for r in c.execute(_VERSIONS))
        return ver, generate_latest(_Families(DatabaseCollector(c).results()))

    _, text = view_cache(request.app.state).view(("metrics-results",), versions, conn, results)
    body = text + generate_latest(_Families(DatabaseCollector(conn).live()))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
