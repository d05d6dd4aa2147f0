"""``/metrics`` in Prometheus text format, read from the database at scrape time.

A custom collector (the pattern client_python recommends for "proxy" exporters) turns the newest
stored results into metric families on each scrape, so any number of stateless web replicas
expose the same numbers and nothing keeps global mutable gauges. Every query is bounded: the
newest window per model via the results index, and at most
``MONITOR_METRICS_MAX_FEATURES_PER_MODEL`` features per model in the per-feature families (the
most drifted first); what is left out is counted in ``monitor_metrics_omitted_features``.

Naming follows the Prometheus guide: one metric per quantity, base units (``_seconds``,
``_bytes``, ``_ratio``), counters end in ``_total``, and no label is called ``job`` or
``instance`` (Prometheus sets those for the scrape target; ours would arrive renamed as
``exported_job``): the monitor's own jobs are ``task``, SDK processes ``sdk_instance``. Each
stored quantity has one entry in a registry below (:data:`OPERATIONAL`, :data:`QUALITY`,
:data:`SDK_STATS`); a quantity without an entry is not exported under a guessed name but counted
in ``monitor_metrics_omitted_values``.

Most of a scrape's text is the newest window's results, which only change when a job writes
results: that part's text is cached per web process, keyed by every model's results version
(``monitor.web.cache``), so it is never stale. Alerts, SDK counters, dead letters, deliveries and
job-run gauges are read on every scrape.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Generator, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.settings import get_settings
from monitor.storage import run_stats
from monitor.storage import vocabulary as v
from monitor.web.auth import require_scope
from monitor.web.cache import view_cache
from monitor.web.deps import read_conn

log = logging.getLogger(__name__)
router = APIRouter(tags=["metrics"])
MAX_ROWS = 20_000
"""Bound of the queries whose rows do not grow with features (alerts, rules, SDK reports)."""

DAY = 86400.0


@dataclass(frozen=True)
class Quantity:
    """How one stored number is exported: metric name, help, scale to base units, and a
    ``percentile`` label for percentiles of the same quantity (not ``quantile``: that label
    belongs to summaries, and these gauges are a window's precomputed percentiles)."""

    name: str
    help: str
    scale: float = 1.0
    percentile: str | None = None
    counter: bool = False


OPERATIONAL: dict[str, Quantity] = {
    v.VOLUME: Quantity("monitor_window_predictions", "Predictions in the newest window."),
    **{
        key: Quantity(
            "monitor_window_latency_seconds",
            "Serving latency of the newest window (percentile).",
            1e-3,
            q,
        )
        for key, q in ((v.LATENCY_P50, "p50"), (v.LATENCY_P95, "p95"), (v.LATENCY_P99, "p99"))
    },
    **{
        key: Quantity(
            "monitor_window_cold_latency_seconds",
            "Latency of cold requests (after a deploy or an idle gap) in the newest window.",
            1e-3,
            q,
        )
        for key, q in ((v.LATENCY_COLD_P50, "p50"), (v.LATENCY_COLD_P95, "p95"))
    },
    v.LATENCY_WARM_P50: Quantity(
        "monitor_window_warm_latency_seconds", "Latency of warm requests.", 1e-3, "p50"
    ),
    v.COLD_REQUESTS: Quantity("monitor_window_cold_requests", "Cold requests in the window."),
    v.COLD_START_RATIO: Quantity(
        "monitor_window_cold_start_ratio", "Cold p50 latency over warm p50 latency."
    ),
    v.LABEL_COVERAGE: Quantity(
        "monitor_window_label_coverage_ratio", "Share of the window's predictions with a label."
    ),
    v.LABELS: Quantity("monitor_window_labels", "Labelled predictions in the window."),
    **{
        key: Quantity(
            "monitor_window_label_delay_seconds",
            "Delay from a prediction to its label (percentile).",
            1.0,
            q,
        )
        for key, q in ((v.LABEL_DELAY_P50, "p50"), (v.LABEL_DELAY_P90, "p90"))
    },
    v.LABELS_UNMATCHED: Quantity(
        "monitor_window_unmatched_labels", "Labels received in the window matching no prediction."
    ),
    v.DUPLICATE_IDS: Quantity(
        "monitor_window_duplicate_ids", "Record ids logged more than once in the window."
    ),
    v.ERRORS: Quantity(
        "monitor_window_refused_records", "Records the database refused during the window."
    ),
    v.VOLUME_ANOMALY: Quantity(
        "monitor_window_volume_anomaly_score", "Robust z-score of the window's volume."
    ),
    v.COST: Quantity("monitor_window_cost", "Cost of the window (configured currency)."),
    v.COST_PER_DAY: Quantity("monitor_cost_per_day", "The window's cost rate over 24 hours."),
    v.VERSION_AGE_DAYS: Quantity(
        "monitor_model_version_age_seconds", "Age of the serving model version.", DAY
    ),
    v.BASELINE_AGE_DAYS: Quantity("monitor_baseline_age_seconds", "Age of the baseline.", DAY),
    v.RETRAIN_INTERVAL_DAYS: Quantity(
        "monitor_retrain_interval_seconds", "Time between the last model versions.", DAY
    ),
    v.DRIFT_TREND: Quantity(
        "monitor_drifted_share_trend_per_second",
        "Theil-Sen slope of the drifted-feature share over the last week, per second.",
        1 / DAY,
    ),
}
QUALITY: dict[str, Quantity] = {
    v.NULL_SHARE: Quantity("monitor_quality_null_ratio", "Share of null values (newest window)."),
    v.OUT_OF_RANGE_SHARE: Quantity(
        "monitor_quality_out_of_range_ratio", "Share of values outside the baseline's range."
    ),
    v.UNSEEN_CATEGORY_SHARE: Quantity(
        "monitor_quality_unseen_category_ratio", "Share of categories the baseline never saw."
    ),
    v.TYPE_ERRORS: Quantity(
        "monitor_quality_type_errors", "Values of the wrong type in the newest window."
    ),
    v.MISSING_COLUMN: Quantity(
        "monitor_quality_missing_column", "1 if the column is missing from the newest window."
    ),
    v.UNEXPECTED_COLUMN: Quantity(
        "monitor_quality_unexpected_column", "1 if the column is not in the baseline."
    ),
}
DATASET: dict[str, Quantity] = {
    "share_drifted": Quantity(
        "monitor_drifted_features_ratio", "Share of features that drifted in the newest window."
    ),
    "drifted_columns": Quantity(
        "monitor_drifted_features", "Features that drifted in the newest window."
    ),
}
PERFORMANCE_METRICS = frozenset(v.CLASSIFICATION_METRICS + v.REGRESSION_METRICS)
SDK_STATS: dict[str, Quantity] = {
    "enqueued": Quantity("monitor_sdk_records_enqueued", "Records log() accepted.", counter=True),
    "exported": Quantity(
        "monitor_sdk_records_exported", "Records handed to the sink.", counter=True
    ),
    "inserted": Quantity("monitor_sdk_records_inserted", "Records written.", counter=True),
    "duplicates": Quantity(
        "monitor_sdk_records_duplicate", "Records already stored (replays).", counter=True
    ),
    "dead_letters": Quantity(
        "monitor_sdk_records_dead_lettered", "Records the database refused.", counter=True
    ),
    "dropped": Quantity("monitor_sdk_records_dropped", "Records dropped, by reason.", counter=True),
    "cleaned": Quantity(
        "monitor_sdk_values_cleaned", "Values cleaned on the way in, by reason.", counter=True
    ),
    "replayed_records": Quantity(
        "monitor_sdk_records_replayed", "Records replayed from the spool.", counter=True
    ),
    "export_failures": Quantity(
        "monitor_sdk_export_failures", "Failed exports (spooled, retried).", counter=True
    ),
    "queued": Quantity("monitor_sdk_queue_records", "Records waiting in the in-memory queue."),
    "spooled_records": Quantity("monitor_sdk_spool_records", "Records waiting in the spool."),
    "spooled_bytes": Quantity("monitor_sdk_spool_bytes", "Bytes waiting in the spool."),
    "spool_oldest_age_s": Quantity(
        "monitor_sdk_spool_oldest_age_seconds", "Age of the oldest spooled record."
    ),
}
SDK_IGNORED = frozenset({"model", "version", "instance", "last_error", "dropped_total"})
"""Report fields that are no quantity (or the sum of one: ``dropped_total``)."""

_LATEST_DRIFT = sa.text(
    """
    SELECT m.name, r.column_name, r.metric, r.value, r.p_value, r.effect_size, r.drifted,
           r.window_start
    FROM models m
    CROSS JOIN LATERAL (
        SELECT window_start FROM results
        WHERE model_id = m.id AND family = 'drift' AND segment = ''
        ORDER BY window_start DESC LIMIT 1
    ) lw
    JOIN results r ON r.model_id = m.id AND r.family = 'drift' AND r.segment = ''
                  AND r.window_start = lw.window_start
    ORDER BY m.name, r.column_name, r.metric
    """
)

_LATEST_WINDOW = sa.text(
    """
    SELECT m.name, r.family, r.column_name, r.metric, r.value
    FROM models m
    CROSS JOIN unnest(CAST(:families AS text[])) AS f(family)
    CROSS JOIN LATERAL (
        SELECT window_start FROM results
        WHERE model_id = m.id AND family = f.family AND segment = ''
        ORDER BY window_start DESC LIMIT 1
    ) lw
    JOIN results r ON r.model_id = m.id AND r.family = f.family AND r.segment = ''
                  AND r.window_start = lw.window_start
    WHERE r.value IS NOT NULL
    ORDER BY 1, 2, 3, 4
    """
)
_WINDOW_FAMILIES = [
    v.OPERATIONAL,
    v.QUALITY,
    v.DATASET_DRIFT,
    v.MULTIVARIATE,
    v.PERFORMANCE,
    v.ESTIMATED_PERFORMANCE,
]


def _features_to_keep(rows: Iterable[Any], cap: int) -> tuple[dict[str, set[str]], Counter[str]]:
    """Per model, the ``cap`` features to export (drifted first, then by name) and how many
    more were left out."""
    drifted: dict[str, dict[str, bool]] = {}
    for name, col, *_, was_drifted, _ws in rows:
        seen = drifted.setdefault(name, {})
        seen[col] = seen.get(col, False) or bool(was_drifted)
    keep: dict[str, set[str]] = {}
    omitted: Counter[str] = Counter()
    for name, cols in drifted.items():
        ranked = sorted(cols, key=lambda c: (not cols[c], c))
        keep[name] = set(ranked[:cap])
        omitted[name] = max(len(ranked) - cap, 0)
    return keep, omitted


class _Families:
    """Metric families by name, created on first use (one per quantity)."""

    def __init__(self) -> None:
        self.by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, q: Quantity, labels: dict[str, str], value: float) -> None:
        names = [*labels, "percentile"] if q.percentile else list(labels)
        family = self.by_name.get(q.name)
        if family is None:
            kind = CounterMetricFamily if q.counter else GaugeMetricFamily
            family = self.by_name[q.name] = kind(q.name, q.help, labels=names)
        values = [*labels.values(), q.percentile] if q.percentile else list(labels.values())
        family.add_metric(values, value * q.scale)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.by_name.values())


