"""Every Grafana panel's SQL against the demo's own data: `monitor demo`'s model, logged
traffic and baseline, with its windows computed by the worker (two days of them, to stay quick)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.web.test_dashboards import DASHBOARDS, MAY_BE_EMPTY, _panels, expand

OPTIONAL = {"Open alerts", "Alerts", "Deliveries by status"}
"""Panels about alerts: the demo's alert rules are set up by `monitor demo` itself, not here."""


def test_every_panel_runs_on_the_demo_database(
    clean_db: sa.Engine, settings_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.demo import jobs as demo_jobs
    from monitor.demo import seed as demo_seed
    from monitor.demo.data import MODEL, generate
    from monitor.settings import get_settings

    monkeypatch.setenv("MONITOR_CATCHUP_MAX_AGE_DAYS", "2")
    monkeypatch.setenv("MONITOR_MULTIVARIATE_METHODS", "[]")
    get_settings.cache_clear()
    now = datetime.now(UTC)
    demo_seed.seed(clean_db, generate(now=now, baseline_rows=3_000, rows_per_hour=30), tmp_path)
    demo_jobs.register_demo_baseline(clean_db, tmp_path)
    assert demo_jobs.compute_due_windows(clean_db) >= 24
    with clean_db.connect() as conn:
        perf_metric = conn.execute(
            sa.text("SELECT min(metric) FROM results WHERE family = 'estimated_performance'")
        ).scalar_one()
    variables = {"model": MODEL, "perf_metric": perf_metric}
    start, end = now - timedelta(days=14), now + timedelta(hours=1)
    empty = []
    with clean_db.connect() as conn:
        for path in DASHBOARDS:
            for panel in _panels(path):
                for target in panel["targets"]:
                    sql = expand(target["rawSql"], start, end, variables)
                    rows = conn.execute(sa.text(sql.replace(":", r"\:"))).all()
                    if not rows and panel["title"] not in MAY_BE_EMPTY | OPTIONAL:
                        empty.append(f"{path.name}: {panel['title']}")
    assert empty == []
