"""Baselines: a model version's reference data, reduced to what drift needs, stored atomically.

A baseline keeps, per column, the reference profile (quantile bin edges and counts, or the
category table), summary statistics and a bounded sample, plus the feature schema and order
and, when the target is present, the model's baseline performance. The file itself is not kept.
Column kinds follow Evidently's inference (so users recognise them) and can be overridden.

Registering also appends the baseline's features to the model's slot schema (``features``), so
the SDK stores each feature in the kind the baseline declares.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError
from monitor.statistics.profiles import (
    CategoricalProfile,
    NumericProfile,
    reference_profile_categorical,
    reference_profile_numeric,
)
from monitor.storage.vocabulary import PREDICTION_COLUMN, SCORE_COLUMN

log = logging.getLogger(__name__)

NUMERIC = "numeric"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # numeric | categorical
    role: str  # feature | prediction | score | target


@dataclass(frozen=True)
class BaselineInfo:
    id: int
    model: str
    version: str
    n_rows: int
    columns: list[ColumnSpec]
    performance: dict[str, Any] | None


def infer_kind(series: pd.Series) -> str | None:
    """Evidently 0.7's rules (shared with ``monitor drift``): None means skip (text, dates)."""
    from monitor.statistics.engine import infer_column_kind

    kind = infer_column_kind(series)
    return None if kind is None else NUMERIC if kind == "num" else CATEGORICAL


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def column_specs(
    df: pd.DataFrame,
    *,
    prediction: str | None = None,
    target: str | None = None,
    proba: str | None = None,
    categorical: Sequence[str] | None = None,
    numerical: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
) -> list[ColumnSpec]:
    """Roles and kinds of the frame's columns, in the frame's order (features first)."""
    cat, num, ign = set(_as_list(categorical)), set(_as_list(numerical)), set(_as_list(ignore))
    named = {n for n in (prediction, target, proba) if n is not None}
    for name in sorted(cat | num | ign | named):
        if name not in df.columns:
            raise InputError(
                f"column {name!r} is not in the baseline (columns: "
                f"{', '.join(map(str, df.columns))})"
            )
    if cat & num:
        raise InputError(f"columns both categorical and numerical: {', '.join(sorted(cat & num))}")
    specs: list[ColumnSpec] = []
    outputs = {prediction: "prediction", proba: "score", target: "target"}
    for name in df.columns:
        name = str(name)
        if name in ign:
            continue
        kind = CATEGORICAL if name in cat else NUMERIC if name in num else infer_kind(df[name])
        if kind is None:
            if name in outputs:
                kind = CATEGORICAL
            else:
                log.warning("baseline column %r skipped: not numeric or categorical", name)
                continue
        specs.append(ColumnSpec(name, kind, outputs.get(name, "feature")))
    if not any(s.role == "feature" for s in specs):
        raise InputError("the baseline has no feature columns")
    return specs


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a baseline file (.csv or .parquet)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many kinds; the user needs one line
        raise InputError(f"cannot read {path}: {exc}") from exc
    raise InputError(f"unsupported baseline file {path.name!r}: use .csv or .parquet")


def _profile(series: pd.Series, kind: str, sample_size: int) -> NumericProfile | CategoricalProfile:
    if kind == NUMERIC:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(values).any():
            raise InputError(f"numeric column {series.name!r} has no finite values")
        return reference_profile_numeric(values, sample_size=sample_size)
    return reference_profile_categorical(series.to_numpy(dtype=object))


def _task(df: pd.DataFrame, specs: list[ColumnSpec], task: str | None) -> str | None:
    if task is not None:
        if task not in ("binary", "multiclass", "regression"):
            raise InputError("task must be binary, multiclass or regression")
        return task
    target = next((s for s in specs if s.role == "target"), None)
    if target is None:
        return None
    if target.kind == NUMERIC:
        return "regression"
    return "binary" if df[target.name].nunique() <= 2 else "multiclass"