class DatabaseCollector(Collector):
    """The newest results, alerts, SDK reports and run state, read on one connection.

    ``results()`` and ``live()`` are the two halves of a scrape: the first only changes when
    a job writes results (the route caches its text per results version), the second is read
    on every scrape.
    """

    def __init__(self, conn: sa.Connection, max_features: int | None = None) -> None:
        self.conn = conn
        if max_features is None:
            max_features = get_settings().metrics_max_features_per_model
        self.max_features = max_features

    def describe(self) -> list[Metric]:
        return []  # no query at registration time

    def collect(self) -> Iterator[Metric]:
        yield from self.results()
        yield from self.live()

    def results(self) -> Iterator[Metric]:
        keep = yield from self._drift(self.conn)
        yield from self._window(self.conn, keep)

    def live(self) -> Iterator[Metric]:
        yield from self._alerts(self.conn)
        yield from self._sdk(self.conn)
        yield from self._jobs(self.conn)
        yield from self._deliveries(self.conn)
        yield from self._streams(self.conn)

    def _drift(self, conn: sa.Connection) -> Generator[Metric, None, dict[str, set[str]]]:
        """Drift per feature; returns the features kept per model (for the quality families)."""
        value = GaugeMetricFamily(
            "monitor_drift_value",
            "Drift statistic of the newest window (segment: all traffic); its unit is the "
            "method's (see the method label).",
            labels=["model", "feature", "method"],
        )
        p_value = GaugeMetricFamily(
            "monitor_drift_p_value",
            "p-value of the newest window's drift test, for test methods.",
            labels=["model", "feature", "method"],
        )
        effect = GaugeMetricFamily(
            "monitor_drift_effect_size",
            "Effect size of the newest window's drift (the method's standardised distance).",
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
        omitted_features = GaugeMetricFamily(
            "monitor_metrics_omitted_features",
            "Features of the newest window left out of the per-feature metrics "
            "(MONITOR_METRICS_MAX_FEATURES_PER_MODEL; the most drifted are kept).",
            labels=["model"],
        )
        rows = conn.execute(_LATEST_DRIFT).all()
        keep, omitted = _features_to_keep(rows, self.max_features)
        flags: dict[tuple[str, str], bool] = {}
        starts: dict[str, datetime] = {}
        for name, col, method, val, p, eff, drifted, ws in rows:
            starts[name] = ws
            if col not in keep[name]:
                continue
            if val is not None:
                value.add_metric([name, col, method], float(val))
            if p is not None:
                p_value.add_metric([name, col, method], float(p))
            if eff is not None:
                effect.add_metric([name, col, method], float(eff))
            flags[(name, col)] = flags.get((name, col), False) or bool(drifted)
        for (name, col), drifted in flags.items():
            flag.add_metric([name, col], 1.0 if drifted else 0.0)
        for name, ws in starts.items():
            window.add_metric([name], ws.timestamp())
            omitted_features.add_metric([name], float(omitted[name]))
        yield from (value, p_value, effect, flag, window, omitted_features)
        return keep

    def _window(self, conn: sa.Connection, keep: dict[str, set[str]]) -> Iterator[Metric]:
        """Operational, quality, dataset and performance numbers of each family's newest window."""
        families = _Families()
        unknown: Counter[tuple[str, str]] = Counter()
        multivariate = GaugeMetricFamily(
            "monitor_multivariate_drift_score",
            "Multivariate drift score of the newest window (its unit is the method's).",
            labels=["model", "method"],
        )
        rows = conn.execute(_LATEST_WINDOW, {"families": _WINDOW_FAMILIES})
        for name, family, col, metric, val in rows:
            value = float(val)
            if family == v.OPERATIONAL:
                q = OPERATIONAL.get(metric)
                if q is not None and not col:
                    families.add(q, {"model": name}, value)
                    continue
            elif family == v.QUALITY:
                q = QUALITY.get(metric)
                if q is not None and (not col or col in keep.get(name, ())):
                    families.add(q, {"model": name, "feature": col}, value)
                    continue
                if q is not None:
                    continue  # counted in monitor_metrics_omitted_features
            elif family == v.DATASET_DRIFT:
                q = DATASET.get(metric)
                if q is not None:
                    families.add(q, {"model": name}, value)
                    continue
            elif family == v.MULTIVARIATE:
                multivariate.add_metric([name, metric], value)
                continue
            elif metric in PERFORMANCE_METRICS:
                prefix = "estimated_" if family == v.ESTIMATED_PERFORMANCE else ""
                kind = "estimated (no labels)" if prefix else "realised (from labels)"
                q = Quantity(
                    f"monitor_{prefix}performance_{metric}",
                    f"{metric} of the newest window, {kind}.",
                )
                families.add(q, {"model": name}, value)
                continue
            unknown[(family, metric)] += 1
        omitted = GaugeMetricFamily(
            "monitor_metrics_omitted_values",
            "Stored results of the newest windows that have no Prometheus metric yet.",
            labels=["family", "metric"],
        )
        for (family, metric), n in sorted(unknown.items()):
            omitted.add_metric([family, metric], float(n))
        yield from families
        yield from (multivariate, omitted)

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
        yield from self._rule_errors(conn)

    def _rule_errors(self, conn: sa.Connection) -> Iterator[Metric]:
        """Failed rule evaluations (a rule that cannot be evaluated is silent: this says so)."""
        total = CounterMetricFamily(
            "monitor_rule_evaluation_errors",
            "Failed evaluations of an alert rule (the rule is skipped; its model's others run).",
            labels=["model", "rule"],
        )
        errored = GaugeMetricFamily(
            "monitor_rule_errored",
            "1 while an alert rule's last evaluation failed (its error is on /alerts).",
            labels=["model", "rule"],
        )
        for name, rule, n, failing in conn.execute(
            sa.text(
                "SELECT m.name, r.name, r.errors_total, r.error IS NOT NULL FROM alert_rules r "
                "JOIN models m ON m.id = r.model_id WHERE r.errors_total > 0 "
                "ORDER BY 1, 2 LIMIT :limit"
            ),
            {"limit": MAX_ROWS},
        ):
            total.add_metric([name, rule], float(n))
            if failing:
                errored.add_metric([name, rule], 1.0)
        yield from (total, errored)

    def _sdk(self, conn: sa.Connection) -> Iterator[Metric]:
        """Counters the SDK instances last reported (numbers; dicts become a ``reason`` label)."""
        families = _Families()
        unknown: Counter[str] = Counter()
        for name, instance, stats in conn.execute(
            sa.text(
                "SELECT m.name, s.instance, s.stats FROM sdk_reports s "
                "JOIN models m ON m.id = s.model_id ORDER BY s.reported_at DESC LIMIT :limit"
            ),
            {"limit": MAX_ROWS},
        ):
            labels = {"model": name, "sdk_instance": instance}
            for key, val in (stats or {}).items():
                q = SDK_STATS.get(key)
                if q is None:
                    if key not in SDK_IGNORED:
                        unknown[str(key)[:100]] += 1
                    continue
                if _number(val):
                    families.add(q, labels, float(val))
                elif isinstance(val, dict):
                    for reason, n in val.items():
                        if _number(n):
                            families.add(q, {**labels, "reason": str(reason)[:100]}, float(n))
        yield from families
        omitted = GaugeMetricFamily(
            "monitor_metrics_omitted_sdk_stats",
            "SDK report fields that have no Prometheus metric (newer SDKs), by field.",
            labels=["field"],
        )
        for key, n in sorted(unknown.items()):
            omitted.add_metric([key], float(n))
        yield omitted
        dead = GaugeMetricFamily(
            "monitor_dead_letter_records",
            "Records refused by the database and kept as dead letters, per model.",
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
            "monitor_task_lag_seconds",
            "Seconds since the end of the newest successfully computed window, per model and "
            "task (window, performance).",
            labels=["model", "task"],
        )
        runs = GaugeMetricFamily(
            "monitor_runs",
            "Window runs not (yet) succeeded, by status (failed: gave up with an error).",
            labels=["model", "task", "status"],
        )
        now = datetime.now(UTC)
        for name, job, newest in run_stats.newest_success(conn):
            lag.add_metric([name, job], max((now - newest).total_seconds(), 0.0))
        for name, job, status, n in run_stats.unfinished_counts(conn):
            runs.add_metric([name, job, status], float(n))
        yield from (lag, runs)

    def _deliveries(self, conn: sa.Connection) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "monitor_deliveries",
            "Notification deliveries by channel and status (failed: retries exhausted).",
            labels=["channel", "status"],
        )
        for channel, status, n in conn.execute(
            sa.text(
                "SELECT c.name, d.status, count(*) FROM deliveries d "
                "JOIN channels c ON c.id = d.channel_id GROUP BY 1, 2"
            )
        ):
            gauge.add_metric([channel, status], float(n))
        yield gauge

    def _streams(self, conn: sa.Connection) -> Iterator[Metric]:
        """Spark streams (``monitor.spark.WindowSink``): late rows, open windows, event time."""
        late = CounterMetricFamily(
            "monitor_stream_late_rows",
            "Rows a Spark stream received after their window had closed (not counted).",
            labels=["model", "stream"],
        )
        open_windows = GaugeMetricFamily(
            "monitor_stream_open_windows",
            "Windows a Spark stream holds open (waiting for the allowed lateness).",
            labels=["model", "stream"],
        )
        high = GaugeMetricFamily(
            "monitor_stream_high_water_timestamp_seconds",
            "Latest event time a Spark stream has seen (Unix time).",
            labels=["model", "stream"],
        )
        for name, stream, n_late, n_open, seen in conn.execute(
            sa.text(
                "SELECT m.name, s.stream, s.late_rows, (SELECT count(*) FROM stream_windows w"
                " WHERE w.model_id = s.model_id AND w.stream = s.stream), s.high_water"
                " FROM stream_states s JOIN models m ON m.id = s.model_id LIMIT :limit"
            ),
            {"limit": MAX_ROWS},
        ):
            late.add_metric([name, stream], float(n_late))
            open_windows.add_metric([name, stream], float(n_open))
            if seen is not None:
                high.add_metric([name, stream], seen.timestamp())
        yield from (late, open_windows, high)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Registry:
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
        return ver, generate_latest(_Registry(DatabaseCollector(c).results()))

    _, text = view_cache(request.app.state).view(("metrics-results",), versions, conn, results)
    body = text + generate_latest(_Registry(DatabaseCollector(conn).live()))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
