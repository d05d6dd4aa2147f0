"""The registry of drift methods.

Each method is a small function ``f(pair) -> MethodOutput`` registered with its metadata: name
(Evidently's registry name where Evidently has the method), kind (``"p_value"`` or
``"distance"``), the column kinds it accepts, its default threshold and how the score is
compared with the threshold. The comparison is part of the metadata because Evidently is not
uniform (``ks`` and ``cramer_von_mises`` flag at ``p <= t``, the other tests at ``p < t``;
``ed`` at ``d > t``, the other distances at ``d >= t``) and parity includes the verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from monitor.errors import InputError

from .results import ColumnKind, MethodKind

if TYPE_CHECKING:
    from .columns import ColumnPair

Rule = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True)
class MethodOutput:
    """What a method computes: its statistic and, for tests, the p-value."""

    statistic: float
    p_value: float | None = None


MethodFunc = Callable[["ColumnPair"], MethodOutput]


@dataclass(frozen=True)
class DriftMethod:
    """A registered drift method and its metadata."""

    name: str
    kind: MethodKind
    column_kinds: tuple[ColumnKind, ...]
    default_threshold: float
    rule: Rule
    func: MethodFunc
    description: str
    source: Literal["evidently", "monitor"]

    def score(self, out: MethodOutput) -> float:
        """The number compared with the threshold."""
        if self.kind == "p_value":
            assert out.p_value is not None
            return out.p_value
        return out.statistic

    def decide(self, score: float, threshold: float) -> bool:
        """Evidently's verdict rule for this method."""
        if score != score:  # NaN: no verdict possible, never a drift flag
            return False
        return {
            "<": score < threshold,
            "<=": score <= threshold,
            ">": score > threshold,
            ">=": score >= threshold,
        }[self.rule]


_REGISTRY: dict[str, DriftMethod] = {}


def register(
    name: str,
    *,
    kind: MethodKind,
    column_kinds: tuple[ColumnKind, ...],
    default_threshold: float,
    rule: Rule | None = None,
    description: str = "",
    source: Literal["evidently", "monitor"] = "evidently",
) -> Callable[[MethodFunc], MethodFunc]:
    """Decorator registering ``func`` under ``name``."""

    def deco(func: MethodFunc) -> MethodFunc:
        if name in _REGISTRY:
            raise ValueError(f"drift method {name!r} registered twice")
        _REGISTRY[name] = DriftMethod(
            name=name,
            kind=kind,
            column_kinds=column_kinds,
            default_threshold=default_threshold,
            rule=rule or ("<" if kind == "p_value" else ">="),
            func=func,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            source=source,
        )
        return func

    return deco


def _ensure_loaded() -> None:
    # The method modules register on import; importing them here keeps the registry complete
    # whichever module a caller imported first.
    from . import methods_binned, methods_categorical, methods_numeric  # noqa: F401


def available_methods(column_kind: ColumnKind | None = None) -> list[str]:
    """Registered method names, optionally only those accepting ``column_kind``."""
    _ensure_loaded()
    return sorted(
        n for n, m in _REGISTRY.items() if column_kind is None or column_kind in m.column_kinds
    )


def get_method(name: str, column_kind: ColumnKind | None = None) -> DriftMethod:
    """The method registered as ``name``; InputError naming the available ones otherwise."""
    _ensure_loaded()
    method = _REGISTRY.get(name)
    if method is None:
        raise InputError(
            f"unknown drift method {name!r}; available: {', '.join(available_methods())}"
        )
    if column_kind is not None and column_kind not in method.column_kinds:
        raise InputError(
            f"drift method {name!r} does not accept {column_kind!r} columns; "
            f"methods for {column_kind!r}: "
            f"{', '.join(available_methods(column_kind))}"
        )
    return method
