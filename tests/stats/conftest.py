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
