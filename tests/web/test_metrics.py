"""/metrics by the Prometheus rules: promtool's lint, one metric per quantity in base units, no
``job``/``instance`` labels, what users alert on, a per-model cap that says what it left out;
and a real Prometheus (Debian's 2.42) scraping it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from psycopg.types.json import Jsonb

from monitor.storage.engine import libpq_url
from monitor.web.metrics import DatabaseCollector
from tests.http import free_port
from tests.web.conftest import Site

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
STATS = {
    "enqueued": 1000,
    "queued": 7,
    "exported": 990,
    "dropped": {"queue_full": 3},
    "spooled_bytes": 4096,
    "spool_oldest_age_s": 2.5,
    "some_future_counter": 1,
    "last_error": "boom",
}


@pytest.fixture(scope="module")
def seeded(site: Site, engine: sa.Engine) -> Site:
    """What the synthetic results lack: effect sizes, an SDK report, a failed run and delivery."""
    import psycopg

    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE results SET effect_size = value / 2 WHERE family = 'drift'"))
        conn.execute(
            sa.text(
                "UPDATE runs SET status = 'failed', error = 'boom' WHERE window_start = "
                "(SELECT min(window_start) FROM runs)"
            )
        )
        conn.execute(sa.text("UPDATE deliveries SET status = 'failed'"))
        # results changed under the cache's feet: bump the version as a job would
        conn.execute(sa.text("UPDATE results_versions SET version = version + 1000"))
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    with psycopg.connect(url) as pg:
        pg.execute(
            "INSERT INTO sdk_reports (model_id, instance, stats) VALUES (%s, 'host-1:42', %s)",
            (site.data.model_id, Jsonb(STATS)),
        )
    return site


@pytest.fixture(scope="module")
def scrape(seeded: Site) -> str:
    r = httpx.get(f"{seeded.base}/metrics", headers=seeded.auth(seeded.reader), timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return r.text


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (.ci/run installs it)")
def test_promtool_accepts_the_exposition(scrape: str) -> None:
    run = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=scrape, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_types_units_and_labels_follow_the_naming_guide(scrape: str) -> None:
    types = {f.name: f.type for f in text_string_to_metric_families(scrape)}
    samples = _samples(scrape)
    for name, rows in samples.items():
        for labels, _ in rows:
            assert not {"job", "instance"} & set(labels), name
    # SDK: counters are counters (with _total), levels are gauges, in bytes and seconds
    assert types["monitor_sdk_records_enqueued"] == "counter"
    assert samples["monitor_sdk_records_enqueued_total"][0][1] == 1000
    assert samples["monitor_sdk_records_dropped_total"][0][0]["reason"] == "queue_full"
    assert types["monitor_sdk_queue_records"] == "gauge"
    assert types["monitor_sdk_spool_bytes"] == "gauge"
    assert samples["monitor_sdk_spool_oldest_age_seconds"][0][1] == 2.5
    assert samples["monitor_sdk_queue_records"][0][0]["sdk_instance"] == "host-1:42"
    # a field without a metric is not exported under a guessed name, but counted
    assert samples["monitor_metrics_omitted_sdk_stats"] == [({"field": "some_future_counter"}, 1)]
    # one quantity per metric: latency in seconds by percentile, volume on its own
    latency = {lab["percentile"]: val for lab, val in samples["monitor_window_latency_seconds"]}
    assert set(latency) == {"p50", "p95", "p99"} and 0.001 < latency["p50"] < 0.01
    assert samples["monitor_window_predictions"][0][1] > 100
    assert "monitor_window_operational" not in samples


def test_what_users_alert_on_is_exported(scrape: str, seeded: Site) -> None:
    samples = _samples(scrape)
    assert 0.5 < samples["monitor_performance_roc_auc"][0][1] < 1
    assert 0.5 < samples["monitor_estimated_performance_roc_auc"][0][1] < 1
    nulls = {lab["feature"] for lab, _ in samples["monitor_quality_null_ratio"]}
    assert set(seeded.data.features) <= nulls
    effects = {lab["feature"] for lab, _ in samples["monitor_drift_effect_size"]}
    assert set(seeded.data.features) <= effects
    lag = samples["monitor_task_lag_seconds"]
    assert lag[0][0] == {"model": "fraud", "task": "window"} and lag[0][1] >= 0
    failed = [v for lab, v in samples["monitor_runs"] if lab["status"] == "failed"]
    assert failed == [1.0]
    assert samples["monitor_deliveries"] == [({"channel": "ops-webhook", "status": "failed"}, 1)]
    assert samples["monitor_drifted_features_ratio"][0][0] == {"model": "fraud"}
    assert samples["monitor_alerts"][0][1] == 1


def test_per_model_cap_keeps_the_drifted_features_and_counts_the_rest(
    seeded: Site, engine: sa.Engine
) -> None:
    newest = "(SELECT max(window_start) FROM results WHERE family = 'drift')"
    mark = (
        "UPDATE results SET drifted = :d WHERE family = 'drift' AND segment = '' "
        f"AND column_name = 'f11_cat' AND window_start = {newest}"
    )
    with engine.begin() as conn:
        conn.execute(sa.text(mark), {"d": True})
    try:
        with engine.connect() as conn:
            families = list(DatabaseCollector(conn, max_features=2).results())
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(mark), {"d": False})
    samples: dict[str, list[dict[str, str]]] = {}
    values: dict[str, float] = {}
    for family in families:
        for s in family.samples:
            samples.setdefault(s.name, []).append(s.labels)
            values[s.name] = s.value
    kept = {lab["feature"] for lab in samples["monitor_drift_detected"]}
    # the drifted feature first (though last by name), then the first by name
    assert kept == {"f11_cat", sorted([*seeded.data.features, "@score"])[0]}
    quality = {lab["feature"] for lab in samples["monitor_quality_null_ratio"]} - {""}
    assert quality <= kept
    assert values["monitor_metrics_omitted_features"] == len(seeded.data.features) + 1 - 2


@pytest.fixture()
def prometheus(seeded: Site, tmp_path: Path) -> Iterator[str]:
    assert PROMETHEUS is not None
    port = free_port()
    target = seeded.base.removeprefix("http://")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: monitor\n"
        "    authorization: {credentials: " + seeded.reader + "}\n"
        "    static_configs: [{targets: ['" + target + "']}]\n"
    )
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def _query(base: str, promql: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    return r.json()["data"]["result"]  # type: ignore[no-any-return]


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (.ci/run installs it)")
def test_a_real_prometheus_scrapes_it(prometheus: str) -> None:
    deadline = time.monotonic() + 60
    up: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        try:
            up = _query(prometheus, 'up{job="monitor"} == 1')
            if up and _query(prometheus, "monitor_drift_detected"):
                break
        except (httpx.TransportError, httpx.HTTPStatusError):
            pass  # still starting (not listening yet, or 503 until its storage is ready)
        time.sleep(0.5)
    assert up, "Prometheus never scraped /metrics successfully"
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
    (target,) = targets["activeTargets"]
    assert target["health"] == "up" and target["lastError"] == ""
    # our labels arrive as they are: nothing renamed to exported_*
    assert _query(prometheus, '{__name__=~"monitor_.+", exported_job!=""}') == []
    assert _query(prometheus, '{__name__=~"monitor_.+", exported_instance!=""}') == []
    drifted = _query(prometheus, 'monitor_drift_detected{model="fraud"}')
    assert len(drifted) >= 12
    assert _query(prometheus, 'monitor_sdk_records_enqueued_total{sdk_instance="host-1:42"}')
