"""The JSON API over synthetic stored results: what the pages show, pagination, clear errors."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from tests.web.conftest import ARTIFACTS, Site
from tests.web.fixtures import HOSTILE, seed_raw_window


def _get(site: Site, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{site.base}{path}", params=params, headers=site.auth(), timeout=30)


def test_models_list_shows_health(site: Site) -> None:
    body = _get(site, "/api/v1/models").json()
    assert body["next_offset"] is None and body["offset"] == 0
    (m,) = body["items"]
    assert m["name"] == "fraud"
    assert m["drift"]["features"] == 12
    assert m["alerts"]["firing"] == 1
    assert m["performance"]["metric"] == "roc_auc"
    assert m["baseline"]["version"] == "v1" and m["baseline"]["age_days"] >= 44
    assert m["volume"] is not None and m["latency_p95"] is not None
    assert m["status"] == "alert"


def test_heatmap_ranks_the_drifted_features_first(site: Site) -> None:
    body = _get(site, "/api/v1/models/fraud/heatmap", range="14d").json()
    names = [f["name"] for f in body["features"]]
    assert sorted(names[:3]) == sorted(site.data.drifted)
    assert len(body["times"]) == 14 * 24
    assert len(body["z"]) == 12 and all(len(row) == 14 * 24 for row in body["z"])
    top = body["features"][0]
    # drift lasted 4 of 14 days: about 96 of 336 windows
    assert 90 <= top["drifted_windows"] <= 96
    assert [o["name"] for o in body["outputs"]] == ["@score"]
    by_name = _get(site, "/api/v1/models/fraud/heatmap", sort="name").json()
    assert [f["name"] for f in by_name["features"]] == sorted(names)
    assert HOSTILE in names


def test_long_ranges_are_bucketed(site: Site) -> None:
    body = _get(site, "/api/v1/models/fraud/heatmap", range="90d").json()
    assert body["range"]["bucket_seconds"] == 6 * 3600  # 2160 windows / 400 points -> 6 h
    assert len(body["times"]) <= 400


def test_feature_detail_and_distribution(site: Site) -> None:
    f = site.data.drifted[0]
    body = _get(site, f"/api/v1/models/fraud/features/{f}").json()
    line = body["drift"]["ks_t"]
    assert len(line["t"]) == 14 * 24 and line["threshold"][0] == 0.01
    effect = body["effect"]
    assert effect["effect_name"] == "wasserstein_sd" and len(effect["t"]) == 14 * 24
    assert effect["tolerance"][0] == 0.1
    assert all(lo <= e <= hi for lo, e, hi in zip(effect["ci_low"], effect["effect"],
                                                   effect["ci_high"], strict=True))  # fmt: skip
    dist = body["distribution"]
    assert dist["kind"] == "numeric" and dist["baseline_version"] == "v1"
    # the default window is the most drifted one, inside the drift period
    assert (
        site.data.drift_start.isoformat() <= dist["window_start"] < site.data.drift_end.isoformat()
    )
    assert len(dist["reference"]["density"]) == len(dist["current"]["density"]) == 10
    worst = body["drifted_windows"][0]
    assert worst["ci_low"] > worst["tolerance"] == 0.1 and worst["p_value"] <= 0.01
    merged = _get(site, f"/api/v1/models/fraud/features/{f}", window="range").json()
    assert merged["distribution"]["windows"] == 14 * 24
    cat = _get(site, "/api/v1/models/fraud/features/f03_cat", window="range").json()
    assert cat["distribution"]["kind"] == "categorical"
    assert cat["distribution"]["unseen"] == ["zz_new"]


def test_series_results_runs_and_pagination(site: Site) -> None:
    ops = _get(site, "/api/v1/models/fraud/series/operational").json()
    assert set(ops["metrics"]) == {"volume", "latency_p50", "latency_p95", "latency_p99"}
    page1 = _get(site, "/api/v1/models/fraud/results", family="drift", limit=5).json()
    page2 = _get(site, "/api/v1/models/fraud/results", family="drift", limit=5, offset=5).json()
    assert len(page1["items"]) == 5 and page1["next_offset"] == 5
    assert {r["column_name"] for r in page1["items"]}.isdisjoint(
        {r["column_name"] for r in page2["items"]}
    ) or page1["items"] != page2["items"]
    runs = _get(site, "/api/v1/models/fraud/runs", limit=3).json()
    assert len(runs["items"]) == 3 and runs["items"][0]["status"] == "succeeded"


def test_alerts_and_admin_lists(site: Site) -> None:
    alerts = _get(site, "/api/v1/alerts").json()["items"]
    assert [a["state"] for a in alerts] == ["firing", "resolved"]
    detail = _get(site, f"/api/v1/alerts/{site.data.firing_alert_id}").json()
    assert detail["events"][0]["to_state"] == "firing"
    deliveries = _get(site, "/api/v1/deliveries").json()["items"]
    assert [a["status_code"] for a in deliveries[0]["recent_attempts"]] == [200, 503]
    assert _get(site, "/api/v1/channels").json()["items"][0]["target"].startswith("https://")
    assert _get(site, "/api/v1/rules").json()["items"][0]["name"] == "feature drift"
    assert _get(site, "/api/v1/baselines").json()["items"][0]["rows"] == 50000


def test_errors_are_json_with_a_message(site: Site) -> None:
    missing = _get(site, "/api/v1/models/nope")
    assert missing.status_code == 404 and missing.json() == {"detail": "no model named 'nope'"}
    bad_range = _get(site, "/api/v1/models/fraud/heatmap", start="yesterday")
    assert bad_range.status_code == 400 and "ISO 8601" in bad_range.json()["detail"]
    bad_limit = _get(site, "/api/v1/models", limit=0)
    assert bad_limit.status_code == 422 and bad_limit.json()["errors"][0]["loc"][-1] == "limit"
    reader = httpx.post(
        f"{site.base}/api/v1/silences",
        json={"matchers": [{"name": "model", "value": "fraud"}], "duration_hours": 1},
        headers=site.auth(site.reader),
    )
    assert reader.status_code == 403 and "admin" in reader.json()["detail"]


def test_silences_rules_and_tokens_round_trip(site: Site) -> None:
    h = site.auth()
    made = httpx.post(
        f"{site.base}/api/v1/silences",
        json={
            "matchers": [{"name": "column", "op": "=~", "value": "f0.*"}],
            "duration_hours": 2,
            "comment": "deploying",
        },
        headers=h,
    )
    assert made.status_code == 201
    active = _get(site, "/api/v1/silences", active=True).json()["items"]
    assert any(s["id"] == made.json()["id"] and s["active"] for s in active)
    bad = httpx.post(
        f"{site.base}/api/v1/silences",
        json={"matchers": [{"name": "x", "isRegex": True, "value": "("}], "duration_hours": 1},
        headers=h,
    )
    assert bad.status_code == 400 and "bad regex" in bad.json()["detail"]
    ended = httpx.delete(f"{site.base}/api/v1/silences/{made.json()['id']}", headers=h)
    assert ended.status_code == 200
    active = _get(site, "/api/v1/silences", active=True).json()["items"]
    assert all(s["id"] != made.json()["id"] for s in active)

    rule = httpx.post(
        f"{site.base}/api/v1/rules",
        json={
            "model": "fraud",
            "name": "auc low",
            "metric": "performance.roc_auc",
            "operator": "<",
            "threshold": 0.75,
        },
        headers=h,
    )
    assert rule.status_code == 201
    dup = httpx.post(
        f"{site.base}/api/v1/rules",
        json={"model": "fraud", "name": "auc low", "metric": "performance.roc_auc"},
        headers=h,
    )
    assert dup.status_code == 400
    off = httpx.patch(
        f"{site.base}/api/v1/rules/{rule.json()['id']}", json={"enabled": False}, headers=h
    )
    assert off.json() == {"id": rule.json()["id"], "enabled": False}
    assert (
        httpx.delete(f"{site.base}/api/v1/rules/{rule.json()['id']}", headers=h).status_code == 200
    )

    tok = httpx.post(f"{site.base}/api/v1/tokens", json={"name": "ci", "scope": "read"}, headers=h)
    assert tok.status_code == 201 and tok.json()["token"].startswith("mon_")
    assert _get(site, "/api/v1/models").status_code == 200
    listed = _get(site, "/api/v1/tokens").json()["items"]
    assert all("token" not in t for t in listed)
    assert (
        httpx.delete(f"{site.base}/api/v1/tokens/{tok.json()['id']}", headers=h).status_code == 200
    )
    assert (
        httpx.get(f"{site.base}/api/v1/models", headers=site.auth(tok.json()["token"])).status_code
        == 401
    )


def test_metrics_exposes_drift_alerts_and_lag(site: Site) -> None:
    r = httpx.get(f"{site.base}/metrics", headers=site.auth(site.reader))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'monitor_drift_detected{feature="f00_num",model="fraud"}' in text
    assert 'monitor_alerts{model="fraud",severity="warning",state="firing"} 1.0' in text
    assert 'monitor_task_lag_seconds{model="fraud",task="window"}' in text
    assert 'monitor_window_predictions{model="fraud"}' in text
    # hostile label values are escaped by the exposition format, not emitted raw
    assert 'feature="<script>alert(1)</script>"' in text


def test_evidently_report_for_a_retained_window(site: Site, engine: sa.Engine) -> None:
    window = site.data.drift_start + timedelta(hours=3)
    seed_raw_window(engine, site.data, window)
    r = httpx.get(
        f"{site.base}/api/v1/models/fraud/report",
        params={"window": window.isoformat()},
        headers=site.auth(site.reader),
        timeout=120,
    )
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    assert "attachment" in r.headers["content-disposition"]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "evidently-report.html").write_text(r.text)
    assert "Drift is detected for" in r.text
    assert "f00_num" in r.text and "f03_cat" in r.text
    gone = httpx.get(
        f"{site.base}/api/v1/models/fraud/report",
        params={"window": (window - timedelta(days=2)).isoformat()},
        headers=site.auth(),
        timeout=60,
    )
    assert gone.status_code == 404 and "no longer retained" in gone.json()["detail"]
