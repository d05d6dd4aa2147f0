"""The window job: read a window's rows once, profile every column, store drift/quality results.

Per window: one COPY of the rows (:mod:`monitor.jobs.reader`), one mergeable profile per column
for all traffic and per segment with enough rows, then drift (per feature, ``@prediction`` and
``@score``), data quality and operational figures computed from the profiles. Profiles and
results replace the window's previous ones in the transaction that completes the run, after the
fencing check (:func:`monitor.jobs.runs.complete`), so a recompute is atomic and a worker that
lost its lease writes nothing.

A window goes from rows to results in two halves that other producers share: rows are reduced
to a :class:`WindowProfiles` (profiles per column and segment, volume, latency percentiles),
and :func:`results_from_profiles` turns that into result rows, which :func:`store` writes.
``monitor.spark`` builds the same :class:`WindowProfiles` by merging per-partition profiles
on Spark executors and stores them through the same two functions, so its windows are the
window job's windows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from numpy.typing import NDArray

from monitor.jobs import runs
from monitor.jobs.drift import ProfilePair, profile_drift
from monitor.jobs.reader import Coded, WindowData, load_slots, read_window
from monitor.jobs.reference import RefColumn, Reference, load_reference, load_row_sample
from monitor.jobs.result_rows import finite as _finite
from monitor.jobs.result_rows import result_row as _row
from monitor.statistics.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    category_label,
    merge_profiles,
    profile_numeric,
)
from monitor.statistics.quality import quality_checks, verdict_checks
from monitor.storage import vocabulary as v

log = logging.getLogger(__name__)

WINDOW_FAMILIES = (v.DRIFT, v.DATASET_DRIFT, v.MULTIVARIATE, v.QUALITY, v.OPERATIONAL)
"""Result families this job owns for a window (other jobs' families are left alone)."""
OWN_OPERATIONAL = (v.VOLUME, v.LATENCY_P50, v.LATENCY_P95, v.LATENCY_P99)
SAMPLE_SIZE = 2_000


@dataclass
class WindowOutput:
    rows: int
    profiles: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SegmentProfiles:
    """One segment of a window (``''``: all traffic) reduced to what its results need."""

    rows: int
    columns: dict[str, Profile] = field(default_factory=dict)  # by reference column name
    latency: tuple[float, float, float] | None = None  # p50, p95, p99 (ms); None: no latency


@dataclass
class WindowProfiles:
    """A window reduced to profiles: what :func:`results_from_profiles` needs, whoever read it.

    ``segments`` holds all traffic (``''``, always) and each segment with enough rows;
    ``present`` names the columns with values in the window that the reference does not know
    (for the ``unexpected_column`` check).
    """

    rows: int
    segments: dict[str, SegmentProfiles]
    present: list[str] = field(default_factory=list)


# --- current values of a reference column ------------------------------------------------------


def _numeric_values(data: WindowData, col: RefColumn) -> NDArray[np.float64] | None:
    if col.role == "prediction":
        return data.prediction_num
    if col.role == "score":
        # the positive class's probability; a regression model's output is its prediction
        if data.score is not None and np.isfinite(data.score).any():
            return data.score
        return data.prediction_num
    if col.source in data.numeric:
        return data.numeric[col.source]
    coded = data.categorical.get(col.source)
    if coded is None:
        return None
    as_num = pd.to_numeric(pd.Series(coded.labels, dtype=object), errors="coerce").to_numpy(float)
    return np.where(coded.codes >= 0, np.append(as_num, np.nan)[coded.codes], np.nan)


def _coded_values(data: WindowData, col: RefColumn) -> Coded | None:
    if col.role == "prediction":
        cat = data.prediction_cat
        if cat is not None and (cat.codes >= 0).any():
            return cat
        return _floats_as_codes(data.prediction_num)
    if col.source in data.categorical:
        return data.categorical[col.source]
    return _floats_as_codes(data.numeric.get(col.source))


def _floats_as_codes(values: NDArray[np.float64] | None) -> Coded | None:
    """Numbers logged for a categorical column: categories labelled like the baseline's."""
    if values is None:
        return None
    finite = np.isfinite(values)
    uniq, inverse = np.unique(values[finite], return_inverse=True)
    codes = np.full(values.shape, -1, dtype=np.int32)
    codes[finite] = inverse
    return Coded(codes=codes, labels=[category_label(u) for u in uniq.tolist()])


def _profile(
    data: WindowData, col: RefColumn, mask: NDArray[np.bool_] | None, seed: int
) -> Profile | None:
    errors = data.type_errors.get(col.source)
    n_errors = (
        int(errors.sum() if mask is None else errors[mask].sum()) if errors is not None else 0
    )
    if isinstance(col.profile, NumericProfile):
        values = _numeric_values(data, col)
        if values is None:
            return None
        prof = profile_numeric(
            values if mask is None else values[mask],
            col.profile.edges,
            sample_size=SAMPLE_SIZE,
            seed=seed,
        )
        prof.nulls -= n_errors
        prof.invalid += n_errors
        return prof
    coded = _coded_values(data, col)
    if coded is None:
        return None
    counts, nulls = coded.counts(mask)
    return CategoricalProfile(
        count=sum(counts.values()), nulls=nulls - n_errors, invalid=n_errors, counts=counts
    )


# --- results ---------------------------------------------------------------------------------


def _drift_rows(result: Any, segment: str, ref: Reference) -> list[dict[str, Any]]:
    rows = []
    for r in result.columns:
        details = {
            k: val
            for k, val in {
                "effect_name": r.effect_name,
                "p_value_adjusted": r.p_value_adjusted,
                "tolerance": r.tolerance,
                "message": r.message,
                "policy": result.policy,
            }.items()
            if val is not None
        }
        rows.append(
            _row(
                v.DRIFT,
                r.method,
                r.statistic,
                r.column,
                segment=segment,
                p_value=_finite(r.p_value),
                threshold=r.threshold,
                effect_size=_finite(r.effect_size),
                ci_low=_finite(r.effect_ci[0]) if r.effect_ci else None,
                ci_high=_finite(r.effect_ci[1]) if r.effect_ci else None,
                drifted=bool(r.drifted),
                status=r.status,
                n_reference=r.n_reference,
                n_current=r.n_current,
                details={**details, **ref.details()},
            )
        )
    features = [r for r in result.columns if not r.column.startswith("@") and r.status == "ok"]
    drifted = sum(1 for r in features if r.drifted)
    share = drifted / len(features) if features else None
    verdict = (drifted > 0) if features else None
    rows.append(
        _row(
            v.DATASET_DRIFT,
            "share_drifted",
            share,
            segment=segment,
            drifted=verdict,
            details={"columns": len(features), **ref.details()},
        )
    )
    rows.append(
        _row(
            v.DATASET_DRIFT,
            "drifted_columns",
            float(drifted),
            segment=segment,
            drifted=verdict,
            details={"columns": [r.column for r in features if r.drifted]},
        )
    )
    return rows


def _operational(part: SegmentProfiles, segment: str) -> list[dict[str, Any]]:
    n = part.rows
    rows = [_row(v.OPERATIONAL, v.VOLUME, float(n), segment=segment, n_current=n)]
    if part.latency is not None:
        metrics = (v.LATENCY_P50, v.LATENCY_P95, v.LATENCY_P99)
        for metric, value in zip(metrics, part.latency, strict=True):
            rows.append(_row(v.OPERATIONAL, metric, value, segment=segment, n_current=n))
    return rows


def _quality_rows(
    ref: Reference, current: dict[str, Profile], present: list[str], segment: str
) -> list[dict[str, Any]]:
    """Data-quality checks (stats' ``quality_checks``) as result rows.

    ``present``: columns with values in the window that the reference does not know (all
    traffic only).
    """
    refs = {c.name: c.profile for c in ref.columns if c.role != "target"}
    features = [c.name for c in ref.columns if c.role == "feature"]
    seen = [name for name, p in current.items() if p.count]
    expected: list[str] | None = None
    if segment == "":
        seen += [n for n in present if n not in refs]
        expected = [n for n in refs if n in features or n in current]
    else:
        expected = [n for n in refs if n in current]
    rows = []
    for check in quality_checks(refs, current, expected, seen):
        prof = current.get(check.column or "")
        rows.append(
            _row(
                v.QUALITY,
                check.check,
                check.value,
                check.column or "",
                segment=segment,
                threshold=check.threshold,
                drifted=not check.passed,
                n_current=prof.total if prof is not None else None,
                details={"message": check.message},
            )
        )
    return rows


def _verdict_rows(ref: Reference, drift: Any, segment: str) -> list[dict[str, Any]]:
    """Features without a drift verdict in this window, as failed quality checks."""
    features = [c.name for c in ref.columns if c.role == "feature"]
    return [
        _row(
            v.QUALITY,
            check.check,
            check.value,
            check.column or "",
            segment=segment,
            threshold=check.threshold,
            drifted=True,
            details={"message": check.message},
        )
        for check in verdict_checks(drift.columns, features)
    ]


# --- the job ---------------------------------------------------------------------------------


def profile_window(
    data: WindowData, ref: Reference | None, *, seed: int, min_segment_rows: int
) -> WindowProfiles:
    """Reduce a window's rows to profiles (per reference column and segment) and volumes."""
    segments: list[tuple[str, NDArray[np.bool_] | None]] = [("", None)]
    if data.n:
        segments += list(data.segment_masks(min_segment_rows))
    profiles = _segment_profiles(data, ref, segments, seed) if ref is not None and data.n else {}
    out = WindowProfiles(rows=data.n, segments={})
    for segment, mask in segments:
        latency = data.latency if mask is None or data.latency is None else data.latency[mask]
        percentiles = None
        if latency is not None and np.isfinite(latency).any():
            p50, p95, p99 = np.nanpercentile(latency, [50, 95, 99])
            percentiles = (float(p50), float(p95), float(p99))
        out.segments[segment] = SegmentProfiles(
            rows=data.n if mask is None else int(mask.sum()),
            columns=profiles.get(segment, {}),
            latency=percentiles,
        )
    if ref is not None and data.n:
        known = {c.name for c in ref.columns if c.role != "target"}
        present = [n for n, values in data.numeric.items() if np.isfinite(values).any()]
        present += [n for n, coded in data.categorical.items() if (coded.codes >= 0).any()]
        out.present = [n for n in present if n not in known]
    return out


def results_from_profiles(window: WindowProfiles, ref: Reference | None) -> WindowOutput:
    """Profiles and result rows of one window from its :class:`WindowProfiles` (pure).

    The one place where a window's drift, data quality and operational rows are made, for the
    window job and for ``monitor.spark`` alike.
    """
    out = WindowOutput(rows=window.rows)
    for segment, part in window.segments.items():
        out.results += _operational(part, segment)
        if ref is None or window.rows == 0:
            continue
        pairs = []
        for col in ref.columns:
            prof = part.columns.get(col.name)
            if prof is None:
                continue
            out.profiles.append({"segment": segment, "column_name": col.name, "profile": prof})
            if prof.count:
                pairs.append(ProfilePair(col.name, col.profile, prof))
        drift = profile_drift(pairs)
        out.results += _drift_rows(drift, segment, ref)
        present = window.present if segment == "" else []
        out.results += _quality_rows(ref, part.columns, present, segment)
        if segment == "":  # segments are small by design; their null shares are checked
            out.results += _verdict_rows(ref, drift, segment)
    if ref is None and window.rows:
        out.results.append(
            _row(
                v.DRIFT,
                "no_baseline",
                None,
                status=v.INSUFFICIENT_DATA,
                details={"message": "no baseline registered for this model"},
            )
        )
    return out


def compute(
    data: WindowData, ref: Reference | None, *, seed: int, min_segment_rows: int
) -> WindowOutput:
    """Profiles and results of one window (pure: no I/O)."""
    window = profile_window(data, ref, seed=seed, min_segment_rows=min_segment_rows)
    return results_from_profiles(window, ref)


def _segment_profiles(
    data: WindowData,
    ref: Reference,
    segments: list[tuple[str, NDArray[np.bool_] | None]],
    seed: int,
) -> dict[str, dict[str, Profile]]:
    """Profiles per segment and for all traffic, touching each row once.

    With segments, every row is profiled once in its segment (or in the rest), and all
    traffic is the exact merge of those profiles rather than a second pass over the rows.
    """
    columns = [c for c in ref.columns if c.role != "target"]
    out: dict[str, dict[str, Profile]] = {}
    if len(segments) == 1:
        out[""] = {c.name: p for c in columns if (p := _profile(data, c, None, seed)) is not None}
        return out
    rest = np.ones(data.n, dtype=bool)
    parts: list[dict[str, Profile]] = []
    for segment, mask in segments[1:]:
        assert mask is not None
        rest &= ~mask
        out[segment] = {
            c.name: p for c in columns if (p := _profile(data, c, mask, seed)) is not None
        }
        parts.append(out[segment])
    if rest.any():
        parts.append(
            {c.name: p for c in columns if (p := _profile(data, c, rest, seed)) is not None}
        )
    by_column: dict[str, list[Profile]] = {}
    for part in parts:
        for name, prof in part.items():
            by_column.setdefault(name, []).append(prof)
    out[""] = {name: merge_profiles(profs) for name, profs in by_column.items()}
    return out


MULTIVARIATE_ROWS = 2_000
MULTIVARIATE_METRICS = {
    "domain_classifier": "domain_classifier_auc",
    "pca_reconstruction": "pca_reconstruction",
}


def _multivariate(
    data: WindowData, ref: Reference, rows: dict[str, Any] | None, seed: int, methods: list[str]
) -> list[dict[str, Any]]:
    """Multivariate drift of a row sample of the window against the baseline's row sample."""
    if not rows or not data.n or not methods:
        return []
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(data.n, min(data.n, MULTIVARIATE_ROWS), replace=False))
    current: dict[str, Any] = {}
    for name, kind in rows["kinds"].items():
        if kind == "numeric" and name in data.numeric:
            current[name] = data.numeric[name][pick]
        elif kind == "categorical" and name in data.categorical:
            coded = data.categorical[name]
            labels = np.array([*coded.labels, None], dtype=object)
            current[name] = labels[coded.codes[pick]]
    return multivariate_rows(current, ref, rows, seed, methods)


