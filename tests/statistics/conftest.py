"""Shared fixtures: evidently is imported once per session (it takes seconds)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def evidently() -> SimpleNamespace:
    """Evidently's legacy stattest registry and helpers, imported once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently.legacy.calculations.stattests import registry
        from evidently.legacy.core import ColumnType

    def stattest(name: str, kind: str):  # type: ignore[no-untyped-def]
        ctype = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
        tests = registry._registered_stat_tests[name]
        return next(iter(tests.values())), ctype

    return SimpleNamespace(registry=registry, ColumnType=ColumnType, stattest=stattest)


@pytest.fixture(scope="session")
def evidently_report():  # type: ignore[no-untyped-def]
    """A function running Evidently's DataDriftPreset: {column: (method, threshold, value)}."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import Report
        from evidently.presets import DataDriftPreset

    def run(reference, current, **preset_kwargs):  # type: ignore[no-untyped-def]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snap = Report([DataDriftPreset(**preset_kwargs)]).run(
                current_data=current, reference_data=reference
            )
            metrics = snap.dict()["metrics"]
        out = {}
        for m in metrics[1:]:
            cfg = m["config"]
            out[cfg["column"]] = (cfg["method"], cfg["threshold"], m["value"])
        return metrics[0]["value"], out

    return run
