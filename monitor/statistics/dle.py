"""Direct loss estimation (DLE) for regression: expected MAE and RMSE of a window without labels.

NannyML's DLE trains a second model on the baseline to predict each row's loss (absolute and
squared error) from the features and the prediction; a window's estimated MAE is the mean of the
predicted absolute errors. It sees what CBPE cannot for regression: errors that depend on where
in feature space the rows fall (heteroscedasticity), so covariate shift towards harder regions
shows up before the labels do.

NannyML uses LightGBM for the loss model. Here it is an additive model fitted by ridge least
squares: a linear spline per numeric column (knots at the baseline's quantiles, a missing
indicator) and one-hot categories. Pure numpy, a few hundred numbers in a JSON column, no extra
dependency; enough for loss surfaces that vary feature by feature, and -- unlike trees, which are
flat beyond the last split -- it extrapolates the loss's trend into the regions where covariate
shift takes traffic and the baseline has no rows. It does not model interactions; a
loss that depends on a product of features will be estimated as the sum of its margins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .estimation import BAND_SIGMAS, INSUFFICIENT_DATA, MIN_ROWS, Estimate

DLE_METRICS = ("mae", "rmse")
PREDICTION = "@prediction"


@dataclass(frozen=True)
class LossModel:
    """The fitted loss model: the binning of each input and two coefficient vectors."""

    numeric_edges: dict[str, list[float]]  # [center, scale, knot, knot, ...]
    categorical_levels: dict[str, list[str]]
    coef_abs: list[float]
    coef_sq: list[float]
    resid_sd_abs: float
    resid_sd_sq: float
    n_reference: int
    reference_realised: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "dle",
            "numeric_edges": self.numeric_edges,
            "categorical_levels": self.categorical_levels,
            "coef_abs": self.coef_abs,
            "coef_sq": self.coef_sq,
            "resid_sd_abs": self.resid_sd_abs,
            "resid_sd_sq": self.resid_sd_sq,
            "n_reference": self.n_reference,
            "reference_realised": self.reference_realised,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossModel:
        return cls(
            numeric_edges={k: [float(x) for x in v] for k, v in d["numeric_edges"].items()},
            categorical_levels={k: [str(x) for x in v] for k, v in d["categorical_levels"].items()},
            coef_abs=[float(x) for x in d["coef_abs"]],
            coef_sq=[float(x) for x in d["coef_sq"]],
            resid_sd_abs=float(d["resid_sd_abs"]),
            resid_sd_sq=float(d["resid_sd_sq"]),
            n_reference=int(d["n_reference"]),
            reference_realised=dict(d.get("reference_realised", {})),
        )

    def design(
        self, numeric: dict[str, Any], categorical: dict[str, Any], y_pred: Any
    ) -> np.ndarray:
        """Design matrix of a window: intercept, spline bases, missing indicators, one-hots."""
        n = len(np.asarray(y_pred))
        cols: list[np.ndarray] = [np.ones((n, 1))]
        values = {**numeric, PREDICTION: y_pred}
        for name, spec in self.numeric_edges.items():
            center, scale, knots = spec[0], spec[1], np.asarray(spec[2:])
            x = values.get(name)
            v = np.full(n, np.nan) if x is None else np.asarray(x, dtype=float)
            missing = ~np.isfinite(v)
            z = np.where(missing, center, v)
            block = np.empty((n, len(knots) + 2))
            block[:, 0] = (z - center) / scale
            block[:, 1:-1] = np.maximum(z[:, None] - knots[None, :], 0.0) / scale
            block[:, -1] = missing
            cols.append(block)
        for name, levels in self.categorical_levels.items():
            block = np.zeros((n, len(levels)))
            x = categorical.get(name)
            if x is not None:
                pos = {lv: i for i, lv in enumerate(levels)}
                idx = np.array([pos.get(str(v), -1) for v in np.asarray(x, dtype=object)])
                hit = idx >= 0
                block[np.nonzero(hit)[0], idx[hit]] = 1.0  # unseen category: no column
            cols.append(block)
        return np.hstack(cols)


def _ridge(X: np.ndarray, t: np.ndarray, alpha: float) -> np.ndarray:
    penalty = alpha * np.eye(X.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(X.T @ X + penalty, X.T @ t)


def fit_dle(
    numeric: dict[str, Any],
    categorical: dict[str, Any],
    y_pred: Any,
    y_true: Any,
    *,
    bins: int = 10,
    max_levels: int = 50,
    alpha: float = 1.0,
) -> LossModel:
    """Fit the loss model on labelled baseline rows (numeric/categorical columns by name)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(y) & np.isfinite(p)
    if ok.sum() < MIN_ROWS:
        raise ValueError(f"DLE needs at least {MIN_ROWS} labelled baseline rows")
    numeric = {k: np.asarray(v, dtype=float)[ok] for k, v in numeric.items()}
    categorical = {k: np.asarray(v, dtype=object)[ok] for k, v in categorical.items()}
    y, p = y[ok], p[ok]
    edges: dict[str, list[float]] = {}
    for name, v in {**numeric, PREDICTION: p}.items():
        finite = v[np.isfinite(v)]
        inner = (
            np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
            if len(finite)
            else np.array([])
        )
        edges[name] = [float(e) for e in inner]
    levels: dict[str, list[str]] = {}
    for name, v in categorical.items():
        vals, counts = np.unique(np.array([str(x) for x in v]), return_counts=True)
        levels[name] = [str(x) for x in vals[np.argsort(-counts)][:max_levels]]
    shell = LossModel(edges, levels, [], [], 0.0, 0.0, len(y))
    X = shell.design(numeric, categorical, p)
    err = y - p
    abs_e, sq_e = np.abs(err), err * err
    ca, cs = _ridge(X, abs_e, alpha), _ridge(X, sq_e, alpha)
    return LossModel(
        numeric_edges=edges,
        categorical_levels=levels,
        coef_abs=ca.tolist(),
        coef_sq=cs.tolist(),
        resid_sd_abs=float(np.std(abs_e - X @ ca)),
        resid_sd_sq=float(np.std(sq_e - X @ cs)),
        n_reference=len(y),
        reference_realised={
            "mae": float(abs_e.mean()),
            "rmse": math.sqrt(float(sq_e.mean())),
        },
    )