def multivariate_rows(
    current: dict[str, Any],
    ref: Reference,
    rows: dict[str, Any] | None,
    seed: int,
    methods: list[str],
) -> list[dict[str, Any]]:
    """Multivariate drift result rows of a row-aligned sample of a window's features.

    ``current`` maps feature -> values of the same sampled rows (floats with NaN for numeric
    features, labels or None for categorical ones), at most :data:`MULTIVARIATE_ROWS` rows;
    ``rows`` is the baseline's row sample (:func:`load_row_sample`).
    """
    from monitor.statistics import multivariate

    detectors: dict[str, Any] = {
        "domain_classifier": multivariate.domain_classifier_drift,
        "pca_reconstruction": multivariate.pca_reconstruction_drift,
    }
    if not rows or not methods:
        return []
    reference: dict[str, Any] = {}
    for name, kind in rows["kinds"].items():
        if name not in current:
            continue
        if kind == "numeric":
            reference[name] = np.array(
                [np.nan if x is None else x for x in rows["values"][name]], dtype=np.float64
            )
        elif kind == "categorical":
            reference[name] = np.array(rows["values"][name], dtype=object)
    current = {name: current[name] for name in reference}
    if not current:
        return []
    out = []
    results = [
        detectors[m](reference, current, max_rows=MULTIVARIATE_ROWS, seed=seed)
        for m in methods
        if m in detectors
    ]
    for r in results:
        out.append(
            _row(
                v.MULTIVARIATE,
                MULTIVARIATE_METRICS.get(r.method, r.method),
                r.statistic,
                p_value=_finite(r.p_value),
                threshold=_finite(r.threshold),
                drifted=bool(r.drifted) if r.status == "ok" else None,
                status=r.status,
                n_reference=r.n_reference,
                n_current=r.n_current,
                details={
                    "top_features": [{"feature": f, "contribution": c} for f, c in r.top_features],
                    **r.details,
                    **ref.details(),
                },
            )
        )
    return out


