"""Direct loss estimation (DLE) for regression: expected MAE and RMSE of a window without labels.

NannyML's DLE trains a second model on the baseline to predict each row's loss (absolute and
squared error) from the features and the prediction; a window's estimated MAE is the mean of the
predicted absolute errors. It sees what CBPE cannot for regression: errors that depend on where
in feature space the rows fall (heteroscedasticity), so covariate shift towards harder regions
shows up before the labels do.

NannyML uses LightGBM for the loss model. Here it is a linear model fitted by ridge least
squares on: a linear spline per numeric input (features and the prediction; standardised by
median and a robust spread; knots at the baseline's deciles plus two in each tail; a missing
indicator), one-hot categories, and pairwise products of the standardised numeric inputs and of
each frequent category with each of them (the loss of a price model depends on age *and*
price). Pure numpy, a few hundred numbers in a JSON column, no extra dependency, and -- unlike
trees, which are flat beyond the last split -- it extrapolates the loss's trend linearly into
regions where covariate shift takes traffic and the baseline has no rows. A log link was tried:
its exponential extrapolation overestimated additive loss surfaces under shift (+8% on
tests/statistics/test_dle.py's scenario) for a similar error on NannyML's car prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .estimation import BAND_SIGMAS, ERROR, INSUFFICIENT_DATA, MIN_ROWS, Estimate

DLE_METRICS = ("mae", "rmse")
PREDICTION = "@prediction"
TAIL_KNOTS = (0.01, 0.03)
"""Extra knots in each tail (as quantiles): where covariate shift takes traffic, the loss's
curve must be followed beyond the outer deciles, not extrapolated from them."""
INTERACTION_CLIP = 5.0
"""Standardised inputs are clipped here inside interaction terms, so one far outlier cannot
make a product term explode (main effects stay unclipped: they carry the trend)."""
INTERACTION_LEVELS = 10
"""Categories (by baseline frequency) that get interaction terms with the numeric inputs."""
MODEL_VERSION = 2
"""Version 1 (before issue 16) stored knots where ``design`` read centre and scale; its
coefficients are meaningless and cannot be converted: such a model must be refitted."""


@dataclass(frozen=True)
class LossModel:
    """The fitted loss model: the binning of each input and two coefficient vectors."""

    numeric_edges: dict[str, list[float]]  # [center, scale, knot, knot, ...] per column
    categorical_levels: dict[str, list[str]]
    coef_abs: list[float]
    coef_sq: list[float]
    resid_sd_abs: float
    resid_sd_sq: float
    n_reference: int
    reference_realised: dict[str, float] = field(default_factory=dict)
    interactions: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "dle",
            "version": MODEL_VERSION,
            "numeric_edges": self.numeric_edges,
            "categorical_levels": self.categorical_levels,
            "coef_abs": self.coef_abs,
            "coef_sq": self.coef_sq,
            "resid_sd_abs": self.resid_sd_abs,
            "resid_sd_sq": self.resid_sd_sq,
            "n_reference": self.n_reference,
            "reference_realised": self.reference_realised,
            "interactions": self.interactions,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossModel:
        """Rebuild a model; ValueError for one fitted before version 2 (refit the baseline)."""
        if int(d.get("version", 1)) != MODEL_VERSION:
            raise ValueError(
                "the loss model was fitted by an older monitor version whose coefficients "
                "are invalid; register the baseline again to refit it"
            )
        return cls(
            numeric_edges={k: [float(x) for x in v] for k, v in d["numeric_edges"].items()},
            categorical_levels={k: [str(x) for x in v] for k, v in d["categorical_levels"].items()},
            coef_abs=[float(x) for x in d["coef_abs"]],
            coef_sq=[float(x) for x in d["coef_sq"]],
            resid_sd_abs=float(d["resid_sd_abs"]),
            resid_sd_sq=float(d["resid_sd_sq"]),
            n_reference=int(d["n_reference"]),
            reference_realised=dict(d.get("reference_realised", {})),
            interactions=bool(d.get("interactions", True)),
        )

    def design(
        self, numeric: dict[str, Any], categorical: dict[str, Any], y_pred: Any
    ) -> np.ndarray:
        """Design matrix of a window: intercept, spline bases, missing indicators, one-hots."""
        n = len(np.asarray(y_pred))
        cols: list[np.ndarray] = [np.ones((n, 1))]
        linear: list[np.ndarray] = []
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
            linear.append(np.clip(block[:, 0], -INTERACTION_CLIP, INTERACTION_CLIP))
        onehots: list[np.ndarray] = []
        for name, levels in self.categorical_levels.items():
            block = np.zeros((n, len(levels)))
            x = categorical.get(name)
            if x is not None:
                pos = {lv: i for i, lv in enumerate(levels)}
                idx = np.array([pos.get(str(v), -1) for v in np.asarray(x, dtype=object)])
                hit = idx >= 0
                block[np.nonzero(hit)[0], idx[hit]] = 1.0  # unseen category: no column
            cols.append(block)
            onehots.append(block[:, : min(len(levels), INTERACTION_LEVELS)])
        if self.interactions:
            # pairwise products of the standardised numeric inputs, and of each frequent
            # category with each of them: the loss of a price model depends on age *and* price
            pairs = [a * b for i, a in enumerate(linear) for b in linear[i + 1 :]]
            for block in onehots:
                pairs += [block * lin[:, None] for lin in linear]
            if pairs:
                cols.append(np.column_stack(pairs))
        return np.hstack(cols)


def _numeric_spec(v: np.ndarray, bins: int) -> list[float]:
    """[center, scale, knots...] of one input: median, a robust spread, inner deciles.

    The scale falls back from the interquartile range to the sd to 1, so a rare 0/1 flag or a
    column whose deciles coincide gets a finite basis; knots outside the observed range or
    repeated add nothing and are dropped.
    """
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return [0.0, 1.0]
    center = float(np.median(finite))
    q1, q3 = np.percentile(finite, [25, 75])
    scale = float(q3 - q1) / 1.349
    if not scale > 0:
        scale = float(np.std(finite))
    if not (scale > 0 and math.isfinite(scale)):
        scale = 1.0
    lo, hi = float(finite.min()), float(finite.max())
    levels = np.r_[TAIL_KNOTS, np.linspace(0, 1, bins + 1)[1:-1], 1 - np.asarray(TAIL_KNOTS)]
    inner = np.unique(np.quantile(finite, levels))
    knots = [float(k) for k in inner if lo < k < hi]
    return [center, scale, *knots]


def _ridge(X: np.ndarray, targets: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge least squares for several targets (columns) at once, one Gram matrix.

    The penalty grows with n so it stays a light touch; the intercept is not shrunk (the
    fitted losses then average to the observed ones).
    """
    penalty = alpha * X.shape[0] / 1000.0 * np.eye(X.shape[1])
    penalty[0, 0] = 0.0
    return np.asarray(np.linalg.solve(X.T @ X + penalty, X.T @ targets))


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
    """Fit the loss model on labelled baseline rows (numeric/categorical columns by name).

    Raises ValueError with a reason when it cannot (too few labelled rows, a fit that does
    not converge to finite coefficients).
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(y) & np.isfinite(p)
    if ok.sum() < MIN_ROWS:
        raise ValueError(f"DLE needs at least {MIN_ROWS} labelled baseline rows")
    numeric = {k: np.asarray(v, dtype=float)[ok] for k, v in numeric.items()}
    categorical = {k: np.asarray(v, dtype=object)[ok] for k, v in categorical.items()}
    y, p = y[ok], p[ok]
    specs = {name: _numeric_spec(v, bins) for name, v in {**numeric, PREDICTION: p}.items()}
    levels: dict[str, list[str]] = {}
    for name, v in categorical.items():
        vals, counts = np.unique(np.array([str(x) for x in v]), return_counts=True)
        levels[name] = [str(x) for x in vals[np.argsort(-counts, kind="stable")][:max_levels]]
    shell = LossModel(specs, levels, [], [], 0.0, 0.0, len(y))
    X = shell.design(numeric, categorical, p)
    err = y - p
    abs_e, sq_e = np.abs(err), err * err
    coef = _ridge(X, np.column_stack([abs_e, sq_e]), alpha)
    ca, cs = coef[:, 0], coef[:, 1]
    fitted_a, fitted_s = X @ ca, X @ cs
    if not (np.all(np.isfinite(ca)) and np.all(np.isfinite(cs))):
        raise ValueError("the DLE loss model did not converge to finite coefficients")
    return LossModel(
        numeric_edges=specs,
        categorical_levels=levels,
        coef_abs=ca.tolist(),
        coef_sq=cs.tolist(),
        resid_sd_abs=float(np.std(abs_e - fitted_a)),
        resid_sd_sq=float(np.std(sq_e - fitted_s)),
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
    with np.errstate(all="ignore"):
        mae = float(np.mean(np.maximum(X @ np.asarray(model.coef_abs), 0.0)))
        mse = float(np.mean(np.maximum(X @ np.asarray(model.coef_sq), 0.0)))
    sd_mae = model.resid_sd_abs / math.sqrt(n)
    rmse = math.sqrt(mse) if mse >= 0 else math.nan
    sd_rmse = model.resid_sd_sq / math.sqrt(n) / (2 * rmse) if rmse > 0 else 0.0
    out = {}
    for m, v, sd in (("mae", mae, sd_mae), ("rmse", rmse, sd_rmse)):
        if not (math.isfinite(v) and math.isfinite(sd)):
            out[m] = Estimate(
                m, None, None, None, None, n, ERROR, "dle", "the loss model gave no finite value"
            )
            continue
        out[m] = Estimate(
            m, v, sd, max(0.0, v - BAND_SIGMAS * sd), v + BAND_SIGMAS * sd, n, method="dle"
        )
    return out