def baseline_performance(
    df: pd.DataFrame, specs: list[ColumnSpec], task: str | None, positive: str = "1"
) -> dict[str, Any] | None:
    """The model's performance on its own baseline (the yardstick for production)."""
    from sklearn import metrics

    by_role = {s.role: s.name for s in specs}
    if "target" not in by_role or ("prediction" not in by_role and "score" not in by_role):
        return None
    frame = df.dropna(subset=[by_role["target"]])
    y = frame[by_role["target"]]
    out: dict[str, float] = {}
    if task == "regression":
        pred = frame[by_role.get("prediction") or by_role["score"]].astype(float)
        out["mae"] = float(metrics.mean_absolute_error(y, pred))
        out["rmse"] = float(np.sqrt(metrics.mean_squared_error(y, pred)))
        out["r2"] = float(metrics.r2_score(y, pred))
        return out
    y_text = y.map(_label)
    if "prediction" in by_role:
        pred = frame[by_role["prediction"]].map(_label)
        out["accuracy"] = float(metrics.accuracy_score(y_text, pred))
        if task == "binary":
            for name, fn in (
                ("precision", metrics.precision_score),
                ("recall", metrics.recall_score),
                ("f1", metrics.f1_score),
            ):
                out[name] = float(fn(y_text, pred, pos_label=positive, zero_division=0))
    if task == "binary" and "score" in by_role and y_text.nunique() == 2:
        out["roc_auc"] = float(metrics.roc_auc_score(y_text == positive, frame[by_role["score"]]))
    return out or None


def _estimator(
    df: pd.DataFrame, specs: list[ColumnSpec], task: str | None, positive: str
) -> dict[str, Any] | None:
    """The label-free performance estimator fitted on the baseline (CBPE or DLE)."""
    from monitor.jobs.performance import fit_estimator

    return fit_estimator(df, specs, task, positive)


def _label(value: Any) -> str:
    from monitor.statistics.profiles import category_label

    return category_label(value)