def _dominant_version(data: WindowData) -> int | None:
    if data.versions is None or not data.n:
        return None
    values, counts = np.unique(data.versions, return_counts=True)
    return int(values[np.argmax(counts)])


def _baseline_labels(conn: sa.Connection, model_id: int) -> list[str]:
    """Every category the model's baselines know (seeds the reader's label cache)."""
    return list(
        conn.execute(
            sa.text(
                "SELECT DISTINCT jsonb_object_keys(p.profile->'counts') FROM baseline_profiles p"
                " JOIN baselines b ON b.id = p.baseline_id WHERE b.model_id = :m"
                " AND p.kind = 'categorical'"
            ),
            {"m": model_id},
        ).scalars()
    )


def run_window(
    engine: sa.Engine,
    claim: runs.Claim,
    *,
    lease_seconds: int,
    min_segment_rows: int,
    multivariate_methods: list[str] | None = None,
) -> WindowOutput:
    """Compute a claimed window and store it, fenced; raises LeaseLost if it was taken over.

    A window stored by Spark is kept as it is (:func:`runs.keep_spark_window`).
    """
    if claim.source == runs.SOURCE_SPARK:
        with engine.begin() as conn:
            runs.keep_spark_window(conn, claim)
        return WindowOutput(rows=0)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        slots = load_slots(raw, claim.model_id)
        data = read_window(
            raw,
            claim.model_id,
            claim.window_start,
            claim.window_end,
            slots,
            known_labels=lambda: _baseline_labels(conn, claim.model_id),
        )
        ref = load_reference(conn, claim.model_id, _dominant_version(data), claim.window_start)
        rows = load_row_sample(conn, ref) if ref is not None else None
    with engine.begin() as conn:
        runs.renew(conn, claim, lease_seconds=lease_seconds)
    seed = int(claim.window_start.timestamp()) & 0x7FFFFFFF
    output = compute(data, ref, seed=seed, min_segment_rows=min_segment_rows)
    if ref is not None:
        output.results += _multivariate(data, ref, rows, seed, multivariate_methods or [])
    with engine.begin() as conn:
        runs.complete(conn, claim, rows=output.rows)
        store(conn, claim.model_id, claim.window_start, claim.window_end, output)
    return output


