"""Cached views change on the very next request after a job writes, and alerts are never cached.

Each web process caches views computed from results, keyed by the model's results version
(``monitor.web.cache``). These tests write the way the jobs do (results replaced and the run
completed in one transaction), through a live server, and check the next answer shows it: for a
recomputed window (the time range does not move, so only the version can invalidate), for two
completions committing in the opposite order of their start, for a new baseline, and for a new
alert and silence.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from monitor.web.cache import ViewCache
from tests.web.conftest import Site


def _dashboard(site: Site, query: str = "") -> dict[str, Any]:
    r = httpx.get(
        f"{site.base}/api/v1/models/{site.data.model}/dashboard{query}",
        headers=site.auth(),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _window_range(site: Site) -> str:
    """A custom range of the seeded windows, so a rewritten window cannot move the range."""
    start, end = site.data.end - timedelta(days=2), site.data.end
    return f"?range=custom&start={start.isoformat()}&end={end.isoformat()}".replace("+", "%2B")


def _score(view: dict[str, Any], feature: str, window: datetime) -> float | None:
    heat = view["heatmap"]
    row = [f["name"] for f in heat["features"]].index(feature)
    col = heat["times"].index(window.isoformat())
    return heat["z"][row][col]


def _recompute(
    conn: sa.Connection, model_id: int, feature: str, ws: datetime, value: float
) -> None:
    """What a window job's completing transaction does: replace the results, complete the run."""
    conn.execute(
        sa.text(
            "UPDATE results SET value = :v, computed_at = now() WHERE model_id = :m "
            "AND window_start = :ws AND family = 'drift' AND column_name = :c AND segment = ''"
        ),
        {"m": model_id, "ws": ws, "c": feature, "v": value},
    )
    conn.execute(
        sa.text(
            "UPDATE runs SET status = 'succeeded', finished_at = now(), attempt = attempt + 1 "
            "WHERE model_id = :m AND job = 'window' AND window_start = :ws"
        ),
        {"m": model_id, "ws": ws},
    )


def _numeric_feature(site: Site) -> str:
    return next(f for f in site.data.features if f.endswith("_num") and f not in site.data.drifted)


def test_a_recomputed_window_shows_on_the_next_request(site: Site, engine: sa.Engine) -> None:
    feature, query = _numeric_feature(site), _window_range(site)
    ws = site.data.end - timedelta(hours=3)
    results_url = (
        f"{site.base}/api/v1/models/{site.data.model}/results?family=drift&column={feature}"
        "&limit=10"
    )

    def stored() -> float:
        r = httpx.get(results_url, headers=site.auth(), timeout=30)
        assert r.status_code == 200, r.text
        return next(i["value"] for i in r.json()["items"] if i["window_start"] == ws.isoformat())

    assert stored() == stored() != 0.9
    before = _dashboard(site, query)
    assert _dashboard(site, query) == before  # served from the cache the second time
    assert _score(before, feature, ws) is not None and _score(before, feature, ws) < 1
    with engine.begin() as conn:
        _recompute(conn, site.data.model_id, feature, ws, 0.9)  # threshold 0.1: score 9
    after = _dashboard(site, query)
    assert _score(after, feature, ws) == 9.0
    assert stored() == 0.9
    page = httpx.get(
        f"{site.base}/models/{site.data.model}{query}", headers=site.auth(), timeout=30
    )
    assert page.status_code == 200


def test_completions_committed_out_of_start_order_both_show(site: Site, engine: sa.Engine) -> None:
    """The older transaction commits last: its ``now()`` is earlier than the newest finish, so a
    key of ``max(finished_at)`` would not change and the cached view would stay stale."""
    feature, query = _numeric_feature(site), _window_range(site)
    first, second = site.data.end - timedelta(hours=5), site.data.end - timedelta(hours=6)
    with engine.connect() as older, engine.connect() as newer:
        older.begin()
        older.execute(sa.text("SELECT now()"))  # fixes the older transaction's now()
        with newer.begin():
            newer.execute(sa.text("SELECT pg_sleep(0.05)"))
            _recompute(newer, site.data.model_id, feature, second, 0.7)
        seen = _dashboard(site, query)
        assert _score(seen, feature, second) == 7.0
        _recompute(older, site.data.model_id, feature, first, 0.8)
        older.commit()
    assert _score(_dashboard(site, query), feature, first) == 8.0


