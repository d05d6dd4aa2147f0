"""The metric catalogue rules are checked against lists every metric the jobs write."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from monitor.alerts.catalogue import check_metric, metrics_of, producing_job
from monitor.storage import vocabulary as v

JOBS = Path(__file__).resolve().parents[2] / "monitor" / "jobs"


def _written() -> set[tuple[str, str]]:
    """(family, metric) of every result row the jobs build with literal names:
    ``row(v.FAMILY, v.METRIC, ...)`` or ``_row(v.FAMILY, "metric", ...)``."""
    found: set[tuple[str, str]] = set()
    for path in JOBS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            family, metric = node.args[0], node.args[1]
            if not (isinstance(family, ast.Attribute) and isinstance(family.value, ast.Name)):
                continue
            if family.value.id != "v" or family.attr not in {f.upper() for f in v.FAMILIES}:
                continue
            name = None
            if isinstance(metric, ast.Attribute) and isinstance(metric.value, ast.Name):
                name = getattr(v, metric.attr, None) if metric.value.id == "v" else None
            elif isinstance(metric, ast.Constant) and isinstance(metric.value, str):
                name = metric.value
            if isinstance(name, str):
                found.add((getattr(v, family.attr), name))
    return found


def test_every_metric_the_jobs_write_is_in_the_catalogue() -> None:
    from monitor.jobs.window_job import MULTIVARIATE_METRICS
    from monitor.statistics.estimation import CBPE_METRICS
    from monitor.statistics.quality import CheckName
    from monitor.statistics.registry import available_methods

    written = _written() - {(v.DRIFT, "no_baseline")}  # only ever insufficient_data
    assert len(written) >= 10  # the scan found the jobs' rows
    written |= {(v.QUALITY, name) for name in typing.get_args(CheckName)}
    written |= {(v.MULTIVARIATE, name) for name in MULTIVARIATE_METRICS.values()}
    written |= {(v.DRIFT, name) for name in available_methods()}
    written |= {(v.ESTIMATED_PERFORMANCE, name) for name in CBPE_METRICS}
    missing = sorted(f"{f}.{m}" for f, m in written if check_metric(f, m) is not None)
    assert missing == []


def test_patterns_and_misspellings() -> None:
    assert check_metric(v.DRIFT, "*") is None
    assert check_metric(v.QUALITY, "*_share") is None
    assert "matches no metric" in str(check_metric(v.QUALITY, "nul_*"))
    assert "did you mean null_share" in str(check_metric(v.QUALITY, "nul_share"))
    assert "wasserstein" in metrics_of(v.DRIFT)
    assert producing_job(v.OPERATIONAL, v.VOLUME) == v.JOB_WINDOW
    assert producing_job(v.OPERATIONAL, v.LABEL_COVERAGE) == v.JOB_PERFORMANCE
    assert producing_job(v.PERFORMANCE, "roc_auc") == v.JOB_PERFORMANCE
