"""One ``results`` row as the jobs write it: every job builds its rows here, so they agree on
the shape and on cleaning (non-finite numbers become null, numpy scalars plain numbers: JSONB
rejects NaN and Infinity)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from monitor.storage import vocabulary as v


def result_row(
    family: str,
    metric: str,
    value: float | None,
    column: str = "",
    *,
    segment: str = "",
    details: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A results row with every column present; ``extra`` sets the optional ones."""
    out: dict[str, Any] = {
        "family": family,
        "metric": metric,
        "value": finite(value),
        "column_name": column,
        "segment": segment,
        "p_value": None,
        "threshold": None,
        "effect_size": None,
        "ci_low": None,
        "ci_high": None,
        "drifted": None,
        "status": v.OK,
        "n_reference": None,
        "n_current": None,
        "details": json.dumps(clean(details)) if details else None,
    }
    out.update(extra)
    return out


def finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def clean(x: Any) -> Any:
    """JSON-safe copy: non-finite floats to None, numpy scalars to Python numbers."""
    if isinstance(x, dict):
        return {k: clean(val) for k, val in x.items()}
    if isinstance(x, list | tuple):
        return [clean(val) for val in x]
    if isinstance(x, float | np.floating):
        return finite(x)
    if isinstance(x, np.integer):
        return int(x)
    return x
