"""The runs page and API: is the monitor itself keeping up (lag, backlog, failures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from monitor.web.reads import runs
from tests.web.conftest import Site, login


@pytest.fixture()
def troubled(site: Site, engine: sa.Engine) -> Iterator[datetime]:
    """A failed window with its error, two waiting ones, and a finished run that took 42 s."""
    end = site.data.end
    rows = [
        (end - timedelta(hours=1), "failed", 3, "psycopg.errors.DiskFull: could not extend file"),
        (end - timedelta(hours=2), "pending", 0, None),
        (end - timedelta(hours=3), "stale", 1, None),
    ]
    with engine.begin() as conn:
        for ws, status, attempt, error in rows:
            conn.execute(
                sa.text(
                    "UPDATE runs SET status = :st, attempt = :a, error = :e, "
                    "finished_at = CASE WHEN :st = 'failed' THEN now() END "
                    "WHERE model_id = :m AND job = 'window' AND window_start = :w"
                ),
                {"st": status, "a": attempt, "e": error, "m": site.data.model_id, "w": ws},
            )
        conn.execute(
            sa.text(
                "UPDATE runs SET started_at = window_end, finished_at = window_end "
                "+ interval '42 seconds' WHERE model_id = :m AND job = 'window' "
                "AND window_start = :w"
            ),
            {"m": site.data.model_id, "w": end - timedelta(hours=5)},
        )
    yield end
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE runs SET status = 'succeeded', attempt = 1, error = NULL, "
                "started_at = window_end, finished_at = window_end WHERE model_id = :m"
            ),
            {"m": site.data.model_id},
        )


def test_runs_overview_lag_backlog_durations(site: Site, engine: sa.Engine, troubled) -> None:
    now = troubled + timedelta(hours=5, minutes=10)  # five windows closed since, none created
    with engine.connect() as conn:
        (row,) = [r for r in runs.runs_overview(conn, now) if r["job"] == "window"]
        failures = runs.failed_runs(conn)
    assert row["model"] == site.data.model and row["state"] == "failing"
    assert row["failed"] == 1 and row["pending"] == 1 and row["stale"] == 1
    # the newest success is the window that ended 3 h before the fixture's end
    assert row["newest_window_end"] == (troubled - timedelta(hours=3)).isoformat()
    assert row["lag_seconds"] == pytest.approx((8 * 60 + 10) * 60)
    # 5 h 10 min after the newest run ended: five more windows closed and passed their 5 min
    assert row["not_created"] == 5
    assert row["backlog"] == 2 + 5
    assert row["oldest_waiting"] == (troubled - timedelta(hours=3)).isoformat()
    assert row["duration_max"] == pytest.approx(42.0)
    assert failures[0]["error"].startswith("psycopg.errors.DiskFull")
    assert failures[0]["attempt"] == 3


def test_runs_page_and_api(site: Site, troubled) -> None:
    with httpx.Client(base_url=site.base, timeout=30) as c:
        assert login(c, site.reader).status_code == 303
        html = c.get("/runs").text
        assert "1 of 1 job needs attention." in html  # the fixture's model has window runs only
        assert '<span class="badge alert">failing</span>' in html
        assert "psycopg.errors.DiskFull: could not extend file" in html
        assert "42 s" in html
        assert c.get("/runs", params={"model": "nope"}).status_code == 200
        api = c.get("/api/v1/runs/health", headers=site.auth(site.reader)).json()
    window = next(j for j in api["jobs"] if j["job"] == "window")
    assert window["failed"] == 1 and api["failures"][0]["job"] == "window"


def test_healthy_runs_say_so(site: Site, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        rows = runs.runs_overview(conn, site.data.end + timedelta(minutes=20))
    assert [r["state"] for r in rows] == ["ok"]
    assert rows[0]["backlog"] == 0 and rows[0]["lag_seconds"] == pytest.approx(20 * 60)
    assert datetime.now(UTC) > site.data.end  # (the fixture's windows are in the past)
