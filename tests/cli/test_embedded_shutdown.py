"""SIGTERM to `monitor demo` or `monitor serve` stops their embedded PostgreSQL too.

pgserver stops the server from an exit hook, which a signal's default action skips, and it
counts the processes using the data directory: one killed process used to keep Postgres alive
for every later run. Real processes, real signals; bounded waits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.http import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_DATABASE_URL"}
    return {**env, "MONITOR_HOME": str(home), "PYTHONPATH": str(ROOT)}


def _postgres_pid(home: Path, proc: subprocess.Popen[bytes], log: Path) -> int:
    pidfile = home / "pgdata" / "postmaster.pid"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        lines = pidfile.read_text().splitlines() if pidfile.exists() else []
        if lines and int(lines[0]) > 0:
            return int(lines[0])
        time.sleep(0.2)
    raise AssertionError("the embedded Postgres did not start")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for(text: str, log: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        if text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared: {log.read_text()[-2000:]}")


SERVE = ["serve", "--workers", "2", "--port", "{port}"]


def _start(command: list[str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    port = str(free_port())
    args = [sys.executable, "-m", "monitor", *(a.replace("{port}", port) for a in command)]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=_env(home), stdout=out, stderr=subprocess.STDOUT)
    proc.port = int(port)  # type: ignore[attr-defined]
    return proc


def _serving(proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the server answers (its workers are up), as an operator's stop would find it."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            url = f"http://127.0.0.1:{proc.port}/healthz"  # type: ignore[attr-defined]
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server never answered")


@pytest.mark.parametrize(
    ("command", "ready", "after_a_kill"),
    [
        (["demo", "--port", "{port}"], "seeding", False),
        (SERVE, "monitor serving on", True),
    ],
    ids=["demo", "serve-after-a-killed-serve"],
)
def test_sigterm_stops_the_embedded_postgres(
    command: list[str], ready: str, after_a_kill: bool, tmp_path: Path
) -> None:
    # as root, pgserver runs Postgres as its own user, which cannot enter pytest's 0700 tmp dirs
    home = Path(tempfile.mkdtemp(prefix="monitor-shutdown-"))
    home.chmod(0o755)
    log = tmp_path / "out.log"
    if after_a_kill:
        # a process killed outright stays listed as a user of the server, which keeps running
        # (one process: workers of a SIGKILLed supervisor would live on as orphans)
        killed = _start(["serve", "--workers", "1", "--port", "{port}"], home, tmp_path / "k.log")
        _serving(killed, tmp_path / "k.log")
        killed.kill()
        killed.wait(10)
        handles = json.loads((home / "pgdata" / ".handle_pids.json").read_text())
        assert killed.pid in handles
    proc = _start(command, home, log)
    try:
        _wait_for(ready, log, proc, 90)  # after initdb (whose bootstrap backend writes -pid)
        if command[0] == "serve":
            _serving(proc, log)
        pid = _postgres_pid(home, proc, log)
        assert not _gone(pid)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(pid), f"postgres {pid} still runs 10 s after SIGTERM"
        assert proc.wait(20) != 0 or command[0] == "serve"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if (home / "pgdata" / "postmaster.pid").exists():  # never leave a server behind
            subprocess.run(
                ["pkill", "-TERM", "-F", str(home / "pgdata" / "postmaster.pid")], check=False
            )
        shutil.rmtree(home, ignore_errors=True)


STARTER = """
import os, signal, sys
from pathlib import Path
import pgserver
from monitor.storage.embedded import start_embedded

real_get_server = pgserver.get_server

def get_server(*args, **kwargs):
    # SIGTERM lands while the embedded start is under way: {when} pgserver starts Postgres
    if "{when}" == "before":
        os.kill(os.getpid(), signal.SIGTERM)
    server = real_get_server(*args, **kwargs)
    if "{when}" == "after":
        os.kill(os.getpid(), signal.SIGTERM)
    print("postgres", Path(sys.argv[1], "postmaster.pid").read_text().split()[0], flush=True)
    return server

pgserver.get_server = get_server
start_embedded(Path(sys.argv[1]))
print("not stopped by the signal", flush=True)
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigterm_during_the_embedded_start_still_stops_postgres(when: str, tmp_path: Path) -> None:
    """A SIGTERM while initdb / pg_ctl run (seconds on a first start) is held until the server
    is registered for its clean stop, then exits: it used to kill the process with Postgres
    left running and nobody to stop it."""
    home = Path(tempfile.mkdtemp(prefix="monitor-start-signal-"))
    home.chmod(0o755)
    pgdata = home / "pgdata"
    try:
        done = subprocess.run(
            [sys.executable, "-c", STARTER.replace("{when}", when), str(pgdata)],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 128 + signal.SIGTERM, done.stderr[-2000:]
        assert "not stopped by the signal" not in done.stdout
        pid = int(done.stdout.split("postgres", 1)[1].split()[0])
        deadline = time.monotonic() + 10
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(pid), f"postgres {pid} still runs after its starter exited on SIGTERM"
        assert "arrived while the embedded Postgres started" in done.stderr
    finally:
        if (pgdata / "postmaster.pid").exists():  # never leave a server behind
            subprocess.run(["pkill", "-TERM", "-F", str(pgdata / "postmaster.pid")], check=False)
        shutil.rmtree(home, ignore_errors=True)
