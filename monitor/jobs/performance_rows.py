"""Pure part of the performance job: a labelled window in, result rows out (no I/O).

Realised metrics come from the labelled rows, estimated ones from all rows (CBPE for binary
classifiers with a probability, DLE for regression when the baseline fitted one); each realised
row carries the estimate beside it and each estimate the realised value, so "estimated then
realised" reads from one row. Baseline values are the yardstick: a metric ``drifted`` (degraded)
only when its whole interval is on the bad side of the baseline's value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.jobs.labels import LabelledWindow
from monitor.jobs.result_rows import finite
from monitor.jobs.result_rows import result_row as row
from monitor.statistics import estimation, performance
from monitor.statistics.dle import DLE_METRICS, LossModel, estimate_dle
from monitor.statistics.profiles import category_label
from monitor.storage import vocabulary as v


@dataclass
class ModelInfo:
    """What the job knows about the model and its baseline for one window."""

    task: str | None
    positive: str = "1"
    classes: list[str] | None = None
    baseline_n: int | None = None
    baseline_performance: dict[str, Any] = field(default_factory=dict)
    estimator: dict[str, Any] | None = None
    min_labels: int = performance.MIN_LABELS
    min_segment_rows: int = 200


# --- labels and predictions as the metrics want them ---------------------------------------------


def _labels(values_num: NDArray[np.float64], values_cat: list[str | None]) -> list[str | None]:
    return [
        c if c is not None else (category_label(float(n)) if math.isfinite(n) else None)
        for n, c in zip(values_num.tolist(), values_cat, strict=True)
    ]


@dataclass
class Prepared:
    """Per-row arrays for the task: ``y`` (labels; NaN/None unlabelled), ``pred``, ``score``."""

    task: str
    labelled: NDArray[np.bool_]
    y: Any
    pred: Any
    score: NDArray[np.float64] | None
    proba: NDArray[np.float64] | None = None


def prepare(w: LabelledWindow, info: ModelInfo, threshold: float) -> Prepared | None:
    task = info.task
    if task is None or w.n == 0:
        return None
    has_score = bool(np.isfinite(w.score).any())
    score = w.score if has_score else None
    if task == "regression":
        pred = np.where(np.isfinite(w.prediction_num), w.prediction_num, w.score)
        y = w.actual_num
        return Prepared(task, w.labelled & np.isfinite(y) & np.isfinite(pred), y, pred, score)
    ys = _labels(w.actual_num, w.actual_cat)
    preds = _labels(w.prediction_num, w.prediction_cat)
    labelled = w.labelled & np.array([y is not None for y in ys])
    if task == "binary":
        y = np.array([1.0 if lab == info.positive else 0.0 for lab in ys])
        have_pred = np.array([p is not None for p in preds])
        pred = np.array([1 if p == info.positive else 0 for p in preds])
        if score is not None:
            pred = np.where(have_pred, pred, (np.nan_to_num(score) >= threshold).astype(int))
            labelled &= have_pred | np.isfinite(score)
        else:
            labelled &= have_pred
        return Prepared(task, labelled, y, pred, score)
    proba = None
    if info.classes and all(p is not None for p in w.proba):
        k = len(info.classes)
        rows = [np.array(str(p).split(","), dtype=float) for p in w.proba]
        if all(len(r) == k for r in rows):
            proba = np.vstack(rows)
    labelled &= np.array([p is not None for p in preds])
    return Prepared(
        task, labelled, np.array(ys, dtype=object), np.array(preds, dtype=object), score, proba
    )


# --- realised -----------------------------------------------------------------------------


def realised(p: Prepared, mask: NDArray[np.bool_], info: ModelInfo) -> dict[str, Any]:
    m = mask & p.labelled
    if p.task == "regression":
        return performance.regression_metrics(p.y[m], p.pred[m], min_labels=info.min_labels)
    if p.task == "binary":
        score = None
        if p.score is not None and np.isfinite(p.score[m]).all():
            score = p.score[m]
        return performance.binary_metrics(p.y[m], p.pred[m], score, min_labels=info.min_labels)
    classes = list(info.classes or sorted({str(x) for x in p.y[m]}))
    proba = p.proba[m] if p.proba is not None else None
    known = np.isin(p.y[m], classes)
    if not known.all():  # labels outside the classes: count them as misses, not as errors
        classes = classes + sorted({str(x) for x in p.y[m][~known]})
        proba = None
    return performance.multiclass_metrics(
        p.y[m], p.pred[m], proba, classes=classes, min_labels=info.min_labels
    )


# --- estimated -----------------------------------------------------------------------------


def estimated(
    p: Prepared | None,
    mask: NDArray[np.bool_],
    info: ModelInfo,
    features: tuple[dict[str, Any], dict[str, Any]] | None,
) -> dict[str, estimation.Estimate]:
    est = info.estimator or {}
    n = int(mask.sum())
    if p is None:
        return {}
    if p.task == "binary":
        if est.get("method") != "cbpe":
            reason = est.get("reason") or (
                "no CBPE calibration: the baseline needs a target and a probability column"
            )
            return estimation.not_available(estimation.CBPE_METRICS, n, str(reason))
        if p.score is None:
            return estimation.not_available(
                estimation.CBPE_METRICS, n, "predictions carry no probability"
            )
        model = estimation.CBPEModel.from_dict(est)
        # same minimum as realised metrics: the 3-sigma band shows how uncertain a small window is
        return estimation.estimate_cbpe(
            model, p.score[mask], p.pred[mask], min_rows=info.min_labels
        )
    if p.task == "regression":
        if est.get("method") != "dle" or features is None:
            reason = est.get("reason") or "no loss model: the baseline needs a target"
            return estimation.not_available(DLE_METRICS, n, str(reason))
        num, cat = features
        try:
            loss = LossModel.from_dict(est)
        except ValueError as exc:  # fitted by an older version: say so on the page
            return estimation.not_available(DLE_METRICS, n, str(exc))
        return estimate_dle(
            loss,
            {k: val[mask] for k, val in num.items()},
            {k: val[mask] for k, val in cat.items()},
            p.pred[mask],
            min_rows=info.min_labels,
        )
    return estimation.not_available(
        ("accuracy",), n, "label-free estimation covers binary classification and regression"
    )


# --- rows ----------------------------------------------------------------------------------


def performance_rows(
    w: LabelledWindow,
    info: ModelInfo,
    features: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Realised and estimated performance rows for all traffic and each large segment."""
    est_cfg = info.estimator or {}
    threshold = float(est_cfg.get("threshold", 0.5))
    p = prepare(w, info, threshold)
    out: list[dict[str, Any]] = []
    if p is None:
        return out
    segments: list[tuple[str, NDArray[np.bool_]]] = [("", np.ones(w.n, dtype=bool))]
    segments += w.segment_masks(info.min_segment_rows)
    for segment, mask in segments:
        real = realised(p, mask, info)
        ests = estimated(p, mask, info, features)
        coverage = float((mask & p.labelled).sum()) / max(int(mask.sum()), 1)
        for name, r in real.items():
            base = finite(info.baseline_performance.get(name))
            cmp = performance.compare_to_baseline(r, base)
            e = ests.get(name)
            out.append(
                row(
                    v.PERFORMANCE,
                    name,
                    r.value,
                    segment=segment,
                    ci_low=r.ci_low,
                    ci_high=r.ci_high,
                    threshold=base,
                    drifted=cmp["worse"],
                    effect_size=cmp["delta"],
                    status=r.status,
                    n_current=r.n,
                    n_reference=info.baseline_n,
                    details={
                        "ci_method": r.ci_method,
                        "message": r.message,
                        "baseline": base,
                        "label_coverage": coverage,
                        "estimated": e.value if e is not None else None,
                    },
                )
            )
        ref_est = est_cfg.get("reference_realised", {})
        for name, e in ests.items():
            base = finite(info.baseline_performance.get(name, ref_est.get(name)))
            r = real.get(name)
            higher = performance.HIGHER_IS_BETTER.get(name, True)
            worse = None
            if e.value is not None and base is not None and e.lower is not None:
                worse = (e.upper < base) if higher else (e.lower > base)  # type: ignore[operator]
            out.append(
                row(
                    v.ESTIMATED_PERFORMANCE,
                    name,
                    e.value,
                    segment=segment,
                    ci_low=e.lower,
                    ci_high=e.upper,
                    threshold=base,
                    drifted=worse,
                    effect_size=(e.value - base)
                    if e.value is not None and base is not None
                    else None,
                    status=e.status,
                    n_current=e.n,
                    n_reference=info.baseline_n,
                    details={
                        "method": e.method,
                        "sigma": e.sigma,
                        "band_sigmas": estimation.BAND_SIGMAS,
                        "message": e.message,
                        "realised": r.value if r is not None else None,
                        "label_coverage": coverage,
                    },
                )
            )
    return out


