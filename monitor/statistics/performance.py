"""Realised performance from labels: classification and regression metrics with intervals.

Every metric is a small function in :data:`CLASSIFICATION_METRICS` or :data:`REGRESSION_METRICS`
(one entry adds one), returning a :class:`MetricResult` that says what the number is, how sure
we are (``ci_low``/``ci_high`` at ``confidence``) and whether there were enough labels at all.

Intervals are analytic where the sampling distribution is known and sound:

* accuracy, precision, recall -- Wilson score interval of a binomial proportion (precision's
  denominator is the number of predicted positives, recall's the number of actual positives);
* ROC AUC -- DeLong's variance from the structural components (fast midrank algorithm);
* log loss, MAE, MAPE -- normal interval of a mean of per-row losses; RMSE -- the MSE's interval
  mapped through the square root;

and a bounded, seeded bootstrap elsewhere (F1, macro averages, calibration error, R2). For
metrics that depend only on the confusion matrix the bootstrap resamples the matrix's cells from
a multinomial, which is the row bootstrap exactly and costs nothing.

A window with fewer than ``min_labels`` labels gets ``status="insufficient_data"`` and no value:
a dashboard should say "not enough labels yet" rather than plot noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

OK = "ok"
INSUFFICIENT_DATA = "insufficient_data"

MIN_LABELS = 30
"""Default minimum number of labelled rows before a window's performance is reported."""
N_BOOTSTRAP = 200
_BOOT_CHUNK = 2_000_000  # max resampled values held in memory at once
_EPS = float(np.finfo(np.float64).eps)

HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "calibration_error": False,
    "mae": False,
    "rmse": False,
    "mape": False,
    "r2": True,
}


@dataclass(frozen=True)
class MetricResult:
    """One performance number of one window (or segment, or baseline)."""

    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: str = OK
    ci_method: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Options:
    """Knobs shared by the metric functions."""

    confidence: float = 0.95
    n_bootstrap: int = N_BOOTSTRAP
    seed: int = 0
    n_bins: int = 10  # calibration error bins (uniform on [0, 1], as sklearn's calibration_curve)

    @property
    def z(self) -> float:
        return float(stats.norm.ppf(0.5 + self.confidence / 2))


def _ok(metric: str, value: float, lo: float | None, hi: float | None, n: int, how: str):
    return MetricResult(metric, float(value), _f(lo), _f(hi), n, OK, how)


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def insufficient(metric: str, n: int, message: str) -> MetricResult:
    """A result that says why there is no number."""
    return MetricResult(metric, None, None, None, n, INSUFFICIENT_DATA, None, message)


# --- interval helpers ----------------------------------------------------------------------


def wilson_interval(k: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def mean_interval(values: np.ndarray, z: float) -> tuple[float, float, float]:
    """Mean of per-row values with its normal (CLT) interval."""
    m = float(values.mean())
    if len(values) < 2:
        return m, math.nan, math.nan
    se = float(values.std(ddof=1)) / math.sqrt(len(values))
    return m, m - z * se, m + z * se


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return (math.nan, math.nan)
    a = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [a, 100 - a])
    return float(lo), float(hi)


def bootstrap_rows(
    stat: Callable[[np.ndarray], np.ndarray], n: int, opts: Options
) -> tuple[float, float]:
    """Percentile interval of ``stat`` over row resamples.

    ``stat`` takes an index matrix of shape (b, n) and returns b statistics, so it is vectorised;
    resamples are drawn in chunks so memory stays bounded whatever ``n``.
    """
    rng = np.random.default_rng(opts.seed)
    per_chunk = max(1, _BOOT_CHUNK // max(n, 1))
    out: list[np.ndarray] = []
    left = opts.n_bootstrap
    while left > 0:
        b = min(left, per_chunk)
        out.append(np.asarray(stat(rng.integers(0, n, size=(b, n))), dtype=float))
        left -= b
    return _percentile_interval(np.concatenate(out), opts.confidence)


def bootstrap_cells(
    cells: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], opts: Options
) -> tuple[float, float]:
    """Percentile interval of a confusion-matrix statistic: the row bootstrap of the cells.

    ``stat`` gets an array of shape (b, *cells.shape) of resampled counts.
    """
    rng = np.random.default_rng(opts.seed)
    flat = cells.ravel().astype(float)
    n = int(flat.sum())
    draws = rng.multinomial(n, flat / n, size=opts.n_bootstrap).reshape(
        (opts.n_bootstrap, *cells.shape)
    )
    return _percentile_interval(np.asarray(stat(draws), dtype=float), opts.confidence)


