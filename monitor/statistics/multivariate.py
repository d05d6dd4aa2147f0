"""Multivariate drift: changes no single column shows (a broken correlation, a new segment).

Two detectors, both bounded in cost by subsampling (``max_rows`` per side, default 5,000):

* ``domain_classifier_drift``: a gradient-boosted classifier learns to tell reference rows from
  current rows; its cross-validated ROC AUC is 0.5 when they are indistinguishable. Under no
  drift the out-of-fold AUC is approximately normal around 0.5 with the Mann-Whitney variance
  ``(n1 + n2 + 1) / (12 n1 n2)``, which gives a p-value; drift is flagged when that p-value is
  below ``alpha`` *and* the AUC exceeds ``0.5 + min_auc_gain`` (practical tolerance, as for
  columns). Features are ranked by permutation importance (AUC lost when shuffled).
* ``pca_reconstruction_drift`` (as NannyML does): standardise, fit PCA on half the reference
  keeping 65% of the variance, and measure the mean reconstruction error of rows. The other
  half of the reference gives the error's mean and spread under no drift; a window drifts
  when its mean error exceeds the upper ``z``-sigma bound for its size *and* is at least
  ``min_relative_increase`` above the reference's. Features are ranked by the increase of
  their mean squared residual.

scikit-learn is imported inside the functions: the rest of ``monitor.statistics`` needs only
numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from monitor.errors import InputError

from .engine import infer_column_kind
from .profiles import _is_null, as_1d, category_label

MAX_ROWS = 5_000
"""Rows per side used by the multivariate detectors (a seeded uniform subsample)."""
PCA_VARIANCE = 0.65
"""Share of variance the PCA keeps (NannyML's default)."""
MIN_ROWS = 50
"""Fewer rows than this on a side: not enough data for a multivariate verdict."""


@dataclass
class MultivariateDriftResult:
    """Verdict of a multivariate detector, with the features that contribute most."""

    method: str
    statistic: float | None
    threshold: float | None
    drifted: bool
    p_value: float | None
    top_features: list[tuple[str, float]]
    n_reference: int
    n_current: int
    status: str = "ok"
    details: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        d = asdict(self)
        d["top_features"] = [{"feature": f, "contribution": c} for f, c in self.top_features]
        return d


def _encode(
    reference: Any, current: Any, columns: Sequence[str] | None, max_rows: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """Numeric matrices of both sides: numbers as is (NaN -> reference median), categories
    as their reference share (unseen -> 0), so both detectors see comparable features."""
    if isinstance(reference, np.ndarray) and isinstance(current, np.ndarray):
        names = list(columns) if columns else [f"x{i}" for i in range(reference.shape[1])]
        reference = {n: reference[:, i] for i, n in enumerate(names)}
        current = {n: current[:, i] for i, n in enumerate(names)}
    ref_cols = [str(c) for c in (reference.columns if hasattr(reference, "columns") else reference)]
    cur_cols = set(str(c) for c in (current.columns if hasattr(current, "columns") else current))
    names = list(columns) if columns else [c for c in ref_cols if c in cur_cols]
    rng = np.random.default_rng(seed)
    n_r = len(as_1d(reference[names[0]])) if names else 0
    n_c = len(as_1d(current[names[0]])) if names else 0
    pick_r = np.sort(rng.choice(n_r, min(n_r, max_rows), replace=False))
    pick_c = np.sort(rng.choice(n_c, min(n_c, max_rows), replace=False))
    used, ref_out, cur_out = [], [], []
    for name in names:
        r, c = as_1d(reference[name])[pick_r], as_1d(current[name])[pick_c]
        kind = infer_column_kind(r)
        if kind == "num":
            rf, cf = r.astype(np.float64), c.astype(np.float64)
            fill = float(np.nanmedian(rf)) if np.isfinite(rf).any() else 0.0
            rf[~np.isfinite(rf)] = fill
            cf[~np.isfinite(cf)] = fill
        elif kind == "cat":
            labels_r = ["\0null" if _is_null(v) else category_label(v) for v in r.tolist()]
            labels_c = ["\0null" if _is_null(v) else category_label(v) for v in c.tolist()]
            keys, counts = np.unique(labels_r, return_counts=True)
            share = dict(zip(keys.tolist(), (counts / counts.sum()).tolist(), strict=True))
            rf = np.array([share[v] for v in labels_r])
            cf = np.array([share.get(v, 0.0) for v in labels_c])
        else:
            continue
        used.append(name)
        ref_out.append(rf)
        cur_out.append(cf)
    if not used:
        raise InputError("no numeric or categorical columns for multivariate drift")
    return np.column_stack(ref_out), np.column_stack(cur_out), used


def rank_auc(y: NDArray[np.float64], score: NDArray[np.float64]) -> float:
    """ROC AUC of a 0/1 target as the Mann-Whitney U of the scores (ties count one half).

    Equal to sklearn's ``roc_auc_score`` (tested); ~100x cheaper per call because it skips
    sklearn's input validation and target-type inference, which dominated the ~60 scorings
    of a permutation importance (3 s of a 10 s domain classifier, measured).
    """
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InputError("AUC needs both classes")
    ranks = stats.rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_scorer(estimator: Any, x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """``scoring`` callable for ``permutation_importance``: AUC of the positive class."""
    return rank_auc(y, estimator.predict_proba(x)[:, 1])


def _insufficient(method: str, n_r: int, n_c: int) -> MultivariateDriftResult:
    return MultivariateDriftResult(
        method, None, None, False, None, [], n_r, n_c, status="insufficient_data"
    )


def domain_classifier_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    alpha: float = 0.01,
    min_auc_gain: float = 0.05,
    max_rows: int = MAX_ROWS,
    folds: int = 3,
    top: int = 5,
    seed: int = 0,
) -> MultivariateDriftResult:
    """Domain-classifier drift: cross-validated AUC of telling reference from current.

    Parameters
    ----------
    reference, current : DataFrame, Mapping[str, array-like] or 2-d ndarray
        The two samples (arrays need equal column counts; ``columns`` names them).
    columns : sequence of str, optional
        Features to use (default: common columns).
    alpha : float
        Level of the test of AUC = 0.5.
    min_auc_gain : float
        Practical tolerance: drift needs AUC > 0.5 + this.
    max_rows : int
        Subsample size per side.
    folds : int
        Cross-validation folds.
    top : int
        Number of top contributing features reported.
    seed : int
        Seed of the subsample, folds and model.

    Returns
    -------
    MultivariateDriftResult
    """
    import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime the limit must see
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # One OpenMP thread: the model is small, and on a busy 2-core host more threads than
    # cores make gradient boosting ~20x slower (measured), not faster.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _domain_classifier(
            reference, current, columns, alpha, min_auc_gain, max_rows, folds, top, seed
        )


def _domain_classifier(
    reference: Any,
    current: Any,
    columns: Sequence[str] | None,
    alpha: float,
    min_auc_gain: float,
    max_rows: int,
    folds: int,
    top: int,
    seed: int,
) -> MultivariateDriftResult:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_validate

    x_r, x_c, names = _encode(reference, current, columns, max_rows, seed)
    n_r, n_c = len(x_r), len(x_c)
    if min(n_r, n_c) < MIN_ROWS:
        return _insufficient("domain_classifier", n_r, n_c)
    x = np.vstack([x_r, x_c])
    y = np.r_[np.zeros(n_r), np.ones(n_c)]
    model = HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=seed
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # out-of-fold probabilities as cross_val_predict computes them, keeping the fold models:
    # the first one and its held-out rows then rank the features (no extra fit)
    fits = cross_validate(
        model, x, y, cv=cv, scoring=_auc_scorer, return_estimator=True, return_indices=True
    )
    proba = np.empty(len(y))
    for est, test in zip(fits["estimator"], fits["indices"]["test"], strict=True):
        proba[test] = est.predict_proba(x[test])[:, 1]
    auc = float(roc_auc_score(y, proba))
    sd = math.sqrt((n_r + n_c + 1) / (12.0 * n_r * n_c))
    p = float(stats.norm.sf((auc - 0.5) / sd))
    threshold = max(0.5 + float(stats.norm.isf(alpha)) * sd, 0.5 + min_auc_gain)
    held_out = fits["indices"]["test"][0]
    imp = permutation_importance(
        fits["estimator"][0],
        x[held_out],
        y[held_out],
        scoring=_auc_scorer,
        n_repeats=3,
        random_state=seed,
    )
    order = np.argsort(-imp.importances_mean)[:top]
    ranked = [(names[i], float(imp.importances_mean[i])) for i in order]
    return MultivariateDriftResult(
        "domain_classifier",
        auc,
        threshold,
        auc > threshold,
        p,
        ranked,
        n_r,
        n_c,
        details={"null_sd": sd},
    )


def pca_reconstruction_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    z: float = 3.0,
    min_relative_increase: float = 0.05,
    variance: float = PCA_VARIANCE,
    max_rows: int = MAX_ROWS,
    top: int = 5,
    seed: int = 0,
) -> MultivariateDriftResult:
    """PCA reconstruction-error drift (NannyML's data reconstruction drift).

    Parameters
    ----------
    reference, current : DataFrame, Mapping[str, array-like] or 2-d ndarray
        The two samples.
    columns : sequence of str, optional
        Features to use (default: common columns).
    z : float
        Width of the no-drift band of the window's mean error, in standard errors.
    min_relative_increase : float
        Practical tolerance: the error must grow by at least this share.
    variance : float
        Share of variance kept by the PCA.
    max_rows, top, seed : int
        Subsample size per side, features reported, seed.

    Returns
    -------
    MultivariateDriftResult
    """
    from sklearn.decomposition import PCA

    x_r, x_c, names = _encode(reference, current, columns, max_rows, seed)
    n_r, n_c = len(x_r), len(x_c)
    if n_r < 2 * MIN_ROWS or n_c < MIN_ROWS:
        return _insufficient("pca_reconstruction", n_r, n_c)
    rng = np.random.default_rng(seed)
    half = rng.permutation(n_r)
    fit_rows, hold_rows = x_r[half[: n_r // 2]], x_r[half[n_r // 2 :]]
    mu = fit_rows.mean(axis=0)
    sd = fit_rows.std(axis=0)
    sd[sd == 0] = 1.0

    def standardise(m: NDArray[np.float64]) -> NDArray[np.float64]:
        return (m - mu) / sd

    pca = PCA(
        n_components=variance if len(names) > 1 else None, svd_solver="full", random_state=seed
    )
    pca.fit(standardise(fit_rows))

    def residuals(m: NDArray[np.float64]) -> NDArray[np.float64]:
        s = standardise(m)
        return s - pca.inverse_transform(pca.transform(s))

    res_ref, res_cur = residuals(hold_rows), residuals(x_c)
    err_ref = np.sqrt((res_ref**2).sum(axis=1))
    err_cur = np.sqrt((res_cur**2).sum(axis=1))
    mean_ref, sd_ref = float(err_ref.mean()), float(err_ref.std(ddof=1))
    stat = float(err_cur.mean())
    se = sd_ref * math.sqrt(1.0 / len(err_cur) + 1.0 / len(err_ref))
    threshold = max(mean_ref + z * se, mean_ref * (1 + min_relative_increase))
    p = float(stats.norm.sf((stat - mean_ref) / se)) if se > 0 else None
    contrib = (res_cur**2).mean(axis=0) - (res_ref**2).mean(axis=0)
    order = np.argsort(-contrib)[:top]
    ranked = [(names[i], float(contrib[i])) for i in order]
    return MultivariateDriftResult(
        "pca_reconstruction",
        stat,
        threshold,
        stat > threshold,
        p,
        ranked,
        n_r,
        n_c,
        details={"reference_error": mean_ref, "components": float(pca.n_components_)},
    )


def multivariate_drift(
    reference: Any, current: Any, **kwargs: Any
) -> list[MultivariateDriftResult]:
    """Both detectors with shared arguments (``columns``, ``max_rows``, ``seed``, ``top``)."""
    shared = {k: v for k, v in kwargs.items() if k in ("columns", "max_rows", "seed", "top")}
    return [
        domain_classifier_drift(reference, current, **shared),
        pca_reconstruction_drift(reference, current, **shared),
    ]


__all__ = [
    "MultivariateDriftResult",
    "domain_classifier_drift",
    "multivariate_drift",
    "pca_reconstruction_drift",
]