def _array_literal(values: list[float] | None) -> str | None:
    """A float8[] literal (repr round-trips floats exactly); far cheaper than list adaptation."""
    return None if values is None else "{" + ",".join(map(repr, values)) + "}"


def _shuffled(sample: list[float] | None, window_start: Any) -> list[float] | None:
    """Samples are stored in random order, so any prefix is itself a uniform sample (which is
    what lets a range merge fetch only the few values it needs from each window)."""
    if not sample:
        return sample
    rng = np.random.default_rng(int(window_start.timestamp()) & 0x7FFFFFFF)
    return rng.permutation(np.asarray(sample, dtype=np.float64)).tolist()


def store(
    conn: sa.Connection,
    model_id: int,
    window_start: datetime,
    window_end: datetime,
    output: WindowOutput,
) -> None:
    """Replace the window's profiles and this job's results (call inside the completing tx:
    the window job's fenced :func:`runs.complete`, or Spark's :func:`runs.record_completed`)."""
    key = {"m": model_id, "ws": window_start}
    conn.execute(
        sa.text("DELETE FROM window_profiles WHERE model_id = :m AND window_start = :ws"), key
    )
    conn.execute(
        sa.text(
            "DELETE FROM results WHERE model_id = :m AND window_start = :ws AND family IN"
            " :families AND (family <> :op OR metric IN :own)"
        ).bindparams(sa.bindparam("families", expanding=True), sa.bindparam("own", expanding=True)),
        {
            **key,
            "families": list(WINDOW_FAMILIES),
            "op": v.OPERATIONAL,
            "own": list(OWN_OPERATIONAL),
        },
    )
    if output.profiles:
        rows = []
        for p in output.profiles:
            d = p["profile"].to_dict()
            sample = _shuffled(d.pop("sample", None), key["ws"])
            rows.append(
                {
                    **key,
                    "we": window_end,
                    "seg": p["segment"],
                    "col": p["column_name"],
                    "kind": d["type"],
                    "n": p["profile"].total,
                    "prof": json.dumps(d),
                    "sample": _array_literal(sample),
                }
            )
        conn.execute(
            sa.text(
                "INSERT INTO window_profiles (model_id, window_start, window_end, segment,"
                " column_name, kind, n, profile, sample_num) VALUES (:m, :ws, :we, :seg,"
                " :col, :kind, :n, CAST(:prof AS jsonb), CAST(:sample AS float8[]))"
            ),
            rows,
        )
    if output.results:
        conn.execute(
            sa.text(
                "INSERT INTO results (model_id, window_start, window_end, segment, family,"
                " column_name, metric, value, p_value, threshold, effect_size, ci_low,"
                " ci_high, drifted, status, n_reference, n_current, details) VALUES (:m,"
                " :ws, :we, :segment, :family, :column_name, :metric, :value, :p_value,"
                " :threshold, :effect_size, :ci_low, :ci_high, :drifted, :status,"
                " :n_reference, :n_current, CAST(:details AS jsonb))"
            ),
            [{**key, "we": window_end, **r} for r in output.results],
        )
