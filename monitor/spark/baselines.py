"""``register_baseline`` from a Spark DataFrame: the reduction runs in Spark, the rows stay there.

The same baseline as :func:`monitor.jobs.baselines.register_baseline` stores, computed where
the training data lives:

* column kinds by Evidently's rules (as the pandas path), with Spark's distinct-count sketch
  (HyperLogLog++, exact at the small cardinalities the rules look at);
* numeric bin edges: the distinct values when there are at most ``n_bins`` of them (so
  discrete columns bin exactly), else ``n_bins`` quantile edges from Spark's ``approxQuantile``
  (relative rank error 1e-4: the edges only have to split the baseline into similar shares;
  every count on them is exact);
* profiles (counts, nulls, moments, histograms on those edges, category tables), the bounded
  sample and the row sample for multivariate drift: the executors' mergeable partials
  (:mod:`monitor.spark.partials`), one "window" holding every row;
* baseline performance and the label-free estimator (CBPE / DLE) need the rows' outputs
  together: they are fitted on a uniform sample of at most ``fit_rows`` rows (the whole
  baseline when it is smaller), brought to the driver as pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from monitor.errors import InputError
from monitor.jobs.baselines import (
    CATEGORICAL,
    NUMERIC,
    BaselineInfo,
    ColumnSpec,
    baseline_performance,
    save_baseline,
)
from monitor.jobs.performance import fit_estimator
from monitor.spark import frame as fr
from monitor.spark.partials import SEGMENT, WINDOW, ColumnPlan, Partial, Plan
from monitor.spark.windows import profile_stage, resolve_engine
from monitor.statistics.engine import INTEGER_CARDINALITY_LIMIT, TEXT_CARDINALITY_SHARE
from monitor.statistics.profiles import (
    DEFAULT_N_BINS,
    CategoricalProfile,
    NumericProfile,
)

QUANTILE_ERROR = 1e-4
FIT_ROWS = 200_000
ROW_SAMPLE = 2_000


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _finite(df: DataFrame, name: str, numeric: bool) -> Any:
    """The column's usable values: numbers (as double) when finite, others as they are."""
    dt = df.schema[name].dataType
    if not numeric and not isinstance(dt, T.FloatType | T.DoubleType):
        return fr.col(name)
    x = fr.col(name).cast("double")
    return F.when(~F.isnan(x) & (F.abs(x) != F.lit(float("inf"))), x)