def test_a_new_baseline_changes_the_cached_reference_distribution(
    site: Site, engine: sa.Engine
) -> None:
    feature = _numeric_feature(site)
    url = f"{site.base}/api/v1/models/{site.data.model}/features/{feature}"

    def reference() -> Any:
        r = httpx.get(url, headers=site.auth(), timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["distribution"]["baseline_version"]

    assert reference() == "v1"
    assert reference() == "v1"
    with engine.begin() as conn:
        old = conn.execute(
            sa.text("SELECT id, version_id FROM baselines WHERE model_id = :m ORDER BY id"),
            {"m": site.data.model_id},
        ).first()
        assert old is not None
        new_id = conn.execute(
            sa.text(
                "INSERT INTO baselines (model_id, version_id, n_rows, columns, "
                "prediction_column, created_at) SELECT b.model_id, v.id, b.n_rows, b.columns, "
                "b.prediction_column, now() FROM baselines b JOIN model_versions v "
                "ON v.model_id = b.model_id AND v.version = 'v2' WHERE b.id = :b RETURNING id"
            ),
            {"b": old[0]},
        ).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO baseline_profiles (baseline_id, column_name, role, kind, profile) "
                "SELECT :n, column_name, role, kind, profile FROM baseline_profiles "
                "WHERE baseline_id = :b"
            ),
            {"n": new_id, "b": old[0]},
        )
    assert reference() == "v2"


def test_new_alert_and_silence_show_on_the_next_request(site: Site, engine: sa.Engine) -> None:
    model_url = f"{site.base}/api/v1/models/{site.data.model}"
    firing = httpx.get(model_url, headers=site.auth(), timeout=30).json()["alerts"]["firing"]
    httpx.get(f"{site.base}/models/{site.data.model}", headers=site.auth(), timeout=30)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO alerts (rule_id, model_id, fingerprint, state, column_name, labels, "
                "value, window_start, started_at) SELECT rule_id, model_id, 'cache-test', "
                "'firing', 'cache_test_column', labels, 0.5, window_start, now() FROM alerts "
                "WHERE id = :a"
            ),
            {"a": site.data.firing_alert_id},
        )
    detail = httpx.get(model_url, headers=site.auth(), timeout=30).json()
    assert detail["alerts"]["firing"] == firing + 1
    page = httpx.get(f"{site.base}/models/{site.data.model}", headers=site.auth(), timeout=30)
    assert "cache_test_column" in page.text

    alerts_page = httpx.get(f"{site.base}/alerts", headers=site.auth(), timeout=30)
    assert "cache-silence-comment" not in alerts_page.text
    r = httpx.post(
        f"{site.base}/api/v1/silences",
        headers=site.auth(),
        json={
            "matchers": [{"name": "column", "value": "cache_test_column"}],
            "duration_hours": 1,
            "comment": "cache-silence-comment",
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    alerts_page = httpx.get(f"{site.base}/alerts", headers=site.auth(), timeout=30)
    assert "cache-silence-comment" in alerts_page.text


def test_a_new_model_version_and_feature_show_on_the_next_request(
    site: Site, engine: sa.Engine
) -> None:
    url = f"{site.base}/api/v1/models/{site.data.model}"
    before = httpx.get(url, headers=site.auth(), timeout=30).json()
    assert httpx.get(url, headers=site.auth(), timeout=30).json()["versions"] == before["versions"]
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO model_versions (model_id, version) VALUES (:m, 'v-cache')"),
            {"m": site.data.model_id},
        )
        conn.execute(
            sa.text(
                "INSERT INTO features (model_id, name, kind, position) "
                "SELECT :m, 'cache_new_feature', 'numeric', max(position) + 1 FROM features "
                "WHERE model_id = :m"
            ),
            {"m": site.data.model_id},
        )
    after = httpx.get(url, headers=site.auth(), timeout=30).json()
    assert [v["version"] for v in after["versions"]][-1] == "v-cache"
    assert {"name": "cache_new_feature", "kind": "numeric"} in after["features"]


def test_concurrent_misses_compute_once_and_a_failure_is_retried() -> None:
    cache = ViewCache()
    calls: list[int] = []
    started = threading.Event()

    def slow() -> str:
        calls.append(1)
        started.set()
        time.sleep(0.2)
        return "view"

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(cache.get_or_compute, "k", slow)
        started.wait(5)
        others = [pool.submit(cache.get_or_compute, "k", slow) for _ in range(7)]
        assert {f.result() for f in [first, *others]} == {"view"}
    assert len(calls) == 1 and cache.waits == 7

    def failing() -> str:
        started.set()
        time.sleep(0.1)
        raise RuntimeError("database went away")

    started.clear()
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(cache.get_or_compute, "k2", failing)
        started.wait(5)
        good = pool.submit(cache.get_or_compute, "k2", lambda: "recomputed")
        with pytest.raises(RuntimeError):
            bad.result()
        assert good.result() == "recomputed"
    assert cache.get_or_compute("k2", failing) == "recomputed"
