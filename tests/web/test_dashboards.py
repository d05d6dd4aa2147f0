"""Every Grafana panel's SQL runs against a migrated database holding results, and returns rows.

Grafana expands its macros before sending SQL to Postgres; this test expands the ones the
dashboards use the same way (``$__timeFilter``, ``$__timeGroupAlias``, ``${model}``), so a column
renamed in the schema or a typo in a panel fails here instead of in someone's Grafana.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.web.conftest import Site

DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "dashboards").glob("*.json"))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAY_BE_EMPTY = {"Failed windows (runs that gave up with an error)"}  # none in healthy data


def expand(sql: str, start: datetime, end: datetime, variables: dict[str, str]) -> str:
    """Grafana's PostgreSQL macro expansion for the macros our dashboards use."""

    def time_filter(m: re.Match[str]) -> str:
        return f"{m.group(1)} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"

    def group_alias(m: re.Match[str]) -> str:
        n, unit = re.fullmatch(r"'?(\d+)([smhd])'?", m.group(2).strip()).groups()  # type: ignore[union-attr]
        secs = int(n) * UNITS[unit]
        return f'to_timestamp(floor(extract(epoch FROM {m.group(1)}) / {secs}) * {secs}) AS "time"'

    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", time_filter, sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)", group_alias, sql)
    for name, value in variables.items():
        sql = sql.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in sql, f"unexpanded macro or variable in: {sql}"
    return sql


def _panels(path: Path) -> list[dict]:
    return json.loads(path.read_text())["panels"]


def test_dashboards_exist_and_use_the_postgres_datasource() -> None:
    assert {p.name for p in DASHBOARDS} >= {"monitor-overview.json", "monitor-model.json"}
    for path in DASHBOARDS:
        for panel in _panels(path):
            for target in panel["targets"]:
                assert target["datasource"]["type"] == "grafana-postgresql-datasource"
                assert target["rawSql"].strip()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_runs_and_returns_rows(path: Path, site: Site, engine: sa.Engine) -> None:
    variables = {"model": site.data.model, "perf_metric": "roc_auc"}
    end = datetime.now(UTC) + timedelta(hours=1)  # Grafana's "now-14d to now"
    start = end - timedelta(days=14)
    with engine.connect() as conn:
        for panel in _panels(path):
            for target in panel["targets"]:
                sql = expand(target["rawSql"], start, end, variables)
                result = conn.execute(sa.text(sql.replace(":", r"\:")))
                rows = result.all()
                if panel["title"] not in MAY_BE_EMPTY:
                    assert rows, f"{path.name}: panel {panel['title']!r} returned no rows"
                if target["format"] == "time_series":
                    assert "time" in list(result.keys()), panel["title"]


GRAPHS = ("timeseries", "barchart")


def test_every_graph_shows_one_quantity_with_its_unit() -> None:
    for path in DASHBOARDS:
        for panel in _panels(path):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            if panel["type"] in GRAPHS:
                assert unit, f"{path.name}: {panel['title']!r} has no unit"
            for target in panel["targets"]:
                sql = target["rawSql"]
                # a p-value and a statistic are different quantities: never one column
                assert "coalesce(r.p_value, r.value)" not in sql, panel["title"]
                if "r.family = 'quality'" in sql:
                    assert "r.metric IN (" in sql, panel["title"]  # shares only, no counts
                if "'performance'" in sql:
                    assert "${perf_metric}" in sql, panel["title"]  # one metric at a time


def test_lag_counts_only_succeeded_windows(site: Site, engine: sa.Engine) -> None:
    """A failed run is not progress: the lag panel must not move when windows fail."""
    overview = next(p for p in DASHBOARDS if p.stem == "monitor-overview")
    (panel,) = [p for p in _panels(overview) if p["title"].startswith("Lag")]
    sql = panel["targets"][0]["rawSql"]
    end = site.data.end
    with engine.begin() as conn:
        before = conn.execute(sa.text(sql)).all()
        conn.execute(
            sa.text(
                "INSERT INTO runs (model_id, job, window_start, window_end, status, attempt) "
                "VALUES (:m, 'window', :s, :e, 'failed', 3)"
            ),
            {"m": site.data.model_id, "s": end + timedelta(hours=5), "e": end + timedelta(hours=6)},
        )
        after = conn.execute(sa.text(sql)).all()
        conn.execute(sa.text("DELETE FROM runs WHERE status = 'failed'"))
    assert [r[:2] for r in after] == [r[:2] for r in before] == [("fraud", "window")]
    assert after[0][2] >= before[0][2]  # the failed window made no one think we caught up
