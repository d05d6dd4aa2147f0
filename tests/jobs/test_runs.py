"""Runs: window creation on the DB clock, claims, leases, fencing, catch-up limit, late data."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from monitor.jobs import runs
from monitor.jobs.tick import make_context, run_until_idle
from monitor.settings import Settings
from tests.jobs.helpers import HOUR, WINDOW_STEPS, closed_hour, records, scalar, seed_hours, writer


def _create(engine: sa.Engine, days: int = 14) -> int:
    with engine.begin() as conn:
        return runs.create_due_windows(conn, catchup_max_age_days=days)


def test_every_closed_window_gets_one_run_and_none_is_open(
    db: sa.Engine, database_url: str
) -> None:
    first = closed_hour() - 5 * HOUR
    seed_hours(db, database_url, "m", first, 2, 10)
    assert _create(db) == 5
    assert _create(db) == 0  # idempotent
    with db.connect() as conn:
        starts = conn.execute(
            sa.text("SELECT window_start, window_end, status FROM runs ORDER BY 1")
        ).all()
    assert [s for s, _, _ in starts] == [first + i * HOUR for i in range(5)]
    assert all(e - s == HOUR and st == "pending" for s, e, st in starts)


def test_windows_older_than_the_catchup_limit_are_skipped_with_the_reason(
    db: sa.Engine, database_url: str
) -> None:
    first = closed_hour() - timedelta(days=3)
    seed_hours(db, database_url, "m", first, 1, 5)
    _create(db, days=1)
    with db.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY 1")).all())
        reason = conn.execute(
            sa.text("SELECT reason FROM runs WHERE status = 'skipped' LIMIT 1")
        ).scalar()
    # the last day; the DB clock may pass the next window's close (hh:05) after closed_hour()
    assert rows["pending"] in (23, 24, 25)
    assert rows["skipped"] + rows["pending"] in (72, 73)
    assert reason == "older than the catch-up limit (1 days)"


def test_claims_are_newest_first_and_never_shared(db: sa.Engine, database_url: str) -> None:
    seed_hours(db, database_url, "m", closed_hour() - 3 * HOUR, 1, 5)
    _create(db)
    claims = []
    with db.connect() as a, db.connect() as b:
        # a holds its claim's row lock (transaction open): b must skip it, not wait for it
        ca = runs.claim(a, owner="a", lease_seconds=30)
        cb = runs.claim(b, owner="b", lease_seconds=30)
        a.commit()
        b.commit()
        claims = [ca, cb]
    assert claims[0] is not None and claims[1] is not None
    assert claims[0].window_start == closed_hour() - HOUR  # newest first
    assert claims[1].window_start == closed_hour() - 2 * HOUR


def test_completion_after_a_takeover_is_rejected(db: sa.Engine, database_url: str) -> None:
    seed_hours(db, database_url, "m", closed_hour() - HOUR, 1, 5)
    _create(db)
    with db.begin() as conn:
        first = runs.claim(conn, owner="slow", lease_seconds=30)
    assert first is not None
    with db.begin() as conn:  # the slow worker's lease runs out
        conn.execute(sa.text("UPDATE runs SET lease_expires_at = now() - interval '1 s'"))
    with db.begin() as conn:
        second = runs.claim(conn, owner="fast", lease_seconds=30)
    assert second is not None and second.attempt == first.attempt + 1
    with pytest.raises(runs.LeaseLost), db.begin() as conn:
        runs.complete(conn, first, rows=1)
    with pytest.raises(runs.LeaseLost), db.begin() as conn:
        runs.renew(conn, first, lease_seconds=30)
    with db.begin() as conn:
        assert not runs.fail(conn, first, "late failure")
        runs.complete(conn, second, rows=5)
    assert scalar(db, "SELECT status FROM runs") == "succeeded"


def test_a_live_lease_is_not_taken_over(db: sa.Engine, database_url: str) -> None:
    seed_hours(db, database_url, "m", closed_hour() - HOUR, 1, 5)
    _create(db)
    with db.begin() as conn:
        assert runs.claim(conn, owner="a", lease_seconds=30) is not None
    with db.begin() as conn:
        assert runs.claim(conn, owner="b", lease_seconds=30) is None


def test_late_rows_mark_a_computed_window_stale_and_it_is_recomputed_once(
    db: sa.Engine, database_url: str, job_settings: Settings
) -> None:
    first = closed_hour() - 3 * HOUR
    seed_hours(db, database_url, "m", first, 3, 30)
    ctx = make_context(db, job_settings)
    assert run_until_idle(ctx, steps=WINDOW_STEPS) == 3
    late = first + HOUR
    with writer(database_url) as w:
        w.write_predictions("m", "v1", records(late, 7, seed=99, prefix="late"))
        w.write_predictions("m", "v1", records(late, 7, seed=99, prefix="late"))  # replay: dup
    with db.connect() as conn:
        states = dict(conn.execute(sa.text("SELECT window_start, status FROM runs")).all())
    assert states[late] == "stale"
    assert sorted(states.values()) == ["stale", "succeeded", "succeeded"]
    assert run_until_idle(ctx, steps=WINDOW_STEPS) == 1
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.window_start, r.status, r.attempt, r.rows, res.value FROM runs r JOIN"
                " results res ON res.model_id = r.model_id AND res.window_start = r.window_start"
                " AND res.metric = 'volume' AND res.segment = '' ORDER BY 1"
            )
        ).all()
    assert [(r[1], r[2]) for r in rows] == [("succeeded", 1), ("succeeded", 2), ("succeeded", 1)]
    assert rows[1][3] == 37 and rows[1][4] == 37.0
    assert run_until_idle(ctx, steps=WINDOW_STEPS) == 0


def test_rows_landing_while_a_window_computes_reject_its_completion(
    db: sa.Engine, database_url: str
) -> None:
    first = closed_hour() - HOUR
    seed_hours(db, database_url, "m", first, 1, 5)
    _create(db)
    with db.begin() as conn:
        c = runs.claim(conn, owner="a", lease_seconds=30)
    assert c is not None
    with writer(database_url) as w:
        w.write_predictions("m", "v1", records(first, 3, seed=5, prefix="during"))
    with pytest.raises(runs.LeaseLost), db.begin() as conn:
        runs.complete(conn, c, rows=5)
    assert scalar(db, "SELECT status FROM runs") == "stale"