def estimate_dle(
    model: LossModel,
    numeric: dict[str, Any],
    categorical: dict[str, Any],
    y_pred: Any,
    *,
    min_rows: int = MIN_ROWS,
) -> dict[str, Estimate]:
    """Estimated MAE and RMSE of a window, with a band of ``BAND_SIGMAS`` sampling errors.

    The sampling error is the spread of the realised loss around its expectation: the baseline's
    residual spread of the loss model over ``sqrt(n)`` (NannyML's choice); for RMSE it goes
    through the square root by the delta method.
    """
    p = np.asarray(y_pred, dtype=float)
    keep = np.isfinite(p)
    n = int(keep.sum())
    if n < min_rows:
        msg = f"{n} predictions, fewer than {min_rows}"
        return {
            m: Estimate(m, None, None, None, None, n, INSUFFICIENT_DATA, "dle", msg)
            for m in DLE_METRICS
        }
    num = {k: np.asarray(v, dtype=float)[keep] for k, v in numeric.items()}
    cat = {k: np.asarray(v, dtype=object)[keep] for k, v in categorical.items()}
    X = model.design(num, cat, p[keep])
    mae = float(np.mean(np.maximum(X @ np.asarray(model.coef_abs), 0.0)))
    mse = float(np.mean(np.maximum(X @ np.asarray(model.coef_sq), 0.0)))
    sd_mae = model.resid_sd_abs / math.sqrt(n)
    rmse = math.sqrt(mse)
    sd_rmse = model.resid_sd_sq / math.sqrt(n) / (2 * rmse) if rmse > 0 else math.nan
    out = {}
    for m, v, sd in (("mae", mae, sd_mae), ("rmse", rmse, sd_rmse)):
        out[m] = Estimate(
            m, v, sd, max(0.0, v - BAND_SIGMAS * sd), v + BAND_SIGMAS * sd, n, method="dle"
        )
    return out
