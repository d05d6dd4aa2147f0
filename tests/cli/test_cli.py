"""The `monitor` command as users run it: help, errors as one line, db and token commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from monitor.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_command_with_its_one_line_help() -> None:
    out = run("--help")
    assert out.returncode == 0
    for name, (_, summary) in COMMANDS.items():
        assert name in out.stdout
        assert summary[:30] in out.stdout


def test_every_command_loads_and_has_help() -> None:
    for name in COMMANDS:
        out = run(name, "--help")
        assert out.returncode == 0, out.stderr
        assert "Usage:" in out.stdout


def test_bad_argument_is_one_line_and_nonzero() -> None:
    out = run("no-such-command")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "No such command" in out.stderr


def test_unreachable_database_is_one_line_and_nonzero() -> None:
    out = run("db", "check", env={"MONITOR_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "cannot reach the database" in lines[0]


def test_db_upgrade_check_and_token_lifecycle(database_url: str) -> None:
    env = {"MONITOR_DATABASE_URL": database_url}
    assert run("db", "upgrade", env=env).returncode == 0
    check = run("db", "check", env=env)
    assert check.returncode == 0 and "up to date" in check.stdout
    created = run("token", "create", "--name", "cli-test", "--scope", "admin", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().startswith("mon_")
    listed = run("token", "list", env=env)
    assert "cli-test" in listed.stdout and created.stdout.strip() not in listed.stdout
    bad = run("token", "revoke", "999999", env=env)
    assert bad.returncode == 2 and "no active token" in bad.stderr


def test_out_of_date_schema_names_the_command(pg_admin_url: str) -> None:
    from tests.pg import fresh_database

    with fresh_database(pg_admin_url) as url:
        out = run("token", "list", env={"MONITOR_DATABASE_URL": url})
    assert out.returncode == 2
    assert "monitor db upgrade" in out.stderr


def test_serve_runs_several_worker_processes(database_url: str) -> None:
    """``monitor serve --workers 2``: a supervisor with two worker processes that each answer."""
    import time

    import httpx

    from tests.http import free_port

    env = {**os.environ, "MONITOR_DATABASE_URL": database_url}
    assert run("db", "upgrade", env=env).returncode == 0
    token = run("token", "create", "--name", "serve-test", "--scope", "read", env=env)
    assert token.returncode == 0, token.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        # uvicorn's supervisor spawns each worker through multiprocessing
        workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2, children
        headers = {"Authorization": f"Bearer {token.stdout.strip()}"}
        for _ in range(6):  # fresh connections: the kernel spreads them over the workers
            r = httpx.get(f"{base}/api/v1/models", headers=headers, timeout=10)
            assert r.status_code == 200 and r.json()["items"] == []
        assert httpx.get(f"{base}/api/v1/models", timeout=10).status_code == 401
    finally:
        server.terminate()
        server.wait(20)
    assert server.stdout is not None
    assert "2 worker processes" in server.stdout.read()
