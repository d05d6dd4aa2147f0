"""Label-free performance estimation: confidence-based performance estimation (CBPE).

CBPE (NannyML, "Confidence-based performance estimation") reads a binary classifier's
probabilities as the chance that each prediction is right. Once the scores are calibrated on data
with labels (the baseline), the expected confusion matrix of a window without labels follows:
a row predicted positive with calibrated probability ``p`` is a true positive with probability
``p`` and a false positive with ``1 - p``. From that matrix come estimated accuracy, precision,
recall and F1; the expected ROC curve gives ROC AUC. The estimate stays right under covariate
shift (P(x) moves, P(y | x) does not), which is when label-free estimation matters; under
concept shift it is wrong, and the realised numbers, when labels land, will say so.

Calibration is chosen on the baseline by cross-validated Brier score among the identity,
isotonic regression (scipy's PAVA, stored as knots of a piecewise-linear map -- the same map as
scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``) and Platt scaling on the score's
logit; each is a few numbers in a JSON column. NannyML uses isotonic only; its steps are coarse
in the sparse tails where shifted traffic goes (benchmarks/estimation_quality.py shows it).

Sampling error: the band around each estimate is the spread of the metric the window would
realise if its labels were drawn from the calibrated probabilities -- the Poisson-binomial
variance for accuracy and precision (exact), a seeded parametric simulation for recall, F1 and
ROC AUC -- combined with the calibration's own uncertainty: the spread of the window's
estimate across calibrators refitted on bootstrap resamples of the baseline. NannyML scales
the baseline's chunk-to-chunk spread by ``1/sqrt(n)``; conditioning on the window itself keeps
the band honest when the shift moves the score distribution. No band built from the baseline
covers concept shift (P(y | score) moving): the second half of NannyML's car-loan data is such
a case (benchmarks/estimation_quality.py tests for it and says so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"
ERROR = "error"
NOT_AVAILABLE = "not_available"

CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
MIN_ROWS = 100
N_SIMULATIONS = 200
BAND_SIGMAS = 3.0
_SIM_CHUNK = 2_000_000


# --- calibration ---------------------------------------------------------------------------

_LOGIT_CLIP = 1e-6


def _logit(s: np.ndarray) -> np.ndarray:
    c = np.clip(s, _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.asarray(np.log(c) - np.log1p(-c))


@dataclass(frozen=True)
class Calibrator:
    """Monotone map from raw score to probability.

    ``kind`` is ``identity`` (scores used as they are), ``isotonic`` (piecewise-linear through
    knots ``x`` -> ``y``, clipped outside) or ``platt`` (logistic in the score's logit,
    ``y = sigmoid(a * logit(s) + b)`` with ``(a, b) = params``).
    """

    kind: str = "identity"
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    params: tuple[float, ...] = ()

    def __call__(self, scores: Any) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        if self.kind == "isotonic":
            return np.interp(s, self.x, self.y)
        if self.kind == "platt":
            a, b = self.params
            return np.asarray(1 / (1 + np.exp(-(a * _logit(s) + b))))
        return np.clip(s, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "x": list(self.x),
            "y": list(self.y),
            "params": list(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        def floats(key: str) -> tuple[float, ...]:
            return tuple(float(v) for v in d.get(key, ()))

        return cls(str(d.get("kind", "identity")), floats("x"), floats("y"), floats("params"))


def fit_isotonic(scores: Any, y_true: Any) -> Calibrator:
    """Isotonic regression of labels on scores, reduced to the knots where the fit changes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(y_true, dtype=float)
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    ux, start, counts = np.unique(s, return_index=True, return_counts=True)
    means = np.add.reduceat(y, start) / counts
    fit = optimize.isotonic_regression(means, weights=counts, increasing=True).x
    if len(ux) > 2:
        keep = np.ones(len(ux), dtype=bool)
        keep[1:-1] = (fit[1:-1] != fit[:-2]) | (fit[1:-1] != fit[2:])
        ux, fit = ux[keep], fit[keep]
    return Calibrator("isotonic", tuple(ux.tolist()), tuple(fit.tolist()))


