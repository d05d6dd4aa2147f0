"""The demo's worker fills the dashboard's data from logged traffic (small demo data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.demo import jobs as demo_jobs
from monitor.demo import seed as demo_seed
from monitor.demo.data import CURRENT_HOURS, DAYS, VERSION_2_DAY, generate


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
        shares = conn.execute(
            sa.text(
                "SELECT window_start, value FROM results"
                " WHERE family = 'dataset_drift' AND metric = 'share_drifted' AND segment = ''"
                " AND value IS NOT NULL ORDER BY 1"
            )
        ).all()
        fallback = conn.execute(
            sa.text(
                "SELECT bool_or((details->>'baseline_fallback')::boolean) FROM results"
                " WHERE family = 'drift'"
            )
        ).scalar()
    start = now - timedelta(days=DAYS)
    # the open incident (the last CURRENT_HOURS, ramping in over 12 h) against the calm days
    # between the retrained version's release and its start
    incident_from = now - timedelta(hours=CURRENT_HOURS - 12)
    calm_from, calm_to = start + timedelta(days=VERSION_2_DAY + 1), now - timedelta(days=2)
    incident = [share for ws, share in shares if ws >= incident_from]
    calm = [share for ws, share in shares if calm_from <= ws < calm_to]
    assert len(incident) >= 8 and len(calm) >= 24  # small night windows have no share
    # the open incident stands out against the calm days (small demo data: 40 rows an hour)
    assert sum(incident) / len(incident) > 3 * sum(calm) / len(calm) + 0.05
    with db.connect() as conn:  # and it hurts: the label-free estimate of accuracy falls
        accuracy = conn.execute(
            sa.text(
                "SELECT window_start, value FROM results WHERE family = 'estimated_performance'"
                " AND metric = 'accuracy' AND segment = '' AND status = 'ok' ORDER BY 1"
            )
        ).all()
    during = [a for ws, a in accuracy if ws >= incident_from]
    before = [a for ws, a in accuracy if calm_from <= ws < calm_to]
    assert during and before
    assert sum(during) / len(during) < sum(before) / len(before) - 0.05
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
