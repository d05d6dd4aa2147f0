"""The import layers of DESIGN.md: a cheap SDK facade, pure stats, web that never runs jobs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "monitor"

HEAVY = [
    "scipy",
    "pandas",
    "numpy",
    "fastapi",
    "plotly",
    "apscheduler",
    "alembic",
    "evidently",
    "sqlalchemy",
    "pydantic",
    "sklearn",
    "pyspark",
]

# package -> top-level modules (or monitor subpackages) it must never import
FORBIDDEN: dict[str, set[str]] = {
    "monitor.sdk": set(HEAVY)
    | {
        "monitor.storage",
        "monitor.jobs",
        "monitor.web",
        "monitor.alerts",
        "monitor.statistics",
        "monitor.settings",
    },
    "monitor.statistics": {
        "sqlalchemy",
        "psycopg",
        "fastapi",
        "httpx",
        "apscheduler",
        "alembic",
        "monitor.storage",
        "monitor.jobs",
        "monitor.web",
        "monitor.alerts",
        "monitor.sdk",
        "pandas",
    },
    "monitor.storage": {"fastapi", "monitor.web", "monitor.jobs", "monitor.alerts", "pyspark"},
    "monitor.web": {"monitor.jobs", "apscheduler", "pyspark", "monitor.spark"},
    "monitor.alerts": {"monitor.web", "fastapi", "pyspark", "monitor.spark"},
    "monitor.jobs": {"pyspark", "monitor.spark"},
    "monitor.spark": {"monitor.web", "fastapi"},
}
# pyspark is the optional [spark] extra: only monitor.spark (and the CLI command that loads it
# on use) may import it, and the SDK, server, worker and statistics never import monitor.spark.
for _package in ("monitor.sdk", "monitor.statistics"):
    FORBIDDEN[_package] |= {"pyspark", "monitor.spark"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _violations(package: str, forbidden: set[str]) -> list[str]:
    folder = ROOT / package.replace(".", "/")
    found = []
    for path in sorted(folder.rglob("*.py")):
        for name in _imports(path):
            for bad in forbidden:
                if name == bad or name.startswith(bad + "."):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_its_import_layer(package: str) -> None:
    assert _violations(package, FORBIDDEN[package]) == []


def test_import_monitor_is_cheap() -> None:
    code = (
        "import sys, json, monitor; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_server_and_worker_never_load_pyspark() -> None:
    """The service runs without the [spark] extra: its modules must not pull pyspark in."""
    code = (
        "import sys, monitor, monitor.web.app, monitor.jobs.tick, monitor.jobs.window_job, "
        "monitor.jobs.performance, monitor.cli, monitor.spark.partials; "
        "print(sorted(m for m in sys.modules if m == 'pyspark' or m.startswith('pyspark.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_sdk_stats_function_survives_importing_the_statistics_package() -> None:
    """``monitor.stats()`` is SDK API; no subpackage may shadow it once imported."""
    code = (
        "import monitor.statistics.profiles, monitor.jobs, monitor; "
        "print(callable(monitor.stats), 'dropped' in monitor.stats())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "True"]
