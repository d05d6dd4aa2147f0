"""Incidents: alerts grouped by model, overlapping time and shared cause, with the effect sizes
of what moved and the performance over the period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
import sqlalchemy as sa

from monitor.web.reads import incidents
from tests.web.conftest import Site, login

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _alert(i: int, metric: str, start: int, end: int | None, model: str = "m", col: str = "x"):
    return SimpleNamespace(
        id=i, model=model, model_id=1, window_seconds=3600, rule=metric.split(".")[0],
        metric=metric, operator="drifted", threshold=None, for_windows=1, of_windows=1,
        severity="warning", state="resolved" if end is not None else "firing", column_name=col,
        segment="", value=1.0, window_start=T0 + start * H, started_at=T0 + start * H,
        resolved_at=None if end is None else T0 + end * H,
    )  # fmt: skip


def test_grouping_by_overlap_grace_and_cause() -> None:
    rows = [
        _alert(1, "drift.*", 0, 10, col="a"),
        _alert(2, "quality.null_share", 5, 12, col="b"),  # overlaps: same incident
        _alert(3, "performance.*", 13, 15, col=""),  # starts 1 h after its end: within grace
        _alert(4, "operational.latency_p95", 6, 8, col=""),  # other cause: its own incident
        _alert(5, "drift.*", 30, None, col="c"),  # long after: a new, open incident
        _alert(6, "drift.*", 40, 41, col="d"),  # overlaps the open one: joins it
        _alert(7, "drift.*", 0, 3, model="other"),  # another model
    ]
    rows.sort(key=lambda r: (r.model, r.started_at))
    groups = incidents._group(rows, now=T0 + 50 * H)
    by = [(g.model, g.cause, [a["id"] for a in g.alerts], g.end) for g in groups]
    assert ("m", "data", [1, 2, 3], T0 + 15 * H) in by
    assert ("m", "operations", [4], T0 + 8 * H) in by
    assert ("m", "data", [5, 6], None) in by
    assert ("other", "data", [7], T0 + 3 * H) in by
    assert len(by) == 4
    assert incidents.cause_of("operational.volume") == "operations"
    assert incidents.cause_of("estimated_performance.accuracy") == "data"


@pytest.fixture()
def more_alerts(site: Site, engine: sa.Engine) -> Iterator[None]:
    """Besides the fixture's two overlapping drift alerts: a latency alert in the same hours (an
    operations incident of its own) and a resolved drift alert a week before."""
    d = site.data
    rule = d.extra["rule"]
    with engine.begin() as conn:
        lat = conn.execute(
            sa.text(
                "INSERT INTO alert_rules (model_id, name, metric, operator, threshold, severity) "
                "VALUES (:m, 'slow', 'operational.latency_p95', '>', 250, 'critical') RETURNING id"
            ),
            {"m": d.model_id},
        ).scalar_one()
        for rule_id, fp, col, start, end in (
            (lat, "lat", "", d.drift_start + 2 * H, d.drift_start + 5 * H),
            (rule, "old", d.features[2], d.start + 1 * H, d.start + 4 * H),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO alerts (rule_id, model_id, fingerprint, state, column_name, "
                    "labels, value, window_start, started_at, resolved_at) VALUES (:r, :m, :f, "
                    "'resolved', :c, '{}', 1, :s, :s, :e)"
                ),
                {"r": rule_id, "m": d.model_id, "f": fp, "c": col, "s": start, "e": end},
            )
    yield
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alerts WHERE fingerprint IN ('lat', 'old')"))
        conn.execute(sa.text("DELETE FROM alert_rules WHERE name = 'slow'"))


def test_incidents_of_the_fixture(site: Site, engine: sa.Engine, more_alerts) -> None:
    d = site.data
    with engine.connect() as conn:
        found = incidents.list_incidents(conn, d.model, days=30, now=d.end)
    assert [(i["state"], i["cause"]) for i in found] == [
        ("open", "data"), ("resolved", "operations"), ("resolved", "data"),
    ]  # fmt: skip
    open_ = found[0]
    assert open_["features"] == [d.drifted[0]] and open_["outputs"] == ["@score"]
    assert open_["alerts"] == 2 and open_["open_alerts"] == 1
    assert open_["start"] == (d.drift_start + H).isoformat() and open_["end"] is None
    effects = {e["column"]: e for e in open_["effects"]}
    assert effects[d.drifted[0]]["ci_low"] > effects[d.drifted[0]]["tolerance"] == 0.1
    assert effects[d.drifted[0]]["drifted_windows"] == 4 * 24
    assert d.drift_start.isoformat() <= effects["@score"]["window_start"] < d.drift_end.isoformat()
    impact = open_["impact"]  # realised roc_auc ~0.72 in the drift days against 0.81
    assert impact["metric"] == "roc_auc" and impact["source"] == "realised"
    assert impact["baseline"] == pytest.approx(0.81) and impact["relative"] < -0.03
    assert found[1]["impact"] is None  # an operations incident has no performance impact
    assert found[2]["features"] == [d.features[2]]


def test_incidents_on_the_pages(site: Site, more_alerts) -> None:
    d = site.data
    with httpx.Client(base_url=site.base, timeout=30) as c:
        assert login(c, site.reader).status_code == 303
        model = c.get(f"/models/{d.model}").text
        alerts = c.get("/alerts").text
    assert "Incidents: 1 open" in model
    assert model.count('data-incident-state="open"') == 1
    assert model.count('data-incident-state="resolved"') == 2
    # an incident links its features at the window where they moved most, with its range
    link = f'class="incident-feature" href="/models/{d.model}/features/{d.drifted[0]}?start='
    assert link in model and "&amp;window=" in model
    assert "Performance over the period: roc_auc" in model
    assert alerts.index('id="incidents"') < alerts.index("Firing and pending alerts")
    assert alerts.count("data-incident-state=") == 3