def fit_platt(scores: Any, y_true: Any, *, iterations: int = 50) -> Calibrator:
    """Logistic regression of labels on the score's logit (Newton-Raphson, two parameters)."""
    z = _logit(np.asarray(scores, dtype=float))
    y = np.asarray(y_true, dtype=float)
    X = np.column_stack([z, np.ones_like(z)])
    w = np.array([1.0, 0.0])
    for _ in range(iterations):
        q = 1 / (1 + np.exp(-(X @ w)))
        grad = X.T @ (y - q)
        hess = (X * (q * (1 - q))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return Calibrator("platt", params=(float(w[0]), float(w[1])))


CALIBRATORS = {
    "identity": lambda s, y: Calibrator(),
    "isotonic": fit_isotonic,
    "platt": fit_platt,
}


def fit_calibrator(
    scores: Any, y_true: Any, *, folds: int = 5, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """The calibration with the lowest cross-validated Brier score on the baseline.

    NannyML uses isotonic regression when it lowers the calibration error. Isotonic is flexible
    but its steps are coarse where the baseline has few rows, which is exactly where covariate
    shift takes production traffic; a two-parameter Platt map extrapolates smoothly there. The
    candidates compete out of sample, and the identity keeps already-calibrated scores.
    Returns the calibrator and the cross-validated Brier score of each candidate.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(y_true, dtype=float)
    fold = np.random.default_rng(seed).permutation(len(s)) % folds
    brier: dict[str, float] = {}
    for name, fit in CALIBRATORS.items():
        total = 0.0
        for k in range(folds):
            test = fold == k
            c = fit(s[~test], y[~test])
            total += float(np.sum((c(s[test]) - y[test]) ** 2))
        brier[name] = total / len(s)
    best = min(brier, key=lambda k: brier[k])
    return CALIBRATORS[best](s, y), {f"brier_{k}": v for k, v in brier.items()}


# --- expected metrics ---------------------------------------------------------------------


def expected_confusion(p: np.ndarray, pred: np.ndarray) -> tuple[float, float, float, float]:
    """Expected (tp, fp, fn, tn) given calibrated probabilities and predicted classes."""
    tp = float(np.sum(p * pred))
    fp = float(np.sum((1 - p) * pred))
    fn = float(np.sum(p * (1 - pred)))
    return tp, fp, fn, len(p) - tp - fp - fn


def expected_roc_auc(p: np.ndarray, scores: np.ndarray) -> float:
    """Expected concordant pairs over expected discordant-label pairs, ranking by raw score.

    A pair (i, j) counts when j's score is higher and j is positive, i negative: probability
    ``p_j (1 - p_i)``; tied scores count half, as in the realised AUC.
    """
    order = np.argsort(scores, kind="mergesort")
    s, q = scores[order], p[order]
    neg = 1 - q
    _, start = np.unique(s, return_index=True)
    neg_grp = np.add.reduceat(neg, start)
    pos_grp = np.add.reduceat(q, start)
    below = np.concatenate([[0.0], np.cumsum(neg_grp)[:-1]])
    # within a tie group: pairs of distinct rows, half credit
    within = pos_grp * neg_grp - np.add.reduceat(q * neg, start)
    num = float(np.sum(pos_grp * below) + 0.5 * np.sum(within))
    den = float(q.sum() * neg.sum() - np.sum(q * neg))
    return num / den if den > 0 else math.nan


def cbpe_point(p: np.ndarray, pred: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    tp, fp, fn, tn = expected_confusion(p, pred)
    n = len(p)

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    return {
        "accuracy": (tp + tn) / n,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": expected_roc_auc(p, scores),
    }


def _simulated_sigmas(
    p: np.ndarray, pred: np.ndarray, scores: np.ndarray, n_sim: int, seed: int
) -> dict[str, float]:
    """Std of realised recall, F1 and ROC AUC over label draws y ~ Bernoulli(p)."""
    n = len(p)
    rng = np.random.default_rng(seed)
    ranks = stats.rankdata(scores)
    rec, f1, auc = [], [], []
    per_chunk = max(1, _SIM_CHUNK // max(n, 1))
    left = n_sim
    while left > 0:
        b = min(left, per_chunk)
        y = rng.random((b, n)) < p
        n1 = y.sum(axis=1).astype(float)
        tp = (y & (pred == 1)).sum(axis=1).astype(float)
        n_pp = float(pred.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rec.append(tp / n1)
            f1.append(2 * tp / (n_pp + n1))
            auc.append((y @ ranks - n1 * (n1 + 1) / 2) / (n1 * (n - n1)))
        left -= b

    def sd(v: list[np.ndarray]) -> float:
        a = np.concatenate(v)
        a = a[np.isfinite(a)]
        return float(a.std(ddof=1)) if len(a) > 1 else math.nan

    return {"recall": sd(rec), "f1": sd(f1), "roc_auc": sd(auc)}


def cbpe_sigmas(
    p: np.ndarray,
    pred: np.ndarray,
    scores: np.ndarray,
    *,
    n_sim: int = N_SIMULATIONS,
    seed: int = 0,
) -> dict[str, float]:
    """Sampling error of each metric the window would realise, given calibrated ``p``."""
    n = len(p)
    v = p * (1 - p)
    n_pp = float(pred.sum())
    out = {
        "accuracy": math.sqrt(float(v.sum())) / n,
        "precision": math.sqrt(float(v[pred == 1].sum())) / n_pp if n_pp > 0 else math.nan,
    }
    out.update(_simulated_sigmas(p, pred, scores, n_sim, seed))
    return out


# --- the estimator -----------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """One label-free estimate of a window's metric with its sampling-error band."""

    metric: str
    value: float | None
    sigma: float | None
    lower: float | None
    upper: float | None
    n: int
    status: str = OK
    method: str = "cbpe"
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CBPEModel:
    """What CBPE keeps from the baseline: the calibration, the threshold, reference numbers.

    ``reference_realised`` are the baseline's realised metrics and ``reference_estimated`` the
    estimator applied to the baseline itself (they should agree; a gap means the calibration
    is poor). JSON-serialisable through :meth:`to_dict` for ``baselines.performance``.
    """

    calibrator: Calibrator
    threshold: float
    n_reference: int
    reference_realised: dict[str, float] = field(default_factory=dict)
    reference_estimated: dict[str, float] = field(default_factory=dict)
    calibration_check: dict[str, float] = field(default_factory=dict)
    bootstrap_grid: tuple[float, ...] = ()
    bootstrap_values: tuple[tuple[float, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "cbpe",
            "bootstrap_grid": list(self.bootstrap_grid),
            "bootstrap_values": [list(v) for v in self.bootstrap_values],
            "calibrator": self.calibrator.to_dict(),
            "threshold": self.threshold,
            "n_reference": self.n_reference,
            "reference_realised": self.reference_realised,
            "reference_estimated": self.reference_estimated,
            "calibration_check": self.calibration_check,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CBPEModel:
        return cls(
            calibrator=Calibrator.from_dict(d["calibrator"]),
            threshold=float(d["threshold"]),
            n_reference=int(d["n_reference"]),
            reference_realised=dict(d.get("reference_realised", {})),
            reference_estimated=dict(d.get("reference_estimated", {})),
            calibration_check=dict(d.get("calibration_check", {})),
            bootstrap_grid=tuple(float(x) for x in d.get("bootstrap_grid", ())),
            bootstrap_values=tuple(
                tuple(float(x) for x in row) for row in d.get("bootstrap_values", ())
            ),
        )


def _pred(scores: np.ndarray, y_pred: Any, threshold: float) -> np.ndarray:
    if y_pred is None:
        return (scores >= threshold).astype(int)
    return np.asarray(y_pred, dtype=float).astype(int)


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


BOOTSTRAP_CALIBRATORS = 30
"""Calibrators refitted on bootstrap resamples of the baseline (their spread is the
calibration's own uncertainty, added to each window's band)."""
BOOTSTRAP_GRID = 100
"""Score quantiles at which each bootstrap calibrator is stored (linear in between)."""


def bootstrap_calibrators(
    scores: np.ndarray, y: np.ndarray, kind: str, *, n: int = BOOTSTRAP_CALIBRATORS, seed: int = 0
) -> tuple[tuple[float, ...], tuple[tuple[float, ...], ...]]:
    """(grid, values): calibrators of ``kind`` refitted on ``n`` resamples, on a score grid.

    Storing each refit as its values on ``BOOTSTRAP_GRID`` score quantiles keeps the model a
    few thousand numbers whatever the calibrator (isotonic fits have hundreds of knots).
    """
    if n <= 0 or kind == "identity":
        return (), ()
    grid = np.unique(np.quantile(scores, np.linspace(0, 1, BOOTSTRAP_GRID)))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        idx = rng.integers(0, len(scores), len(scores))
        if len(np.unique(y[idx])) < 2:
            continue
        rows.append(tuple(CALIBRATORS[kind](scores[idx], y[idx])(grid).tolist()))
    return tuple(grid.tolist()), tuple(rows)


def calibration_sigmas(model: CBPEModel, scores: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Spread of each estimated metric of a window across the bootstrap calibrators."""
    if not model.bootstrap_values:
        return {m: 0.0 for m in CBPE_METRICS}
    grid = np.asarray(model.bootstrap_grid)
    draws: dict[str, list[float]] = {m: [] for m in CBPE_METRICS}
    for values in model.bootstrap_values:
        point = cbpe_point(np.interp(scores, grid, np.asarray(values)), pred, scores)
        for m in CBPE_METRICS:
            draws[m].append(point[m])
    out = {}
    for m, v in draws.items():
        a = np.asarray(v)
        a = a[np.isfinite(a)]
        out[m] = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return out


def fit_cbpe(
    y_true: Any,
    y_score: Any,
    y_pred: Any = None,
    *,
    threshold: float = 0.5,
    n_bootstrap: int = BOOTSTRAP_CALIBRATORS,
) -> CBPEModel:
    """Fit CBPE on labelled baseline rows (label 0/1, positive-class score, predicted class).

    Besides the calibrator, ``n_bootstrap`` refits on resamples of the baseline measure how
    uncertain the calibration itself is; :func:`estimate_cbpe` adds that spread to the
    sampling error of each window's band.
    """
    from .performance import binary_metrics

    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    ok = np.isfinite(y) & np.isfinite(s)
    if ok.sum() < MIN_ROWS or len(np.unique(y[ok])) < 2:
        raise ValueError(f"CBPE needs at least {MIN_ROWS} labelled baseline rows of both classes")
    y, s = y[ok], s[ok]
    pred = _pred(s, None if y_pred is None else np.asarray(y_pred)[ok], threshold)
    calibrator, check = fit_calibrator(s, y)
    realised = binary_metrics(y, pred, s, min_labels=1)
    p = calibrator(s)
    estimated = cbpe_point(p, pred, s)
    grid, boot = bootstrap_calibrators(s, y, calibrator.kind, n=n_bootstrap)
    return CBPEModel(
        bootstrap_grid=grid,
        bootstrap_values=boot,
        calibrator=calibrator,
        threshold=threshold,
        n_reference=len(y),
        reference_realised={
            k: r.value for k, r in realised.items() if k in CBPE_METRICS and r.value is not None
        },
        reference_estimated={k: v for k, v in estimated.items() if math.isfinite(v)},
        calibration_check=check,
    )


def estimate_cbpe(
    model: CBPEModel,
    y_score: Any,
    y_pred: Any = None,
    *,
    min_rows: int = MIN_ROWS,
    n_sim: int = N_SIMULATIONS,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Estimated accuracy, precision, recall, F1 and ROC AUC of a window without labels."""
    s = np.asarray(y_score, dtype=float)
    keep = np.isfinite(s)
    pred_all = _pred(s, y_pred, model.threshold)
    s, pred = s[keep], pred_all[keep]
    n = len(s)
    if n < min_rows:
        msg = f"{n} scored rows, fewer than {min_rows}"
        return {
            m: Estimate(m, None, None, None, None, n, INSUFFICIENT_DATA, message=msg)
            for m in CBPE_METRICS
        }
    p = model.calibrator(s)
    point = cbpe_point(p, pred, s)
    sig = cbpe_sigmas(p, pred, s, n_sim=n_sim, seed=seed)
    cal = calibration_sigmas(model, s, pred)
    sig = {m: math.sqrt(sig[m] ** 2 + cal[m] ** 2) for m in CBPE_METRICS}
    out: dict[str, Estimate] = {}
    for m in CBPE_METRICS:
        v, sd = point[m], sig[m]
        if not math.isfinite(v):
            out[m] = Estimate(
                m,
                None,
                None,
                None,
                None,
                n,
                INSUFFICIENT_DATA,
                message="undefined for this window (no expected positives)",
            )
            continue
        sd_f = _finite(sd)
        lo = max(0.0, v - BAND_SIGMAS * sd) if sd_f is not None else None
        hi = min(1.0, v + BAND_SIGMAS * sd) if sd_f is not None else None
        out[m] = Estimate(m, v, sd_f, lo, hi, n)
    return out


def not_available(metrics: tuple[str, ...], n: int, reason: str) -> dict[str, Estimate]:
    """Say plainly that no label-free estimate exists (e.g. multiclass, or no model fitted)."""
    return {
        m: Estimate(m, None, None, None, None, n, NOT_AVAILABLE, method="none", message=reason)
        for m in metrics
    }
