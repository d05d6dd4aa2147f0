"""Real `monitor worker` / `monitor backfill` processes against real Postgres.

Pass criteria from the issue: every window computed exactly once by any number of workers; a
worker killed mid-window loses it to another after its lease; downtime is caught up newest
first; a late batch makes its window stale and it is recomputed once; concurrent backfills
never duplicate anything.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.jobs import runs
from monitor.jobs.baselines import register_baseline
from tests.jobs.helpers import (
    HOUR,
    baseline_frame,
    closed_hour,
    records,
    runs_by_status,
    scalar,
    seed_hours,
    start_monitor,
    stop,
    wait_for,
    worker_env,
    writer,
)

WINDOW_LINE = re.compile(r"window (\d+)/(\S+ \S+): (\d+) rows")


def _setup(engine: sa.Engine, url: str, models: list[str], hours: int, rows: int) -> None:
    first = closed_hour() - hours * HOUR
    for name in models:
        register_baseline(
            baseline_frame(2_000), model=name, version="v1", proba="score", engine=engine
        )
        seed_hours(engine, url, name, first, hours, rows)


def _one_result_set_per_window(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        per_window = conn.execute(
            sa.text(
                "SELECT r.model_id, r.window_start, count(res.id) FILTER (WHERE res.metric ="
                " 'volume' AND res.segment = '') AS volume_rows, count(res.id) AS n_results"
                " FROM runs r LEFT JOIN results res ON res.model_id = r.model_id"
                " AND res.window_start = r.window_start AND res.family NOT IN"
                " ('performance', 'estimated_performance') AND (res.family <> 'operational'"
                " OR res.metric IN ('volume', 'latency_p50', 'latency_p95', 'latency_p99'))"
                " WHERE r.job = 'window' GROUP BY 1, 2"
            )
        ).all()
    assert per_window and all(row.volume_rows == 1 for row in per_window)
    assert len({row.n_results for row in per_window}) == 1  # every window: the same result set


def _computed_lines(logs: list[Path]) -> list[tuple[str, str]]:
    found = []
    for log in logs:
        found += [(m.group(1), m.group(2)) for m in WINDOW_LINE.finditer(log.read_text())]
    return found


def test_three_workers_compute_48_windows_of_two_models_exactly_once(
    db: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _setup(db, database_url, ["a", "b"], 24, 150)
    env = worker_env(database_url, tick_seconds=1, lease_seconds=30, min_segment_rows=20)
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    workers = [start_monitor("worker", env=env, log=log) for log in logs]
    try:
        wait_for(lambda: runs_by_status(db).get("succeeded", 0) == 48, 240, "48 windows")
        time.sleep(2)  # a few more ticks: nothing may be computed again
    finally:
        for w in workers:
            stop(w)
    assert runs_by_status(db) == {"succeeded": 48}
    assert scalar(db, "SELECT max(attempt) FROM runs") == 1  # no window was claimed twice
    computed = _computed_lines(logs)
    assert len(computed) == 48 and len(set(computed)) == 48, computed
    _one_result_set_per_window(db)
    assert scalar(db, "SELECT count(DISTINCT (model_id, window_start)) FROM window_profiles") == 48


def test_a_worker_killed_mid_window_loses_it_to_another_after_its_lease(
    db: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _setup(db, database_url, ["a"], 2, 100)
    with db.begin() as conn:
        runs.create_due_windows(conn, catchup_max_age_days=14)
    env = worker_env(database_url, tick_seconds=1, lease_seconds=3, min_segment_rows=20)
    blocker = db.connect()
    # Hold the worker inside its first window: it claims the run and reads the rows, then
    # waits on the baseline profiles this lock keeps from it.
    blocker.execute(sa.text("LOCK TABLE baseline_profiles IN ACCESS EXCLUSIVE MODE"))
    victim = start_monitor("worker", env=env, log=tmp_path / "victim.log")
    try:
        wait_for(lambda: runs_by_status(db).get("running") == 1, 60, "the victim's claim")
        time.sleep(0.5)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
        stop(victim)
    with db.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT window_start, attempt, lease_owner FROM runs WHERE status = 'running'"
                " AND job = 'window'"
            )
        ).one()
    assert killed.attempt == 1 and killed.lease_owner
    rescuer = start_monitor("worker", env=env, log=tmp_path / "rescuer.log")
    try:
        wait_for(lambda: runs_by_status(db) == {"succeeded": 2}, 120, "the rescue")
    finally:
        stop(rescuer)
    with db.connect() as conn:
        attempts = dict(
            conn.execute(
                sa.text("SELECT window_start, attempt FROM runs WHERE job = 'window'")
            ).all()
        )
    assert attempts[killed.window_start] == 2
    assert sorted(attempts.values()) == [1, 2]
    _one_result_set_per_window(db)


def _until_idle(env: dict[str, str], log: Path) -> str:
    proc = start_monitor("worker", "--until-idle", env=env, log=log)
    assert proc.wait(timeout=240) == 0, log.read_text()
    return log.read_text()


def test_downtime_is_caught_up_newest_first_and_a_late_batch_recomputes_its_window(
    db: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _setup(db, database_url, ["a"], 12, 60)
    env = worker_env(database_url, min_segment_rows=20)
    assert "12 windows processed" in _until_idle(env, tmp_path / "first.log")
    # The worker was down for the last 6 hours: none of their windows were created.
    newest = closed_hour() - 6 * HOUR
    with db.begin() as conn:
        for table in ("runs", "results", "window_profiles"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE window_start >= :t"), {"t": newest})
    out = _until_idle(env, tmp_path / "catchup.log")
    assert "6 windows processed" in out
    assert runs_by_status(db) == {"succeeded": 12}
    with db.connect() as conn:
        order = (
            conn.execute(
                sa.text(
                    "SELECT window_start FROM runs WHERE window_start >= :t AND job = 'window'"
                    " ORDER BY started_at"
                ),
                {"t": newest},
            )
            .scalars()
            .all()
        )
    assert order == sorted(order, reverse=True) and len(order) == 6  # newest first
    _one_result_set_per_window(db)

    # An SDK spool replays a batch into a window computed hours ago.
    late = closed_hour() - 9 * HOUR
    with writer(database_url) as w:
        w.write_predictions("a", "v1", records(late, 25, seed=77, prefix="replayed"))
    assert runs_by_status(db) == {"succeeded": 11, "stale": 1}
    assert "1 windows processed" in _until_idle(env, tmp_path / "late.log")
    with db.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT r.window_start, r.attempt, res.value FROM runs r JOIN results res USING"
                " (model_id, window_start) WHERE res.metric = 'volume' AND res.segment = ''"
                " AND r.job = 'window'"
                " ORDER BY 1"
            )
        ).all()
    recomputed = [(r.window_start, r.attempt, r.value) for r in rows if r.attempt > 1]
    assert recomputed == [(late, 2, 85.0)]
    assert "0 windows processed" in _until_idle(env, tmp_path / "idle.log")
    status = start_monitor("worker", "--status", env=env, log=tmp_path / "status.log")
    assert status.wait(timeout=120) == 0, (tmp_path / "status.log").read_text()


def test_until_idle_exits_1_when_windows_fail_and_status_keeps_saying_so(
    db: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """A cron job running `monitor worker --until-idle` must see failures in its exit code,
    not only in a log nobody reads."""
    _setup(db, database_url, ["a"], 2, 60)
    with db.begin() as conn:  # a baseline damaged behind the service's back
        conn.execute(
            sa.text("UPDATE baseline_profiles SET profile = '\"damaged\"' WHERE role <> 'rows'")
        )
    env = worker_env(database_url, min_segment_rows=20)
    log = tmp_path / "failing.log"
    proc = start_monitor("worker", "--until-idle", env=env, log=log)
    assert proc.wait(timeout=240) == 1, log.read_text()
    out = log.read_text()
    assert out.count("failed: window a ") == 2, out
    assert runs_by_status(db) == {"failed": 2}
    status_log = tmp_path / "status.log"
    status = start_monitor("worker", "--status", env=env, log=status_log)
    assert status.wait(timeout=120) == 1, status_log.read_text()
    assert "failed 2" in status_log.read_text()

    start = closed_hour() - 2 * HOUR
    args = [
        "backfill",
        "a",
        "--from",
        f"{start:%Y-%m-%dT%H:%M}",
        "--to",
        f"{closed_hour():%Y-%m-%dT%H:%M}",
    ]
    rerun = subprocess.run(
        [*proc.args[:3], *args, "--rerun"], env=env, capture_output=True, text=True, timeout=240
    )
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr
    assert "2 windows computed here, 0 still open" in rerun.stdout
    assert rerun.stderr.count("failed: a ") == 2 and "2 windows failed" in rerun.stderr


def test_concurrent_backfills_duplicate_nothing_and_repeat_idempotently(
    db: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    _setup(db, database_url, ["a"], 12, 60)
    start = closed_hour() - 12 * HOUR
    end = start + timedelta(hours=12)
    args = ["backfill", "a", "--from", f"{start:%Y-%m-%dT%H:%M}", "--to", f"{end:%Y-%m-%dT%H:%M}"]
    env = worker_env(database_url, min_segment_rows=20)
    procs = [
        start_monitor(*args, "--rerun", env=env, log=tmp_path / f"bf{i}.log") for i in range(2)
    ]
    for i, p in enumerate(procs):
        assert p.wait(timeout=240) == 0, (tmp_path / f"bf{i}.log").read_text()
    assert runs_by_status(db) == {"succeeded": 12}
    _one_result_set_per_window(db)
    assert (
        scalar(db, "SELECT count(*) FROM results WHERE metric = 'volume' AND segment = '' ") == 12
    )
    again = subprocess.run(
        [*procs[0].args[:3], *args], env=env, capture_output=True, text=True, timeout=240
    )
    assert again.returncode == 0, again.stderr
    assert "0 windows computed here, 0 still open" in again.stdout
    assert scalar(db, "SELECT max(attempt) FROM runs") <= 2