def label_rows(w: LabelledWindow, min_segment_rows: int) -> list[dict[str, Any]]:
    """Label coverage (all traffic and segments), label count and delay of the window."""
    out: list[dict[str, Any]] = []
    segments: list[tuple[str, NDArray[np.bool_]]] = [("", np.ones(w.n, dtype=bool))]
    segments += w.segment_masks(min_segment_rows)
    labelled = w.labelled
    for segment, mask in segments:
        cov = performance.label_coverage(int(mask.sum()), int((mask & labelled).sum()))
        out.append(
            row(
                v.OPERATIONAL,
                v.LABEL_COVERAGE,
                cov.value,
                segment=segment,
                ci_low=cov.ci_low,
                ci_high=cov.ci_high,
                status=cov.status,
                n_current=int(mask.sum()),
            )
        )
    delay = performance.label_delay((w.label_ts - w.event_ts)[labelled])
    out.append(row(v.OPERATIONAL, v.LABELS, float(labelled.sum()), n_current=w.n))
    for metric, key in ((v.LABEL_DELAY_P50, "p50"), (v.LABEL_DELAY_P90, "p90")):
        out.append(
            row(
                v.OPERATIONAL,
                metric,
                delay[key],
                status=v.OK if delay["n"] else v.INSUFFICIENT_DATA,
                n_current=int(delay["n"] or 0),
                details={"unit": "seconds", **delay},
            )
        )
    out.append(row(v.OPERATIONAL, v.DUPLICATE_IDS, float(w.duplicates), n_current=w.n))
    return out
