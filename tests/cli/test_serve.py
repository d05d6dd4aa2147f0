"""`monitor serve` with several worker processes: per-server budgets are split between them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.http import free_port

ROOT = Path(__file__).resolve().parents[2]


def _retry_after_once_throttled(base: str) -> int:
    """Send wrong tokens until one is refused with 429; its Retry-After (seconds)."""
    for _ in range(50):  # burst 1 per process, 2 processes: the third try at the latest
        answer = httpx.get(
            f"{base}/api/v1/models", headers={"Authorization": "Bearer mon_wrong"}, timeout=10
        )
        if answer.status_code == 429:
            return int(answer.headers["Retry-After"])
        assert answer.status_code == 401, answer.text
    raise AssertionError("wrong tokens were never throttled")


@pytest.mark.parametrize("workers", [1, 2])
def test_each_worker_refills_its_share_of_the_wrong_token_rate(
    workers: int, database_url: str, tmp_path: Path
) -> None:
    """The wrong-credential rate is a server's, not each process's: with 2 processes each
    refills at half the setting, so the wait it announces doubles (0.01/s -> 100 s, 200 s).
    The refill is slow enough that the time between requests cannot blur the two."""
    port = free_port()
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": database_url,
        "MONITOR_AUTH_FAILURE_BURST": "1",
        "MONITOR_AUTH_FAILURE_PER_SECOND": "0.01",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("MONITOR_WEB_WORKERS", None)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "serve",
                "--port",
                str(port),
                "--workers",
                f"{workers}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server never answered"
            time.sleep(0.2)
        wait = _retry_after_once_throttled(base)
        assert 90 <= wait / workers <= 101, wait
    finally:
        proc.terminate()
        proc.wait(20)
