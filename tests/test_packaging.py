"""What can be checked of the image and the wheel without a Docker engine."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from monitor.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_copies_files_that_exist() -> None:
    sources = []
    for line in _dockerfile().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # not another stage's files
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_dockerfile_entrypoint_runs_existing_commands() -> None:
    cmd = next(line for line in _dockerfile().splitlines() if line.startswith("CMD "))
    used = re.findall(r"monitor ([a-z]+)", cmd)
    assert used == ["db", "serve"]
    assert all(name in COMMANDS for name in used)


def test_top_level_layout() -> None:
    for name in [
        "pyproject.toml",
        "README.md",
        "monitor",
        "migrations",
        "tests",
        "dashboards",
        "alembic.ini",
        "Dockerfile",
        ".ci/run",
        "benchmarks",
    ]:
        assert (ROOT / name).exists(), name


def test_wheel_ships_the_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("monitor-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "monitor/_migrations/env.py" in names
    assert any(n.startswith("monitor/_migrations/versions/0001") for n in names)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "monitor").rglob("*.py")}
    assert modules - names == set(), "add the missing packages to pyproject.toml"
    assert not any(n.startswith("tests/") for n in names)
    assert any(re.match(r"monitor/sdk/postgres/_speedups\..*\.so$", n) for n in names), "C encoder"
