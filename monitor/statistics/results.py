"""Result records of drift computations (plain dataclasses with ``to_dict``).

One record shape serves every method and policy so that the CLI, the window jobs and the web
layer never special-case a method: p-value methods fill ``p_value`` (the value Evidently reports
as the drift score), distances leave it ``None``; every record carries an effect size so a
p-value is never read without the size of the shift next to it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColumnKind = Literal["num", "cat"]
MethodKind = Literal["p_value", "distance"]
Status = Literal["ok", "insufficient_data", "error"]


def _clean(v: Any) -> Any:
    """JSON-safe scalars: numpy -> python, NaN/inf -> None (strict JSON has neither)."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class DriftResult:
    """Drift of one column.

    ``statistic`` is the method's own statistic (KS D, chi-square, a distance...);
    ``p_value`` the p-value for p-value methods (``None`` for distances). ``drifted`` is the
    verdict of the policy that produced the record: under the ``evidently`` policy the method's
    score against its threshold; under the default policy the adjusted p-value *and* the lower
    confidence bound of the effect size against the practical ``tolerance``.
    """

    column: str
    kind: ColumnKind
    method: str
    method_kind: MethodKind
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    effect_size: float | None
    n_reference: int
    n_current: int
    effect_name: str | None = None
    effect_ci: tuple[float, float] | None = None
    tolerance: float | None = None
    p_value_adjusted: float | None = None
    status: Status = "ok"
    message: str | None = None
    error_bound: float | None = None

    @property
    def score(self) -> float | None:
        """The number compared with ``threshold``: the p-value or the distance."""
        return self.p_value if self.method_kind == "p_value" else self.statistic

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (NaN/inf become null)."""
        d = asdict(self)
        if self.effect_ci is not None:
            d["effect_ci"] = list(self.effect_ci)
        return _clean(d)


@dataclass
class DatasetDriftResult:
    """Drift of a dataset: per-column records plus the share of drifted columns.

    ``drift_share`` is the share of drifted columns at which the dataset counts as drifted
    (Evidently: 0.5). ``None`` means "any drifted column" - the default policy's choice,
    because its column verdicts are already corrected for multiplicity.
    """

    columns: list[DriftResult]
    policy: str
    drift_share: float | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    multivariate: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_columns(self) -> int:
        """Columns with a drift record."""
        return len(self.columns)

    @property
    def n_drifted(self) -> int:
        """Columns flagged as drifted."""
        return sum(1 for c in self.columns if c.drifted)

    @property
    def without_verdict(self) -> list[str]:
        """Columns that could not be judged (no data, too little data, a method error).

        Their ``drifted`` is False because nothing could be concluded, not because nothing
        moved: reports list them and the CLI exits with its own code, so missing data never
        reads as health.
        """
        return [c.column for c in self.columns if c.status != "ok"]

    @property
    def share(self) -> float:
        """Share of drifted columns (0 when there are none)."""
        return self.n_drifted / self.n_columns if self.columns else 0.0

    @property
    def drifted(self) -> bool:
        """Dataset-level verdict (see ``drift_share``)."""
        if not self.columns:
            return False
        if self.drift_share is None:
            return self.n_drifted > 0
        return self.share >= self.drift_share

    def column(self, name: str) -> DriftResult:
        """The record of one column (KeyError if absent)."""
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The ``monitor drift --format json`` object."""
        return _clean(
            {
                "dataset": {
                    "columns": self.n_columns,
                    "drifted_columns": self.n_drifted,
                    "share": self.share,
                    "drifted": self.drifted,
                    "policy": self.policy,
                    "drift_share": self.drift_share,
                    "skipped": dict(self.skipped),
                    "without_verdict": self.without_verdict,
                },
                "columns": [c.to_dict() for c in self.columns],
                **({"multivariate": self.multivariate} if self.multivariate else {}),
            }
        )
