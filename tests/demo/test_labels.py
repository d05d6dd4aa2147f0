"""The demo's late labels land while it runs, through the SDK's write path, exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from monitor.demo import labels as demo_labels
from monitor.demo import seed as demo_seed
from monitor.demo.data import generate


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM actuals")).scalar_one())


def test_pending_labels_land_on_the_accelerated_clock(
    clean_db: sa.Engine, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    small = {"now": now, "baseline_rows": 500, "rows_per_hour": 8}
    data = generate(**small)  # type: ignore[arg-type]
    real_generate = demo_labels.generate
    monkeypatch.setattr(
        demo_labels,
        "generate",
        lambda now: real_generate(now=now, baseline_rows=500, rows_per_hour=8),
    )
    demo_seed.seed(clean_db, data, tmp_path)
    landed_at_seed = _count(clean_db)
    assert landed_at_seed == len(data.actuals)
    pending = demo_labels.pending_labels(clean_db)
    assert len(pending) == len(data.pending_actuals) > 0
    assert set(pending["id"]) == set(data.pending_actuals["id"])

    frozen = demo_labels.LabelFeeder(clean_db, pending, speed=0.0, start=now)
    assert frozen.land() == 0 and not frozen.done  # none is due before its arrival time
    feeder = demo_labels.LabelFeeder(clean_db, pending, speed=3600 * 24 * 3, start=now)
    stop = threading.Event()
    thread = threading.Thread(target=feeder.run, args=(stop, 0.2))
    thread.start()
    thread.join(timeout=30)
    stop.set()
    assert feeder.done
    assert _count(clean_db) == landed_at_seed + len(pending)
    assert demo_labels.pending_labels(clean_db).empty  # nothing lands twice after a restart
    with clean_db.connect() as conn:
        created = dict(
            conn.execute(sa.text("SELECT version, created_at FROM model_versions")).all()
        )
    first = data.traffic.groupby("version")["timestamp"].min()
    for version, ts in first.items():
        assert abs(created[version] - ts.to_pydatetime()) < timedelta(seconds=1)
