"""The ``performance`` job: per model and window, labels joined to predictions, realised and
label-free estimated performance, label coverage and delay, and the operational extras.

Its runs live in ``runs`` beside the window job's (job ``performance``, same claims, leases and
fencing): one is created for every window the window job has. A run goes stale, and is
recomputed, when labels for its predictions land after it ran (:mod:`monitor.jobs.labels`) or
when the window itself was recomputed for late rows -- so a window's realised performance fills
in as its labels arrive, while its estimate (which needs no labels) is there from the first run.

The CBPE calibration (or the regression loss model) is fitted once, when the baseline is
registered (:func:`fit_estimator`), and kept in ``baselines.performance["estimator"]``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from monitor.jobs import runs
from monitor.jobs.labels import (
    LabelledWindow,
    create_performance_runs,
    mark_stale_for_recomputed_windows,
    read_labelled_window,
    sweep_labels,
    unmatched_labels,
)
from monitor.jobs.operations import load_context, operational_rows
from monitor.jobs.performance_rows import ModelInfo, label_rows, performance_rows
from monitor.jobs.result_rows import result_row as row
from monitor.jobs.tick import TickContext
from monitor.settings import Settings
from monitor.storage import vocabulary as v

log = logging.getLogger(__name__)

ESTIMATOR_KEY = "estimator"
OWN_FAMILIES = (v.PERFORMANCE, v.ESTIMATED_PERFORMANCE)
OWN_OPERATIONAL = (
    v.LABEL_COVERAGE,
    v.LABELS,
    v.LABEL_DELAY_P50,
    v.LABEL_DELAY_P90,
    v.LABELS_UNMATCHED,
    v.DUPLICATE_IDS,
    v.ERRORS,
    v.VOLUME_ANOMALY,
    v.COLD_REQUESTS,
    v.LATENCY_COLD_P50,
    v.LATENCY_COLD_P95,
    v.LATENCY_WARM_P50,
    v.COLD_START_RATIO,
    v.COST,
    v.COST_PER_DAY,
    v.VERSION_AGE_DAYS,
    v.BASELINE_AGE_DAYS,
    v.RETRAIN_INTERVAL_DAYS,
    v.DRIFT_TREND,
)
"""Operational metrics this job owns (the window job owns volume and latency percentiles)."""


# --- at baseline registration -------------------------------------------------------------


def fit_estimator(
    df: pd.DataFrame, specs: list[Any], task: str | None, positive: str = "1"
) -> dict[str, Any] | None:
    """Fit the label-free estimator on a baseline frame (called by ``register_baseline``).

    Binary with a target and a probability column: CBPE (calibration, threshold, reference
    metrics). Regression with a target and a prediction: the DLE loss model on the features.
    Otherwise a record of why there is none, so the UI can say so.
    """
    from monitor.statistics.dle import fit_dle
    from monitor.statistics.estimation import fit_cbpe
    from monitor.statistics.profiles import category_label

    by_role = {s.role: s.name for s in specs}
    if "target" not in by_role:
        return {"method": None, "reason": "the baseline has no target column"}
    frame = df.dropna(subset=[by_role["target"]])
    try:
        if task == "binary":
            if "score" not in by_role:
                return {"method": None, "reason": "the baseline has no probability column"}
            y = frame[by_role["target"]].map(category_label) == positive
            score = pd.to_numeric(frame[by_role["score"]], errors="coerce").to_numpy(float)
            pred = None
            if "prediction" in by_role:
                pred = (frame[by_role["prediction"]].map(category_label) == positive).to_numpy()
            model = fit_cbpe(y.to_numpy(float), score, pred, threshold=_threshold(score, pred))
            return model.to_dict()
        if task == "regression":
            out = by_role.get("prediction") or by_role.get("score")
            if out is None:
                return {"method": None, "reason": "the baseline has no prediction column"}
            features = [s for s in specs if s.role == "feature"]
            num = {
                s.name: pd.to_numeric(frame[s.name], errors="coerce").to_numpy(float)
                for s in features
                if s.kind == "numeric"
            }
            cat = {
                s.name: frame[s.name].map(category_label).to_numpy(object)
                for s in features
                if s.kind == "categorical"
            }
            y = pd.to_numeric(frame[by_role["target"]], errors="coerce").to_numpy(float)
            pred = pd.to_numeric(frame[out], errors="coerce").to_numpy(float)
            return fit_dle(num, cat, pred, y).to_dict()
    except ValueError as exc:
        return {"method": None, "reason": str(exc)}
    return {"method": None, "reason": f"no label-free estimator for task {task!r}"}


def _threshold(score: np.ndarray, pred: np.ndarray | None) -> float:
    """The decision threshold implied by logged classes and scores (0.5 when it is unclear).

    The predicted class is what CBPE scores; the threshold only fills in rows logged without
    a class. The midpoint between the highest negative and lowest positive score recovers it.
    """
    if pred is None:
        return 0.5
    ok = np.isfinite(score)
    pos, neg = score[ok & pred], score[ok & ~pred]
    if len(pos) and len(neg) and neg.max() <= pos.min():
        return float((neg.max() + pos.min()) / 2)
    return 0.5


# --- the tick step ------------------------------------------------------------------------


def performance_step(ctx: TickContext) -> int:
    """Create runs, mark stale ones (labels landed, window recomputed), then compute due runs."""
    s = ctx.settings
    with ctx.engine.begin() as conn:
        create_performance_runs(conn)
        mark_stale_for_recomputed_windows(conn)
    last = ctx.state.get("label_sweep_at", -math.inf)
    if time.monotonic() - last >= s.label_sweep_seconds:
        with ctx.engine.begin() as conn:
            marked = sweep_labels(conn, ctx.state, s.label_horizon_days)
        ctx.state["label_sweep_at"] = time.monotonic()
        if marked:
            log.info("performance: %d windows stale after labels landed", marked)
    done = 0
    while ctx.time_left():
        if process_one(ctx) is None:
            break
        done += 1
    return done


def process_one(ctx: TickContext, *, model_id: int | None = None) -> runs.Claim | None:
    s = ctx.settings
    with ctx.engine.begin() as conn:
        claim = runs.claim(
            conn,
            owner=ctx.owner,
            lease_seconds=s.lease_seconds,
            job=v.JOB_PERFORMANCE,
            model_id=model_id,
        )
    if claim is None:
        return None
    runs.run_claimed(
        ctx.engine,
        claim,
        "performance",
        lambda: f"{len(run_performance(ctx.engine, claim, s))} results",
    )
    return claim


# --- one window ---------------------------------------------------------------------------


@dataclass
class Baseline:
    n_rows: int | None = None
    created_at: datetime | None = None
    performance: dict[str, Any] = field(default_factory=dict)


def _baseline(conn: sa.Connection, model_id: int, version_id: int | None) -> Baseline:
    """The version's baseline, else the model's latest (as the window job chooses)."""
    found = conn.execute(
        sa.text(
            "SELECT n_rows, created_at, performance FROM baselines WHERE model_id = :m"
            " ORDER BY (version_id = :v) DESC, created_at DESC, id DESC LIMIT 1"
        ),
        {"m": model_id, "v": version_id if version_id is not None else -1},
    ).first()
    if found is None:
        return Baseline()
    return Baseline(found[0], found[1], dict(found[2] or {}))


def _model_info(
    conn: sa.Connection, model_id: int, version_id: int | None, base: Baseline, s: Settings
) -> ModelInfo:
    task, positive = conn.execute(
        sa.text("SELECT task, positive_class FROM models WHERE id = :m"), {"m": model_id}
    ).one()
    classes = None
    if version_id is not None:
        classes = conn.execute(
            sa.text("SELECT classes FROM model_versions WHERE id = :v"), {"v": version_id}
        ).scalar()
    perf = {k: val for k, val in base.performance.items() if k != ESTIMATOR_KEY}
    return ModelInfo(
        task=task,
        positive=positive or "1",
        classes=list(classes) if classes else None,
        baseline_n=base.n_rows,
        baseline_performance=perf,
        estimator=base.performance.get(ESTIMATOR_KEY),
        min_labels=s.min_labels,
        min_segment_rows=s.min_segment_rows,
    )


def window_model_info(
    conn: sa.Connection, model_id: int, version_id: int | None, s: Settings
) -> tuple[Baseline, ModelInfo]:
    """The baseline and model facts a window of ``version_id`` is judged with (the version's
    baseline, else the model's latest), as this job uses them; ``monitor.spark`` too."""
    base = _baseline(conn, model_id, version_id)
    return base, _model_info(conn, model_id, version_id, base, s)


def _features(
    engine: sa.Engine, claim: runs.Claim, w: LabelledWindow
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Feature arrays in the labelled window's row order (for the regression loss model).

    Joined by record id, not by scan order, so the two reads cannot be misaligned. Rows are
    built in Python: only regression windows with a loss model pay for it.
    """
    from monitor.jobs.reader import load_slots

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        slots = load_slots(raw, claim.model_id)
        rows = raw.execute(
            "SELECT DISTINCT ON (record_id) record_id, num, cat FROM predictions"
            " WHERE model_id = %s AND event_ts >= %s AND event_ts < %s"
            " ORDER BY record_id, event_ts",
            (claim.model_id, claim.window_start, claim.window_end),
        ).fetchall()
    by_id = {rid: (num or [], cat or []) for rid, num, cat in rows}
    num_out: dict[str, Any] = {}
    cat_out: dict[str, Any] = {}
    for slot in slots:
        k = slot.position
        if slot.kind == "numeric":
            num_out[slot.name] = np.array(
                [_at(by_id.get(r, ([], []))[0], k, np.nan) for r in w.record_ids], dtype=float
            )
        else:
            cat_out[slot.name] = np.array(
                [_at(by_id.get(r, ([], []))[1], k, None) for r in w.record_ids], dtype=object
            )
    return num_out, cat_out


def _at(values: list[Any], k: int, missing: Any) -> Any:
    value = values[k] if k < len(values) else None
    return missing if value is None else value


def _dominant(versions: np.ndarray) -> int | None:
    if not len(versions):
        return None
    values, counts = np.unique(versions, return_counts=True)
    return int(values[np.argmax(counts)])


def run_performance(engine: sa.Engine, claim: runs.Claim, s: Settings) -> list[dict[str, Any]]:
    """Compute a claimed performance window and store it, fenced (LeaseLost if taken over).

    A window stored by Spark is kept as it is (:func:`runs.keep_spark_window`): its labels
    are joined in Spark (``monitor.spark.log_actuals``).
    """
    if claim.source == runs.SOURCE_SPARK:
        with engine.begin() as conn:
            runs.keep_spark_window(conn, claim)
        return []
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        w = read_labelled_window(raw, claim.model_id, claim.window_start, claim.window_end)
        version = _dominant(w.versions)
        base = _baseline(conn, claim.model_id, version)
        info = _model_info(conn, claim.model_id, version, base, s)
        ops = load_context(
            conn,
            claim.model_id,
            claim.window_start,
            claim.window_end,
            {int(x) for x in np.unique(w.versions)},
            version,
            base.created_at,
            cold_seconds=s.cold_start_seconds,
            idle_seconds=s.idle_seconds,
        )
    with engine.begin() as conn:
        unmatched = unmatched_labels(
            conn, claim.model_id, claim.window_start, claim.window_end, s.label_horizon_days
        )
    with engine.begin() as conn:
        runs.renew(conn, claim, lease_seconds=s.lease_seconds)
    features = None
    if info.task == "regression" and (info.estimator or {}).get("method") == "dle" and w.n:
        features = _features(engine, claim, w)
    rows = performance_rows(w, info, features)
    rows += label_rows(w, s.min_segment_rows)
    rows.append(row(v.OPERATIONAL, v.LABELS_UNMATCHED, float(unmatched)))
    rows += operational_rows(w, ops, claim.window_end)
    with engine.begin() as conn:
        runs.complete(conn, claim, rows=w.n)
        store(conn, claim.model_id, claim.window_start, claim.window_end, rows)
    return rows


def store(
    conn: sa.Connection,
    model_id: int,
    window_start: datetime,
    window_end: datetime,
    rows: list[dict[str, Any]],
) -> None:
    """Replace this job's results of the window (inside the completing transaction)."""
    key = {"m": model_id, "ws": window_start}
    conn.execute(
        sa.text(
            "DELETE FROM results WHERE model_id = :m AND window_start = :ws AND (family IN"
            " :families OR (family = :op AND metric IN :own))"
        ).bindparams(sa.bindparam("families", expanding=True), sa.bindparam("own", expanding=True)),
        {**key, "families": list(OWN_FAMILIES), "op": v.OPERATIONAL, "own": list(OWN_OPERATIONAL)},
    )
    if rows:
        conn.execute(
            sa.text(
                "INSERT INTO results (model_id, window_start, window_end, segment, family,"
                " column_name, metric, value, p_value, threshold, effect_size, ci_low,"
                " ci_high, drifted, status, n_reference, n_current, details) VALUES (:m,"
                " :ws, :we, :segment, :family, :column_name, :metric, :value, :p_value,"
                " :threshold, :effect_size, :ci_low, :ci_high, :drifted, :status,"
                " :n_reference, :n_current, CAST(:details AS jsonb))"
            ),
            [{**key, "we": window_end, **r} for r in rows],
        )
