"""Cached views follow writes: on the very next request when staleness is off, within the
stale bound otherwise; alerts are never cached.

Each web process caches views computed from results, keyed by the model's results version
(``monitor.web.cache``). These tests write the way the jobs do (results replaced and the run
completed in one transaction), through a live server. With ``web_max_stale_seconds`` 0 (the
``site`` of this module) the next answer shows the write: for a recomputed window (the time
range does not move, so only the version can invalidate), for two completions committing in the
opposite order of their start, for a new baseline, and for a new alert and silence. With a
stale bound, the first answer after a write is the previous version, the refreshed one follows
within the bound, a failing refresh keeps the stale value until the bound, and one refresh runs
per view at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from monitor.web.cache import ViewCache
from monitor.web.deps import autocommit
from tests.http import serve_app
from tests.pg import truncate_all
from tests.web.conftest import Site
from tests.web.fixtures import seed_results

MAX_STALE = 4.0
POLL_SECONDS = 10.0


@dataclass
class Served:
    site: Site
    cache: ViewCache


@pytest.fixture(scope="module")
def servers(engine: sa.Engine) -> Iterator[dict[str, Served]]:
    """Three servers on one seeded database: strict (max_stale 0), stale-while-revalidate, and
    stale-while-revalidate whose refreshes cannot connect (a port nothing listens on)."""
    truncate_all(engine)
    data = seed_results(engine)
    with session_scope(engine) as s:
        admin, _ = create_token(s, "admin-user", "admin")
        reader, _ = create_token(s, "reader", "read")
    apps = {"strict": create_app(engine, max_stale_seconds=0)}
    apps["swr"] = create_app(engine, max_stale_seconds=MAX_STALE)
    apps["broken"] = create_app(engine, max_stale_seconds=MAX_STALE)
    unreachable = sa.create_engine(
        engine.url.set(host="127.0.0.1", port=1), connect_args={"connect_timeout": 2}
    )
    apps["broken"].state.view_cache = ViewCache(engine=autocommit(unreachable), max_stale=MAX_STALE)
    with (
        serve_app(apps["strict"]) as strict,
        serve_app(apps["swr"]) as swr,
        serve_app(apps["broken"]) as broken,
    ):
        bases = {"strict": strict, "swr": swr, "broken": broken}
        yield {
            name: Served(Site(bases[name], data, admin, reader), app.state.view_cache)
            for name, app in apps.items()
        }
    unreachable.dispose()
    truncate_all(engine)


@pytest.fixture(scope="module")
def site(servers: dict[str, Served]) -> Site:
    """This module's site serves strictly: every write shows on the next request."""
    return servers["strict"].site


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
    """What a window job's completing transaction does: replace the results, complete the run.

    ``value`` becomes the effect size's lower bound too, which the heatmap's score divides by
    the tolerance (0.1 for numeric features)."""
    conn.execute(
        sa.text(
            "UPDATE results SET value = :v, ci_low = :v, effect_size = :v + 0.05, "
            "computed_at = now() WHERE model_id = :m "
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
        _recompute(conn, site.data.model_id, feature, ws, 0.9)  # tolerance 0.1: score 9
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


def _poll(check: Callable[[], bool], seconds: float = POLL_SECONDS) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_after_a_write_the_previous_view_is_answered_then_the_new_one(
    servers: dict[str, Served], engine: sa.Engine
) -> None:
    served = servers["swr"]
    site, cache = served.site, served.cache
    feature, query = _numeric_feature(site), _window_range(site)
    ws = site.data.end - timedelta(hours=8)
    before = _score(_dashboard(site, query), feature, ws)
    assert before is not None and before < 1
    with engine.begin() as conn:
        _recompute(conn, site.data.model_id, feature, ws, 0.6)  # tolerance 0.1: score 6
    stale, refreshes = cache.stats()["stale"], cache.stats()["refreshes"]
    url = f"{site.base}/api/v1/models/{site.data.model}/dashboard{query}"
    assert httpx.get(url, timeout=30).status_code == 401  # authentication before any cache
    # the first answer after the write is the cached one, its refresh runs in the background
    assert _score(_dashboard(site, query), feature, ws) == before
    assert cache.stats()["stale"] > stale and cache.stats()["refreshes"] > refreshes
    assert _poll(lambda: _score(_dashboard(site, query), feature, ws) == 6.0)
    page = httpx.get(
        f"{site.base}/models/{site.data.model}{query}", headers=site.auth(), timeout=30
    )
    assert page.status_code == 200
    assert cache.stats()["refresh_errors"] == 0


def test_a_refreshed_relative_range_ends_at_the_newest_window(
    servers: dict[str, Served], engine: sa.Engine
) -> None:
    """A "14d" view refreshed in the background re-derives its range: a new window moves it."""
    site = servers["swr"].site
    end = datetime.fromisoformat(_dashboard(site, "?range=14d")["range"]["end"])
    assert end == site.data.end
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO results (model_id, window_start, window_end, segment, family, "
                "column_name, metric, value, p_value, threshold, effect_size, ci_low, ci_high, "
                "drifted, status, n_reference, n_current, details, computed_at) "
                "SELECT model_id, window_end, window_end + (window_end - window_start), "
                "segment, family, column_name, metric, value, p_value, threshold, effect_size, "
                "ci_low, ci_high, drifted, status, n_reference, n_current, details, now() "
                "FROM results WHERE model_id = :m AND window_end = :e AND family = 'drift'"
            ),
            {"m": site.data.model_id, "e": end},
        )
    newer = (end + timedelta(hours=1)).isoformat()
    assert _poll(lambda: _dashboard(site, "?range=14d")["range"]["end"] == newer)
    view = _dashboard(site, "?range=14d")
    assert view["heatmap"]["times"][-1] == end.isoformat()
    assert view["range"]["start"] == (end + timedelta(hours=1) - timedelta(days=14)).isoformat()


def test_a_failing_refresh_keeps_the_stale_view_until_the_bound(
    servers: dict[str, Served], engine: sa.Engine
) -> None:
    served = servers["broken"]
    site, cache = served.site, served.cache
    feature, query = _numeric_feature(site), _window_range(site)
    ws = site.data.end - timedelta(hours=9)
    before = _score(_dashboard(site, query), feature, ws)
    assert before is not None and before < 1
    with engine.begin() as conn:
        _recompute(conn, site.data.model_id, feature, ws, 0.5)
    written = time.monotonic()
    assert _score(_dashboard(site, query), feature, ws) == before
    assert _poll(lambda: cache.stats()["refresh_errors"] >= 1)
    refreshes = cache.stats()["refreshes"]
    if time.monotonic() - written < MAX_STALE - 0.5:
        # still within the bound: the stale view again, and no new refresh after the failure
        assert _score(_dashboard(site, query), feature, ws) == before
        assert cache.stats()["refreshes"] == refreshes
    time.sleep(max(0.0, written + MAX_STALE + 0.2 - time.monotonic()))
    # past the bound: computed on the request's own connection
    assert _score(_dashboard(site, query), feature, ws) == 5.0


def test_one_refresh_per_view_at_a_time(engine: sa.Engine) -> None:
    """Many requests find a view stale at once: all are answered the cached value, and one
    refresh (on its own connection, the request's one unused) computes the new version."""
    cache = ViewCache(engine=autocommit(engine), max_stale=MAX_STALE)
    lock = threading.Lock()
    running: list[int] = []
    most = [0]
    calls = [0]

    def compute(version: int) -> Callable[[sa.Connection], tuple[int, str]]:
        def run(c: sa.Connection) -> tuple[int, str]:
            with lock:
                calls[0] += 1
                running.append(1)
                most[0] = max(most[0], len(running))
            try:
                c.execute(sa.text("SELECT pg_sleep(0.3)"))
                return version, f"value {version}"
            finally:
                with lock:
                    running.pop()

        return run

    with engine.connect() as conn:
        assert cache.view("fam", 1, conn, compute(1)) == (("fam", 1), "value 1")
        calls[0] = 0
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: cache.view("fam", 2, conn, compute(2)), range(32)))
    assert {a[1] for a in answers} == {"value 1"}
    assert cache.stats()["refreshes"] == 1
    with engine.connect() as conn:
        assert _poll(lambda: cache.view("fam", 2, conn, compute(2))[1] == "value 2")
    assert calls[0] == 1 and most[0] == 1