def column_stats(
    df: DataFrame, numeric: set[str], skip: set[str]
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Row count and, per column, (usable values, distinct usable values): one Spark job.

    Distinct counts come from HyperLogLog++ (exact in practice at the small cardinalities the
    kind rules and the discrete-bin test look at).
    """
    names = [c for c in df.columns if c not in skip]
    exprs = [_finite(df, c, c in numeric) for c in names]
    row = df.agg(
        F.count(F.lit(1)).alias("n"),
        *[F.count(e).alias(f"v{i}") for i, e in enumerate(exprs)],
        *[F.approx_count_distinct(e, 0.01).alias(f"d{i}") for i, e in enumerate(exprs)],
    ).first()
    assert row is not None
    return int(row["n"]), {c: (int(row[f"v{i}"]), int(row[f"d{i}"])) for i, c in enumerate(names)}


def infer_specs(
    df: DataFrame,
    stats: dict[str, tuple[int, int]],
    *,
    prediction: str | None,
    target: str | None,
    proba: str | None,
    categorical: Sequence[str],
    numerical: Sequence[str],
    ignore: Sequence[str],
) -> list[ColumnSpec]:
    """Roles and kinds of the frame's columns (Evidently's rules, as the pandas path)."""
    cat, num, ign = set(categorical), set(numerical), set(ignore)
    outputs = {prediction: "prediction", proba: "score", target: "target"}
    specs: list[ColumnSpec] = []
    for name in df.columns:
        if name in ign:
            continue
        dt = df.schema[name].dataType
        valid, distinct = stats[name]
        kind: str | None
        if name in cat:
            kind = CATEGORICAL
        elif name in num or isinstance(dt, T.FloatType | T.DoubleType | T.DecimalType):
            kind = NUMERIC
        elif isinstance(dt, T.IntegralType):
            kind = CATEGORICAL if distinct <= INTEGER_CARDINALITY_LIMIT else NUMERIC
        elif isinstance(dt, T.BooleanType):
            kind = CATEGORICAL
        elif isinstance(dt, T.StringType):
            kind = None if distinct > valid * TEXT_CARDINALITY_SHARE else CATEGORICAL
        else:
            kind = None
        if kind is None:
            if name not in outputs:
                continue  # text, dates, nested types: not monitored (as in the pandas path)
            kind = CATEGORICAL
        specs.append(ColumnSpec(name, kind, outputs.get(name, "feature")))
    if not any(s.role == "feature" for s in specs):
        raise InputError("the baseline has no feature columns")
    return specs


def bin_edges(
    df: DataFrame, numeric: list[str], stats: dict[str, tuple[int, int]], n_bins: int
) -> dict[str, list[float]]:
    """Per numeric column: its distinct values (at most ``n_bins``) or quantile edges."""
    for name in numeric:
        if not stats[name][0]:
            raise InputError(f"numeric column {name!r} has no finite values")
    values = {name: _finite(df, name, True) for name in numeric}
    discrete = [n for n in numeric if stats[n][1] <= 2 * n_bins]
    edges: dict[str, list[float]] = {}
    if discrete:
        row = df.agg(*[F.collect_set(values[n]).alias(f"s{i}") for i, n in enumerate(discrete)])
        found = row.first()
        assert found is not None
        for i, name in enumerate(discrete):
            distinct = np.unique(np.asarray(found[f"s{i}"], dtype=np.float64))
            if distinct.size <= n_bins:
                edges[name] = [*distinct.tolist(), float(np.nextafter(distinct[-1], np.inf))]
    continuous = [n for n in numeric if n not in edges]
    if continuous:
        probs = np.linspace(0.0, 1.0, n_bins + 1).tolist()
        frame = df.select(*[values[n].alias(f"c{i}") for i, n in enumerate(continuous)])
        quantiles = frame.approxQuantile(
            [f"c{i}" for i in range(len(continuous))], probs, QUANTILE_ERROR
        )
        for name, q in zip(continuous, quantiles, strict=True):
            edges[name] = np.unique(np.asarray(q, dtype=np.float64)).tolist()
    return edges


def register_baseline(
    df: DataFrame,
    *,
    model: str,
    version: str,
    prediction: str | None = None,
    target: str | None = None,
    proba: str | None = None,
    categorical: Sequence[str] | None = None,
    numerical: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    task: str | None = None,
    source: str | None = None,
    sample_size: int = 5_000,
    n_bins: int = DEFAULT_N_BINS,
    fit_rows: int = FIT_ROWS,
    database_url: str | None = None,
    engine: sa.Engine | None = None,
) -> BaselineInfo:
    """Register (or atomically replace) the baseline of ``model`` at ``version`` from ``df``.

    Arguments as in :func:`monitor.jobs.baselines.register_baseline`; see the module docstring
    for what runs in Spark. ``fit_rows`` bounds the rows brought to the driver to fit the
    baseline performance and estimator.
    """
    if task is not None and task not in ("binary", "multiclass", "regression"):
        raise InputError("task must be binary, multiclass or regression")
    engine = resolve_engine(database_url, engine)
    cat, num, ign = _as_list(categorical), _as_list(numerical), _as_list(ignore)
    named = {n for n in (prediction, target, proba) if n is not None}
    for name in sorted(set(cat) | set(num) | set(ign) | named):
        if name not in df.columns:
            raise InputError(f"column {name!r} is not in the baseline (columns: {df.columns})")
    if set(cat) & set(num):
        raise InputError(f"columns both categorical and numerical: {sorted(set(cat) & set(num))}")
    n_rows, stats = column_stats(df, set(num), set(ign))
    if n_rows == 0:
        raise InputError("the baseline is empty")
    specs = infer_specs(
        df,
        stats,
        prediction=prediction,
        target=target,
        proba=proba,
        categorical=cat,
        numerical=num,
        ignore=ign,
    )
    numeric = [s.name for s in specs if s.kind == NUMERIC]
    edges = bin_edges(df, numeric, stats, n_bins)
    plan = Plan(
        columns=tuple(
            ColumnPlan(s.name, s.kind, (s.name,), tuple(edges.get(s.name, ()))) for s in specs
        ),
        row_features=tuple((s.name, s.kind) for s in specs if s.role == "feature"),
        sample_size=sample_size,
        row_sample_size=ROW_SAMPLE,
    )
    prepared = df.select(
        F.lit(0).cast("long").alias(WINDOW),
        F.lit("").alias(SEGMENT),
        *[
            (
                fr.col(s.name).cast("double")
                if s.kind == NUMERIC
                else fr.categorical_values(df, s.name)
            ).alias(s.name)
            for s in specs
        ],
    )
    merged = profile_stage(prepared, plan).collect()
    whole = Partial.from_bytes(bytes(merged[0]["payload"]))
    profiles: dict[str, NumericProfile | CategoricalProfile] = dict(whole.columns)
    rows = {
        "type": "rows",
        "kinds": {name: kind for name, kind in plan.row_features},
        "values": {
            name: [row[i] for row in whole.row_sample]
            for i, (name, _) in enumerate(plan.row_features)
        },
    }

    def outputs(model_task: str | None, positive: str) -> tuple[str | None, dict[str, Any] | None]:
        task_ = task or model_task or _task(specs, profiles)
        if target is None:
            return task_, None
        wanted = [s.name for s in specs if s.role != "feature" or task_ == "regression"]
        fraction = min(1.0, fit_rows / n_rows)
        picked = df.select(*[fr.col(c) for c in wanted])
        if fraction < 1.0:
            picked = picked.sample(fraction=fraction, seed=0)
        sample = picked.toPandas()
        performance = baseline_performance(sample, specs, task_, positive)
        estimator = fit_estimator(sample, specs, task_, positive)
        if estimator is not None:
            if fraction < 1.0:
                estimator = {**estimator, "fitted_on_rows": len(sample)}
            performance = {**(performance or {}), "estimator": estimator}
        return task_, performance

    return save_baseline(
        model=model,
        version=version,
        specs=specs,
        profiles=profiles,
        n_rows=n_rows,
        rows=rows,
        outputs=outputs,
        prediction=prediction,
        target=target,
        proba=proba,
        source=source,
        engine=engine,
    )


def _task(specs: list[ColumnSpec], profiles: dict[str, Any]) -> str | None:
    """The task from the target's profile (as the pandas path infers it from the column)."""
    target = next((s for s in specs if s.role == "target"), None)
    if target is None:
        return None
    if target.kind == NUMERIC:
        return "regression"
    prof = profiles[target.name]
    return "binary" if len(prof.counts) <= 2 else "multiclass"