def register_baseline(
    df: pd.DataFrame,
    *,
    model: str,
    version: str,
    prediction: str | None = None,
    target: str | None = None,
    categorical: Sequence[str] | None = None,
    numerical: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    proba: str | None = None,
    task: str | None = None,
    source: str | None = None,
    sample_size: int = 5_000,
    engine: sa.Engine | None = None,
) -> BaselineInfo:
    """Register (or atomically replace) the baseline of ``model`` at ``version``.

    ``prediction`` names the model's output column, ``proba`` the positive class's probability
    (or the regression score), ``target`` the ground truth. Other columns are features, unless
    listed in ``ignore``; ``categorical``/``numerical`` override the inferred kinds.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError("register_baseline needs a pandas DataFrame")
    if df.empty:
        raise InputError("the baseline is empty")
    if not model or not version:
        raise InputError("model and version are required")
    specs = column_specs(
        df,
        prediction=prediction,
        target=target,
        proba=proba,
        categorical=categorical,
        numerical=numerical,
        ignore=ignore,
    )
    profiles = {s.name: _profile(df[s.name], s.kind, sample_size) for s in specs}

    def outputs(model_task: str | None, positive: str) -> tuple[str | None, dict[str, Any] | None]:
        task_ = _task(df, specs, task or model_task)
        performance = baseline_performance(df, specs, task_, positive)
        estimator = _estimator(df, specs, task_, positive)
        if estimator is not None:
            performance = {**(performance or {}), "estimator": estimator}
        return task_, performance

    return save_baseline(
        model=model,
        version=version,
        specs=specs,
        profiles=profiles,
        n_rows=len(df),
        rows=row_sample(df, specs),
        outputs=outputs,
        prediction=prediction,
        target=target,
        proba=proba,
        source=source,
        engine=engine,
    )


def save_baseline(
    *,
    model: str,
    version: str,
    specs: list[ColumnSpec],
    profiles: dict[str, NumericProfile | CategoricalProfile],
    n_rows: int,
    rows: dict[str, Any],
    outputs: Callable[[str | None, str], tuple[str | None, dict[str, Any] | None]],
    prediction: str | None = None,
    target: str | None = None,
    proba: str | None = None,
    source: str | None = None,
    engine: sa.Engine | None = None,
) -> BaselineInfo:
    """Store (or atomically replace) a baseline from its reduced form, whoever reduced it.

    ``profiles`` (by column name), ``rows`` (:func:`row_sample`'s shape) and ``n_rows`` come
    from pandas here or from Spark (``monitor.spark.register_baseline``); ``outputs(task,
    positive)`` returns the task and the baseline performance (with the fitted estimator),
    given the model's declared task and positive class.
    """
    if engine is None:
        from monitor.storage.bootstrap import prepare_database

        engine = prepare_database()
    with engine.begin() as conn:
        model_id, version_id, model_task, positive = _register_model(conn, model, version)
        task, performance = outputs(model_task, positive or "1")
        _register_features(conn, model_id, [s for s in specs if s.role == "feature"])
        if task and not model_task:
            conn.execute(
                sa.text("UPDATE models SET task = :t WHERE id = :m"), {"t": task, "m": model_id}
            )
        conn.execute(
            sa.text("DELETE FROM baselines WHERE model_id = :m AND version_id = :v"),
            {"m": model_id, "v": version_id},
        )
        baseline_id = conn.execute(
            sa.text(
                "INSERT INTO baselines (model_id, version_id, n_rows, columns, prediction_column,"
                " target_column, proba_columns, task, performance, source) VALUES (:m, :v, :n,"
                " CAST(:columns AS jsonb), :prediction, :target, CAST(:proba AS jsonb), :task,"
                " CAST(:performance AS jsonb), :source) RETURNING id"
            ),
            {
                "m": model_id,
                "v": version_id,
                "n": n_rows,
                "columns": _json([s.__dict__ for s in specs]),
                "prediction": prediction,
                "target": target,
                "proba": _json([proba] if proba else None),
                "task": task,
                "performance": _json(performance),
                "source": source,
            },
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO baseline_profiles (baseline_id, column_name, role, kind, profile,"
                " sample_num, sample_cat) VALUES (:b, :c, :r, :k, CAST(:p AS jsonb), :sn, :sc)"
            ),
            [_profile_row(baseline_id, s, profiles[s.name]) for s in specs],
        )
        conn.execute(
            sa.text(
                "INSERT INTO baseline_profiles (baseline_id, column_name, role, kind, profile)"
                " VALUES (:b, :c, 'rows', 'rows', CAST(:p AS jsonb))"
            ),
            {"b": baseline_id, "c": ROWS_COLUMN, "p": _json(rows)},
        )
    log.info("baseline registered: model=%s version=%s rows=%d", model, version, n_rows)
    return BaselineInfo(baseline_id, model, version, n_rows, specs, performance)


ROWS_COLUMN = "@rows"
"""baseline_profiles entry holding a row-aligned sample of the features (multivariate drift)."""
ROW_SAMPLE_SIZE = 2_000


def row_sample(
    df: pd.DataFrame, specs: list[ColumnSpec], size: int = ROW_SAMPLE_SIZE, seed: int = 0
) -> dict[str, Any]:
    """A uniform sample of whole rows (features only), JSON-ready: numbers or labels, None."""
    from monitor.statistics.profiles import category_label

    features = [s for s in specs if s.role == "feature"]
    picked = df.sample(n=min(size, len(df)), random_state=seed) if len(df) else df
    values: dict[str, list[Any]] = {}
    for spec in features:
        column = picked[spec.name]
        if spec.kind == NUMERIC:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            values[spec.name] = [float(x) if np.isfinite(x) else None for x in numbers]
        else:
            values[spec.name] = [None if pd.isna(x) else category_label(x) for x in column]
    return {"type": "rows", "kinds": {s.name: s.kind for s in features}, "values": values}


def stored_name(spec: ColumnSpec) -> str:
    """The column name results use: outputs become the ``@prediction``/``@score`` columns."""
    return {"prediction": PREDICTION_COLUMN, "score": SCORE_COLUMN}.get(spec.role, spec.name)


def _profile_row(baseline_id: int, spec: ColumnSpec, prof: Any) -> dict[str, Any]:
    d = prof.to_dict()
    sample = d.pop("sample", None)
    return {
        "b": baseline_id,
        "c": stored_name(spec),
        "r": spec.role,
        "k": spec.kind,
        "p": _json({**d, "source_column": spec.name}),
        "sn": sample,
        "sc": None,
    }


def _json(value: Any) -> str | None:
    import json

    return None if value is None else json.dumps(value)


def _register_model(conn: sa.Connection, model: str, version: str) -> tuple[int, int, Any, Any]:
    conn.execute(
        sa.text("INSERT INTO models (name) VALUES (:n) ON CONFLICT (name) DO NOTHING"), {"n": model}
    )
    model_id, task, positive = conn.execute(
        sa.text("SELECT id, task, positive_class FROM models WHERE name = :n"), {"n": model}
    ).one()
    conn.execute(
        sa.text(
            "INSERT INTO model_versions (model_id, version) VALUES (:m, :v) "
            "ON CONFLICT (model_id, version) DO NOTHING"
        ),
        {"m": model_id, "v": version},
    )
    version_id = conn.execute(
        sa.text("SELECT id FROM model_versions WHERE model_id = :m AND version = :v"),
        {"m": model_id, "v": version},
    ).scalar_one()
    return model_id, version_id, task, positive


def _register_features(conn: sa.Connection, model_id: int, specs: list[ColumnSpec]) -> None:
    """Append the baseline's features to the slot schema, in order, under the writers' lock."""
    from monitor.sdk.postgres.schema import FeatureSchema

    raw = conn.connection.driver_connection
    assert raw is not None
    schema = FeatureSchema(model_id)
    schema.extend(raw, {s.name: s.kind for s in specs})


# --- listing and management ------------------------------------------------------------------


def _model_id(conn: sa.Connection, model: str) -> int:
    model_id = conn.execute(sa.text("SELECT id FROM models WHERE name = :n"), {"n": model}).scalar()
    if model_id is None:
        raise NotFoundError(f"no model named {model!r}")
    return int(model_id)


def list_baselines(engine: sa.Engine, model: str | None = None) -> list[dict[str, Any]]:
    """Every baseline (of one model), newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT m.name AS model, v.version, b.n_rows, b.task, b.created_at, b.source,"
                " jsonb_array_length(b.columns) AS n_columns, m.baseline_mode,"
                " m.rolling_baseline_days FROM baselines b JOIN models m ON m.id = b.model_id"
                " JOIN model_versions v ON v.id = b.version_id"
                " WHERE CAST(:model AS text) IS NULL OR m.name = :model"
                " ORDER BY m.name, b.created_at DESC"
            ),
            {"model": model},
        ).mappings()
        return [dict(r) for r in rows]


