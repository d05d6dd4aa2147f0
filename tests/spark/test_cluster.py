"""A real Spark standalone cluster (a master and two workers on 127.0.0.1, from pyspark's own
launcher): ``monitor spark profile --master spark://...`` stores the windows, then everything
is stopped."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.jobs.baselines import register_baseline
from monitor.storage.engine import libpq_url
from tests.spark.cluster import cluster_env, standalone_cluster
from tests.spark.data import baseline, closed_hours_start, predictions, table

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_profile_on_a_standalone_cluster(db: sa.Engine, database_url: str, tmp_path: Path) -> None:
    start = closed_hours_start(2)
    register_baseline(
        baseline(), model="m", version="v1", prediction="prediction", proba="proba",
        target="target", engine=db,
    )  # fmt: skip
    scored = predictions(start, 2, 5_000, seed=61)
    (tmp_path / "scored").mkdir()
    for i in range(4):  # several files: several tasks across the two workers
        scored.iloc[i::4].to_parquet(tmp_path / "scored" / f"{i}.parquet", coerce_timestamps="us")
    with standalone_cluster(tmp_path / "cluster", workers=2) as cluster:
        assert cluster.alive_workers() == 2
        env = cluster_env(tmp_path / "cluster")
        env.update(MONITOR_DATABASE_URL=libpq_url(database_url), PYTHONPATH=str(ROOT))
        done = subprocess.run(
            [
                sys.executable, "-m", "monitor", "spark", "profile", "m", "--version", "v1",
                "--source", str(tmp_path / "scored"), "--proba", "proba", "--id", "id",
                "--segment", "region", "--master", cluster.master_url,
                "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
                "--conf", "spark.driver.bindAddress=127.0.0.1",
                "--conf", "spark.executor.memory=512m", "--conf", "spark.executor.cores=1",
                "--conf", "spark.sql.shuffle.partitions=4",
            ],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"on {cluster.master_url}" in done.stdout
        assert "2 windows, 10,000 rows" in done.stdout
        with urllib.request.urlopen(cluster.status_url, timeout=5) as reply:
            status: dict[str, Any] = json.load(reply)
        apps = status["completedapps"] + status["activeapps"]
        assert [a["name"] for a in apps] == ["monitor spark profile m"]
    assert all(p.poll() is not None for p in cluster.procs)  # master and workers are gone
    runs = table(db, "SELECT job, source, status, rows FROM runs ORDER BY job, window_start")
    assert runs == [
        {"job": job, "source": "spark", "status": "succeeded", "rows": 5_000}
        for job in ("performance", "performance", "window", "window")
    ]
    volume = table(
        db,
        "SELECT value FROM results WHERE family = 'operational' AND metric = 'volume'"
        " AND segment = '' ORDER BY window_start",
    )
    assert [r["value"] for r in volume] == [5_000.0, 5_000.0]
