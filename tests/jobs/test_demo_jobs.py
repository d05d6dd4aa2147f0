"""The demo's worker fills the dashboard's data from logged traffic (small demo data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.demo import jobs as demo_jobs
from monitor.demo import seed as demo_seed
from monitor.demo.data import DRIFT_START_DAY, generate


def test_demo_baseline_and_worker_fill_results(
    db: sa.Engine, settings_env: None, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("MONITOR_CATCHUP_MAX_AGE_DAYS", "7")
    monkeypatch.setenv("MONITOR_MULTIVARIATE_METHODS", "[]")  # keep this test quick
    from monitor.settings import get_settings

    get_settings.cache_clear()
    now = datetime.now(UTC)
    data = generate(now=now, baseline_rows=5_000, rows_per_hour=40)
    demo_seed.seed(db, data, tmp_path)
    assert not demo_jobs.has_baseline(db)
    demo_jobs.register_demo_baseline(db, tmp_path)  # from the Parquet file the seed saved
    assert demo_jobs.has_baseline(db)
    computed = demo_jobs.compute_due_windows(db)
    assert 7 * 24 - 2 <= computed <= 7 * 24 + 1
    with db.connect() as conn:
        status = dict(
            conn.execute(
                sa.text("SELECT status, count(*) FROM runs WHERE job = 'window' GROUP BY 1")
            ).all()
        )
        assert status["succeeded"] == computed and status["skipped"] >= 6 * 24
        daily = conn.execute(
            sa.text(
                "SELECT date_trunc('day', window_start) AS d, avg(value) FROM results"
                " WHERE family = 'dataset_drift' AND metric = 'share_drifted' AND segment = ''"
                " GROUP BY 1 ORDER BY 1"
            )
        ).all()
        fallback = conn.execute(
            sa.text(
                "SELECT bool_or((details->>'baseline_fallback')::boolean) FROM results"
                " WHERE family = 'drift'"
            )
        ).scalar()
    start = now - timedelta(days=14)
    drift_days = [
        share for day, share in daily if DRIFT_START_DAY + 2 <= (day - start).days + 1 < 10
    ]
    calm_days = [share for day, share in daily if (day - start).days >= 12]
    assert drift_days and calm_days
    assert min(drift_days) > max(calm_days)  # the drift days stand out
    assert fallback  # version 2026.11.2 has no baseline of its own: results say so
    with db.connect() as conn:  # performance: estimated everywhere, realised once labels landed
        perf = conn.execute(
            sa.text(
                "SELECT family, window_start > now() - interval '1 day' AS last_day,"
                " count(*) FILTER (WHERE status = 'ok') AS ok, count(*) AS n FROM results"
                " WHERE metric = 'accuracy' AND segment = '' GROUP BY 1, 2"
            )
        ).all()
    by = {(r.family, r.last_day): (r.ok, r.n) for r in perf}
    # every window of the last day has an estimate row (small night windows: too few rows)
    assert by[("estimated_performance", True)][1] == by[("performance", True)][1] > 0
    assert by[("estimated_performance", True)][0] > 0
    assert by[("performance", False)][0] > 0  # small windows: most have < 30 labels
    assert by[("performance", True)][0] == 0  # no labels yet for the last day
    scheduler = demo_jobs.start_background_worker(db)
    try:
        assert scheduler.running and scheduler.get_job("tick") is not None
    finally:
        scheduler.shutdown(wait=False)