# --- binary classification -------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryData:
    """Labels as 0/1, predicted classes as 0/1 and (optionally) the positive-class score."""

    y: np.ndarray
    pred: np.ndarray
    score: np.ndarray | None

    @property
    def n(self) -> int:
        return len(self.y)


def _confusion(d: BinaryData) -> tuple[int, int, int, int]:
    tp = int(np.sum((d.pred == 1) & (d.y == 1)))
    fp = int(np.sum((d.pred == 1) & (d.y == 0)))
    fn = int(np.sum((d.pred == 0) & (d.y == 1)))
    return tp, fp, fn, d.n - tp - fp - fn


def binary_accuracy(d: BinaryData, o: Options) -> MetricResult:
    tp, _fp, _fn, tn = _confusion(d)
    lo, hi = wilson_interval(tp + tn, d.n, o.z)
    return _ok("accuracy", (tp + tn) / d.n, lo, hi, d.n, "wilson")


def binary_precision(d: BinaryData, o: Options) -> MetricResult:
    tp, fp, _fn, _tn = _confusion(d)
    if tp + fp == 0:
        return insufficient("precision", d.n, "no predicted positives")
    lo, hi = wilson_interval(tp, tp + fp, o.z)
    return _ok("precision", tp / (tp + fp), lo, hi, d.n, "wilson")


def binary_recall(d: BinaryData, o: Options) -> MetricResult:
    tp, _fp, fn, _tn = _confusion(d)
    if tp + fn == 0:
        return insufficient("recall", d.n, "no actual positives")
    lo, hi = wilson_interval(tp, tp + fn, o.z)
    return _ok("recall", tp / (tp + fn), lo, hi, d.n, "wilson")