def show_baseline(engine: sa.Engine, model: str, version: str | None = None) -> dict[str, Any]:
    """One baseline with its columns and performance (the latest when no version is given)."""
    with engine.connect() as conn:
        model_id = _model_id(conn, model)
        row = (
            conn.execute(
                sa.text(
                    "SELECT b.id, v.version, b.n_rows, b.columns, b.task, b.performance, b.source,"
                    " b.created_at FROM baselines b JOIN model_versions v ON v.id = b.version_id"
                    " WHERE b.model_id = :m AND (CAST(:v AS text) IS NULL OR v.version = :v)"
                    " ORDER BY b.created_at DESC LIMIT 1"
                ),
                {"m": model_id, "v": version},
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(
                f"model {model!r} has no baseline"
                + (f" for version {version!r}" if version else "")
            )
        profiles = conn.execute(
            sa.text(
                "SELECT column_name, role, kind, profile FROM baseline_profiles"
                " WHERE baseline_id = :b"
            ),
            {"b": row["id"]},
        ).mappings()
        out = dict(row)
        out["profiles"] = {p["column_name"]: _summary(p) for p in profiles}
        return out


def _summary(p: Any) -> dict[str, Any]:
    prof = p["profile"]
    summary: dict[str, Any] = {
        "role": p["role"],
        "kind": p["kind"],
        "count": prof.get("count"),
        "nulls": prof.get("nulls"),
    }
    if prof.get("type") == "numeric":
        count = prof["count"] or 0
        summary.update(
            min=prof["min"],
            max=prof["max"],
            mean=prof["mean"],
            std=(prof["m2"] / count) ** 0.5 if count > 1 else 0.0,
            bins=len(prof["edges"]) - 1,
        )
    else:
        summary["categories"] = len(prof.get("counts", {}))
    return summary


def delete_baseline(engine: sa.Engine, model: str, version: str) -> None:
    with engine.begin() as conn:
        model_id = _model_id(conn, model)
        deleted = conn.execute(
            sa.text(
                "DELETE FROM baselines b USING model_versions v WHERE v.id = b.version_id"
                " AND b.model_id = :m AND v.version = :v"
            ),
            {"m": model_id, "v": version},
        ).rowcount
        if not deleted:
            raise NotFoundError(f"model {model!r} has no baseline for version {version!r}")


def set_baseline_mode(engine: sa.Engine, model: str, mode: str, days: int | None = None) -> None:
    """Compare windows with the training baseline or with the last ``days`` of production."""
    if mode not in ("training", "rolling"):
        raise InputError("baseline mode must be 'training' or 'rolling'")
    if days is not None and days < 1:
        raise InputError("rolling baseline days must be at least 1")
    with engine.begin() as conn:
        model_id = _model_id(conn, model)
        conn.execute(
            sa.text(
                "UPDATE models SET baseline_mode = :mode, rolling_baseline_days ="
                " COALESCE(:days, rolling_baseline_days) WHERE id = :m"
            ),
            {"mode": mode, "days": days, "m": model_id},
        )