def _f1_of_cells(c: np.ndarray) -> np.ndarray:
    tp, fp, fn = c[..., 0], c[..., 1], c[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(2 * tp / (2 * tp + fp + fn))


def binary_f1(d: BinaryData, o: Options) -> MetricResult:
    cells = np.array(_confusion(d), dtype=float)
    if cells[0] + cells[1] + cells[2] == 0:
        return insufficient("f1", d.n, "no predicted or actual positives")
    lo, hi = bootstrap_cells(cells, _f1_of_cells, o)
    return _ok("f1", float(_f1_of_cells(cells)), lo, hi, d.n, "bootstrap")


def delong_auc(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong variance (Sun & Xu's midrank algorithm)."""
    pos, neg = score[y == 1], score[y == 0]
    m, n = len(pos), len(neg)
    tz = stats.rankdata(np.concatenate([pos, neg]))
    tx, ty = stats.rankdata(pos), stats.rankdata(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1 - (tz[m:] - ty) / m
    var = (v10.var(ddof=1) if m > 1 else 0.0) / m + (v01.var(ddof=1) if n > 1 else 0.0) / n
    return float(auc), float(var)


def binary_roc_auc(d: BinaryData, o: Options) -> MetricResult:
    assert d.score is not None
    n_pos = int(d.y.sum())
    if n_pos == 0 or n_pos == d.n:
        return insufficient("roc_auc", d.n, "labels hold one class only")
    auc, var = delong_auc(d.y, d.score)
    half = o.z * math.sqrt(var)
    return _ok("roc_auc", auc, max(0.0, auc - half), min(1.0, auc + half), d.n, "delong")


def binary_log_loss(d: BinaryData, o: Options) -> MetricResult:
    assert d.score is not None
    p = np.clip(d.score, _EPS, 1 - _EPS)
    losses = -(d.y * np.log(p) + (1 - d.y) * np.log1p(-p))
    m, lo, hi = mean_interval(losses, o.z)
    return _ok("log_loss", m, max(0.0, lo), hi, d.n, "normal")


def expected_calibration_error(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int
) -> np.ndarray:
    """ECE on uniform bins (sklearn's calibration_curve binning), vectorised over rows of 2-D input.

    ``correct`` is the outcome (label for binary, top-label hit for multiclass) and
    ``confidence`` the predicted probability of that outcome.
    """
    correct = np.atleast_2d(correct).astype(float)
    confidence = np.atleast_2d(confidence).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence)
    b = correct.shape[0]
    offset = (np.arange(b) * n_bins)[:, None]
    idx = (bins + offset).ravel()
    gap = np.bincount(idx, weights=(correct - confidence).ravel(), minlength=b * n_bins)
    return np.abs(gap.reshape(b, n_bins)).sum(axis=1) / correct.shape[1]


def binary_calibration_error(d: BinaryData, o: Options) -> MetricResult:
    assert d.score is not None
    y, s = d.y.astype(float), d.score

    def stat(idx: np.ndarray) -> np.ndarray:
        return expected_calibration_error(y[idx], s[idx], o.n_bins)

    value = float(expected_calibration_error(y, s, o.n_bins)[0])
    lo, hi = bootstrap_rows(stat, d.n, o)
    return _ok("calibration_error", value, lo, hi, d.n, "bootstrap")


_NEEDS_SCORE = {"roc_auc", "log_loss", "calibration_error"}

CLASSIFICATION_METRICS: dict[str, Callable[[BinaryData, Options], MetricResult]] = {
    "accuracy": binary_accuracy,
    "precision": binary_precision,
    "recall": binary_recall,
    "f1": binary_f1,
    "roc_auc": binary_roc_auc,
    "log_loss": binary_log_loss,
    "calibration_error": binary_calibration_error,
}


def binary_metrics(
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    *,
    threshold: float = 0.5,
    min_labels: int = MIN_LABELS,
    options: Options | None = None,
) -> dict[str, MetricResult]:
    """Binary classification metrics of labelled rows.

    ``y_true`` holds 0/1 (or booleans); ``y_pred`` the predicted class 0/1, derived from
    ``y_score >= threshold`` when omitted; ``y_score`` the positive-class probability (metrics
    that need it are left out without it). Rows with a missing label must be removed first.
    """
    o = options or Options()
    y = np.asarray(y_true, dtype=float)
    score = None if y_score is None else np.asarray(y_score, dtype=float)
    if y_pred is None:
        if score is None:
            raise ValueError("binary_metrics needs y_pred or y_score")
        pred = (score >= threshold).astype(int)
    else:
        pred = np.asarray(y_pred, dtype=float).astype(int)
    y_int = y.astype(int)
    if not np.all((y_int == 0) | (y_int == 1)) or np.any(y != y_int):
        raise ValueError("binary labels must be 0 or 1")
    data = BinaryData(y_int, pred, score)
    names = [k for k in CLASSIFICATION_METRICS if score is not None or k not in _NEEDS_SCORE]
    if data.n < min_labels:
        msg = f"{data.n} labelled rows, fewer than {min_labels}"
        return {k: insufficient(k, data.n, msg) for k in names}
    return {k: CLASSIFICATION_METRICS[k](data, o) for k in names}


# --- multiclass ---------------------------------------------------------------------------


def _macro_prf(cells: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Macro precision, recall, F1 of (..., k, k + 1) confusion counts (rows = truth).

    The last column counts predictions outside the known classes (a miss for every class).
    Classes with no predicted (or actual) rows contribute 0, as sklearn's zero_division=0.
    """
    sq = cells[..., :k]
    tp = np.diagonal(sq, axis1=-2, axis2=-1)
    pred_pos = sq.sum(axis=-2)
    true_pos = cells.sum(axis=-1)
    den = pred_pos + true_pos
    p = np.where(pred_pos > 0, tp / np.where(pred_pos > 0, pred_pos, 1), 0.0)
    r = np.where(true_pos > 0, tp / np.where(true_pos > 0, true_pos, 1), 0.0)
    f = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), 0.0)
    return p.mean(axis=-1), r.mean(axis=-1), f.mean(axis=-1)


def multiclass_metrics(
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    *,
    classes: list[Any],
    min_labels: int = MIN_LABELS,
    options: Options | None = None,
) -> dict[str, MetricResult]:
    """Multiclass metrics: accuracy, macro precision/recall/F1 and, given ``proba`` (columns in
    ``classes`` order), one-vs-rest macro ROC AUC, log loss and top-label calibration error."""
    o = options or Options()
    index = {c: i for i, c in enumerate(classes)}
    yt = np.array([index.get(v, -1) for v in np.asarray(y_true, dtype=object)])
    yp = np.array([index.get(v, -1) for v in np.asarray(y_pred, dtype=object)])
    if np.any(yt < 0):
        raise ValueError("labels outside the model's classes")
    n, k = len(yt), len(classes)
    names = ["accuracy", "precision", "recall", "f1"]
    if proba is not None:
        names += ["roc_auc", "log_loss", "calibration_error"]
    if n < min_labels:
        msg = f"{n} labelled rows, fewer than {min_labels}"
        return {m: insufficient(m, n, msg) for m in names}
    known = yp >= 0
    hits = int(np.sum(yt == yp))
    out: dict[str, MetricResult] = {}
    lo, hi = wilson_interval(hits, n, o.z)
    out["accuracy"] = _ok("accuracy", hits / n, lo, hi, n, "wilson")
    # an unknown predicted class is a miss for every class: keep it as an extra column
    cm_full = np.zeros((k, k + 1))
    np.add.at(cm_full, (yt, np.where(known, yp, k)), 1)

    point = _macro_prf(cm_full, k)
    for i, name in enumerate(("precision", "recall", "f1")):
        lo, hi = bootstrap_cells(cm_full, lambda c, i=i: _macro_prf(c, k)[i], o)  # type: ignore[misc]
        out[name] = _ok(name, float(point[i]), lo, hi, n, "bootstrap")
    if proba is not None:
        P = np.asarray(proba, dtype=float)
        if P.shape != (n, k):
            raise ValueError(f"proba must have shape ({n}, {k})")
        out.update(_multiclass_score_metrics(yt, P, o))
    return out


def _ovr_auc(yt: np.ndarray, P: np.ndarray) -> float:
    aucs = []
    for j in range(P.shape[1]):
        y = (yt == j).astype(int)
        if 0 < y.sum() < len(y):
            aucs.append(delong_auc(y, P[:, j])[0])
    return float(np.mean(aucs)) if aucs else math.nan


def _multiclass_score_metrics(yt: np.ndarray, P: np.ndarray, o: Options) -> dict[str, MetricResult]:
    n, k = P.shape
    out: dict[str, MetricResult] = {}
    present = np.unique(yt)
    if len(present) < k:
        out["roc_auc"] = insufficient("roc_auc", n, "some classes have no labels")
    else:
        auc = _ovr_auc(yt, P)
        # bounded bootstrap of the whole OvR average (few resamples: each is k rank sorts)
        rng = np.random.default_rng(o.seed)
        boots = []
        for _ in range(min(o.n_bootstrap, 100)):
            idx = rng.integers(0, n, n)
            boots.append(_ovr_auc(yt[idx], P[idx]))
        lo, hi = _percentile_interval(np.array(boots), o.confidence)
        out["roc_auc"] = _ok("roc_auc", auc, lo, hi, n, "bootstrap")
    p_true = np.clip(P[np.arange(n), yt] / P.sum(axis=1), _EPS, 1 - _EPS)
    m, lo, hi = mean_interval(-np.log(p_true), o.z)
    out["log_loss"] = _ok("log_loss", m, max(0.0, lo), hi, n, "normal")
    conf = P.max(axis=1)
    correct = (P.argmax(axis=1) == yt).astype(float)
    ece = float(expected_calibration_error(correct, conf, o.n_bins)[0])
    lo, hi = bootstrap_rows(
        lambda idx: expected_calibration_error(correct[idx], conf[idx], o.n_bins), n, o
    )
    out["calibration_error"] = _ok("calibration_error", ece, lo, hi, n, "bootstrap")
    return out


# --- regression ---------------------------------------------------------------------------


def regression_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    min_labels: int = MIN_LABELS,
    options: Options | None = None,
) -> dict[str, MetricResult]:
    """MAE, RMSE, MAPE (sklearn's definition, a fraction not a percent) and R2."""
    o = options or Options()
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    n = len(y)
    names = ["mae", "rmse", "mape", "r2"]
    if n < min_labels:
        msg = f"{n} labelled rows, fewer than {min_labels}"
        return {m: insufficient(m, n, msg) for m in names}
    err = y - p
    out: dict[str, MetricResult] = {}
    m, lo, hi = mean_interval(np.abs(err), o.z)
    out["mae"] = _ok("mae", m, max(0.0, lo), hi, n, "normal")
    m, lo, hi = mean_interval(err * err, o.z)
    out["rmse"] = _ok("rmse", math.sqrt(m), math.sqrt(max(0.0, lo)), math.sqrt(hi), n, "normal")
    m, lo, hi = mean_interval(np.abs(err) / np.maximum(np.abs(y), _EPS), o.z)
    out["mape"] = _ok("mape", m, max(0.0, lo), hi, n, "normal")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0:
        out["r2"] = insufficient("r2", n, "labels are constant")
    else:
        r2 = 1 - float(np.sum(err * err)) / ss_tot

        def stat(idx: np.ndarray) -> np.ndarray:
            yy, ee = y[idx], err[idx]
            tot = ((yy - yy.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.asarray(1 - (ee * ee).sum(axis=1) / tot)

        lo, hi = bootstrap_rows(stat, n, o)
        out["r2"] = _ok("r2", r2, lo, hi, n, "bootstrap")
    return out


# --- labels: coverage, delay, comparison with the baseline ----------------------------------


def label_coverage(n_predictions: int, n_labelled: int, confidence: float = 0.95) -> MetricResult:
    """Share of a window's predictions that have a label, with its Wilson interval."""
    if n_predictions <= 0:
        return insufficient("label_coverage", 0, "no predictions")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    lo, hi = wilson_interval(n_labelled, n_predictions, z)
    return _ok("label_coverage", n_labelled / n_predictions, lo, hi, n_predictions, "wilson")


def label_delay(delay_seconds: Any) -> dict[str, float | int | None]:
    """Distribution of time from prediction to label: count, mean, p50, p90, max (seconds)."""
    d = np.asarray(delay_seconds, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "max": None}
    p50, p90 = np.percentile(d, [50, 90])
    return {
        "n": len(d),
        "mean": float(d.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "max": float(d.max()),
    }


def compare_to_baseline(result: MetricResult, baseline_value: float | None) -> dict[str, Any]:
    """Change against the baseline's value and whether the interval says it got worse.

    ``worse`` is True only when the whole interval lies on the bad side of the baseline value,
    so sampling noise in a small window does not read as degradation.
    """
    if result.value is None or baseline_value is None:
        return {"baseline": baseline_value, "delta": None, "worse": None}
    higher = HIGHER_IS_BETTER.get(result.metric, True)
    delta = result.value - baseline_value
    worse: bool | None = None
    if result.ci_low is not None and result.ci_high is not None:
        worse = result.ci_high < baseline_value if higher else result.ci_low > baseline_value
    return {"baseline": baseline_value, "delta": delta, "worse": worse}
