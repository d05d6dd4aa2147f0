"""Synthetic stored results for web tests and the dashboard benchmark.

Writes what the window jobs and alerts would have written (the contract between them and the
web): a model with versions, features, a baseline with profiles, and per window: window profiles
and results of every family, runs; plus an alert rule, firing and resolved alerts, a silence-free
channel with deliveries and attempts. Bulk rows go through COPY so 90 days x 50 features loads
in seconds. Features 0, 1 and 3 drift during ``drift_days``; one feature name is hostile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb

from monitor.storage.engine import libpq_url

HOSTILE = "<script>alert(1)</script>"
N_BINS = 10


@dataclass
class Seeded:
    model: str
    model_id: int
    features: list[str]
    drifted: list[str]
    start: datetime
    end: datetime
    drift_start: datetime
    drift_end: datetime
    firing_alert_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def feature_names(n: int, hostile: bool) -> list[str]:
    names = [f"f{i:02d}_{'num' if i % 4 != 3 else 'cat'}" for i in range(n)]
    if hostile and n > 5:
        names[5] = HOSTILE  # a categorical-or-numeric name that must render as text
    return names


def _kind(i: int) -> str:
    return "categorical" if i % 4 == 3 else "numeric"


def seed_results(
    engine: sa.Engine,
    *,
    model: str = "fraud",
    days: int = 14,
    n_features: int = 12,
    end: datetime | None = None,
    drift_days: tuple[int, int] = (6, 10),
    hostile: bool = True,
    segments: tuple[str, ...] = ("region=eu",),
    profiles: bool = True,
    seed: int = 7,
) -> Seeded:
    rng = np.random.default_rng(seed)
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    drift_start = start + timedelta(days=drift_days[0])
    drift_end = start + timedelta(days=drift_days[1])
    names = feature_names(n_features, hostile)
    drifted = [names[0], names[1], names[3]]  # two numeric, one categorical
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    with psycopg.connect(url, autocommit=False) as conn:
        model_id = conn.execute(
            "INSERT INTO models (name, task, positive_class, description) "
            "VALUES (%s, 'binary', '1', %s) RETURNING id",
            (model, f"synthetic model {model}"),
        ).fetchone()[0]  # type: ignore[index]
        v1 = conn.execute(
            "INSERT INTO model_versions (model_id, version, created_at) VALUES (%s, 'v1', %s) "
            "RETURNING id",
            (model_id, start - timedelta(days=30)),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO model_versions (model_id, version) VALUES (%s, 'v2')", (model_id,)
        )
        num_pos = cat_pos = 0
        for i, name in enumerate(names):
            kind = _kind(i)
            pos = num_pos if kind == "numeric" else cat_pos
            conn.execute(
                "INSERT INTO features (model_id, name, kind, position) VALUES (%s, %s, %s, %s)",
                (model_id, name, kind, pos),
            )
            num_pos, cat_pos = (
                (num_pos + 1, cat_pos) if kind == "numeric" else (num_pos, cat_pos + 1)
            )
        baseline_id = conn.execute(
            "INSERT INTO baselines (model_id, version_id, n_rows, columns, prediction_column, "
            "target_column, task, performance, source, created_at) "
            "VALUES (%s, %s, 50000, %s, 'prediction', 'target', 'binary', %s, 'train.parquet', %s) "
            "RETURNING id",
            (
                model_id,
                v1,
                Jsonb(names),
                Jsonb(
                    {
                        "roc_auc": 0.81,
                        "estimator": {
                            "method": "cbpe",
                            "threshold": 0.5,
                            "n_reference": 50000,
                            "calibrator": {"kind": "isotonic", "x": [0.1, 0.9], "y": [0.0, 1.0]},
                            "calibration_check": {"brier_identity": 0.15, "brier_isotonic": 0.14},
                            "reference_realised": {"roc_auc": 0.81},
                            "reference_estimated": {"roc_auc": 0.805},
                        },
                    }
                ),
                start - timedelta(days=30),
            ),
        ).fetchone()[0]  # type: ignore[index]
        edges = [float(x) for x in np.linspace(-2.5, 2.5, N_BINS + 1)]
        categories = ["a", "b", "c", "d"]
        for i, name in enumerate([*names, "@score"]):
            kind = _kind(i) if name != "@score" else "numeric"
            sample = rng.normal(0.0, 1.0, 2000).tolist() if kind == "numeric" else None
            conn.execute(
                "INSERT INTO baseline_profiles (baseline_id, column_name, role, kind, profile, "
                "sample_num) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    baseline_id,
                    name,
                    "feature" if not name.startswith("@") else "score",
                    kind,
                    Jsonb(_profile(rng, kind, edges, categories, 50_000, shifted=False)),
                    sample,
                ),
            )
        windows = [start + timedelta(hours=h) for h in range(days * 24)]
        with conn.cursor() as cur:
            with cur.copy(
                "COPY results (model_id, window_start, window_end, segment, family, column_name, "
                "metric, value, p_value, threshold, drifted, n_reference, n_current, "
                "effect_size, ci_low, ci_high, details) FROM STDIN"
            ) as copy:
                for ws in windows:
                    we = ws + timedelta(hours=1)
                    in_drift = drift_start <= ws < drift_end
                    for seg in ("", *segments):
                        for row in _window_results(rng, names, drifted, in_drift, seg):
                            copy.write_row((model_id, ws, we, seg, *row))
            with cur.copy(
                "COPY runs (model_id, job, window_start, window_end, status, attempt, rows, "
                "started_at, finished_at) FROM STDIN"
            ) as copy:
                for ws in windows:
                    we = ws + timedelta(hours=1)
                    copy.write_row((model_id, "window", ws, we, "succeeded", 1, 500, we, we))
            if profiles:
                with cur.copy(
                    "COPY window_profiles (model_id, window_start, segment, column_name, "
                    "window_end, kind, n, profile) FROM STDIN"
                ) as copy:
                    for ws in windows:
                        in_drift = drift_start <= ws < drift_end
                        for i, name in enumerate([*names, "@score"]):
                            kind = _kind(i) if name != "@score" else "numeric"
                            shifted = in_drift and name in [*drifted, "@score"]
                            prof = _profile(rng, kind, edges, categories, 500, shifted)
                            copy.write_row(
                                (
                                    model_id,
                                    ws,
                                    "",
                                    name,
                                    ws + timedelta(hours=1),
                                    kind,
                                    500,
                                    Jsonb(prof),
                                )
                            )
        ids = _alerts(conn, model_id, model, drifted[0], drift_start, drift_end)
        conn.commit()
    return Seeded(
        model, model_id, names, drifted, start, end, drift_start, drift_end, ids["firing"], ids
    )


def _profile(
    rng: np.random.Generator,
    kind: str,
    edges: list[float],
    categories: list[str],
    n: int,
    shifted: bool,
) -> dict[str, Any]:
    if kind == "numeric":
        x = rng.normal(1.2 if shifted else 0.0, 1.0, size=min(n, 2000))
        idx = np.searchsorted(edges, x, side="right")
        hist = np.bincount(idx, minlength=len(edges) + 1)[: len(edges) + 1]
        scale = n / len(x)
        hist = [round(float(c) * scale) for c in hist]
        return {
            "type": "numeric", "count": n, "nulls": 0, "invalid": 0,
            "min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()),
            "m2": float(((x - x.mean()) ** 2).sum() * scale), "edges": edges, "hist": hist,
            "sample": [], "sample_size": 2000, "seed": 0,
        }  # fmt: skip
    p = np.array([0.1, 0.2, 0.3, 0.4]) if shifted else np.array([0.4, 0.3, 0.2, 0.1])
    counts = rng.multinomial(n, p)
    out = {c: int(k) for c, k in zip(categories, counts, strict=True)}
    if shifted:
        out["zz_new"] = 25
    return {
        "type": "categorical",
        "count": n,
        "nulls": 0,
        "invalid": 0,
        "counts": out,
        "other": 0,
        "max_categories": 10000,
    }


def _drift_row(
    rng: np.random.Generator, name: str, numeric: bool, hot: bool
) -> tuple[Any, ...]:
    """A drift row as the default policy writes it: a test's p-value, an effect size with its
    90% interval, the tolerance and the verdict (significant and the lower bound clears it).
    A categorical column's drifted p-values are 0, as chi-squared gives at large n."""
    if numeric:
        method, effect_name, tol = "ks_t", "wasserstein_sd", 0.1
        effect = float(rng.uniform(0.3, 0.6) if hot else rng.uniform(0.0, 0.08))
        half = float(rng.uniform(0.05, 0.1))
        p = float(10 ** rng.uniform(-30, -8) if hot else rng.uniform(0.02, 1.0))
    else:
        method, effect_name, tol = "chi2_contingency", "tvd", 0.02
        effect = float(rng.uniform(0.08, 0.15) if hot else rng.uniform(0.0, 0.02))
        half = float(rng.uniform(0.01, 0.03))
        p = 0.0 if hot else float(rng.uniform(0.02, 1.0))
    lo, hi = max(0.0, effect - half), effect + half
    drifted = p <= 0.01 and lo > tol
    stat = float(-math.log(max(p, 1e-300)))
    details = {"tolerance": tol, "effect_name": effect_name, "policy": "default",
               "p_value_adjusted": min(1.0, p * 12)}  # fmt: skip
    return ("drift", name, method, stat, p, 0.01, drifted, 50000, 500, effect, lo, hi,
            Jsonb(details))  # fmt: skip


def _row(
    family: str, column: str, metric: str, value: float, threshold: float | None = None,
    drifted: bool | None = None, n: int | None = 500, ci: tuple[float, float] | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    lo, hi = ci if ci else (None, None)
    return (family, column, metric, value, None, threshold, drifted, None, n, None, lo, hi, None)


def _window_results(
    rng: np.random.Generator, names: list[str], drifted: list[str], in_drift: bool, seg: str
) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    n_drifted = 0
    for i, name in enumerate(names):
        hot = in_drift and name in drifted
        n_drifted += hot
        rows.append(_drift_row(rng, name, _kind(i) == "numeric", hot))
        null_share = float(0.15 if (hot and i == 1) else rng.uniform(0, 0.01))
        rows.append(_row("quality", name, "null_share", null_share, 0.05, null_share > 0.05))
    rows.append(_drift_row(rng, "@score", True, in_drift))
    share = n_drifted / len(names)
    rows.append(_row("dataset_drift", "", "share_drifted", share, 0.5, share >= 0.5))
    rows.append(_row("dataset_drift", "", "drifted_columns", float(n_drifted)))
    if seg:
        return rows
    auc = float((0.72 if in_drift else 0.81) + rng.normal(0, 0.01))
    rows.append(_row("performance", "", "roc_auc", auc, 0.81, None, 400))
    est = auc + float(rng.normal(0, 0.01))
    rows.append(_row("estimated_performance", "", "roc_auc", est, 0.81, None, 500,
                     (est - 0.03, est + 0.03)))  # fmt: skip
    volume = float(np.round(rng.normal(500, 30)).item())
    rows += [
        _row("operational", "", "volume", volume),
        _row("operational", "", "latency_p50", float(rng.uniform(3, 5))),
        _row("operational", "", "latency_p95", float(rng.uniform(9, 14))),
        _row("operational", "", "latency_p99", float(rng.uniform(20, 30))),
    ]
    return rows


def _alerts(
    conn: psycopg.Connection[Any],
    model_id: int,
    model: str,
    column: str,
    drift_start: datetime,
    drift_end: datetime,
) -> dict[str, int]:
    rule_id = conn.execute(
        "INSERT INTO alert_rules (model_id, name, metric, operator, threshold, severity, "
        "channels) VALUES (%s, 'feature drift', 'drift.drifted', '==', 1, 'warning', "
        "ARRAY['ops-webhook']) RETURNING id",
        (model_id,),
    ).fetchone()[0]  # type: ignore[index]
    labels = {"model": model, "rule": "feature drift", "column": column, "severity": "warning"}
    firing = conn.execute(
        "INSERT INTO alerts (rule_id, model_id, fingerprint, state, column_name, labels, value, "
        "window_start, started_at) VALUES (%s, %s, %s, 'firing', %s, %s, 0.31, %s, %s) "
        "RETURNING id",
        (
            rule_id,
            model_id,
            f"{model}/{column}/firing",
            column,
            Jsonb(labels),
            drift_start + timedelta(hours=5),
            drift_start + timedelta(hours=6),
        ),
    ).fetchone()[0]  # type: ignore[index]
    resolved = conn.execute(
        "INSERT INTO alerts (rule_id, model_id, fingerprint, state, column_name, labels, value, "
        "window_start, started_at, resolved_at) "
        "VALUES (%s, %s, %s, 'resolved', '@score', %s, 0.2, %s, %s, %s) RETURNING id",
        (
            rule_id,
            model_id,
            f"{model}/@score",
            Jsonb({**labels, "column": "@score"}),
            drift_start,
            drift_start + timedelta(hours=1),
            drift_end,
        ),
    ).fetchone()[0]  # type: ignore[index]
    for alert_id, to_state in ((firing, "firing"), (resolved, "firing"), (resolved, "resolved")):
        conn.execute(
            "INSERT INTO alert_events (alert_id, from_state, to_state, window_start, value) "
            "VALUES (%s, NULL, %s, %s, 0.3)",
            (alert_id, to_state, drift_start),
        )
    channel_id = conn.execute(
        "INSERT INTO channels (name, kind, target_encrypted, target_display) "
        "VALUES ('ops-webhook', 'webhook', %s, 'https://hooks.example.com/…') RETURNING id",
        (b"encrypted",),
    ).fetchone()[0]  # type: ignore[index]
    delivery_id = conn.execute(
        "INSERT INTO deliveries (channel_id, event_id, event_type, payload, status, attempts, "
        "last_status_code) VALUES (%s, 'evt-1', 'alert.firing', %s, 'delivered', 2, 200) "
        "RETURNING id",
        (channel_id, Jsonb({"alert": firing})),
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, at, status_code, error, duration_ms) "
        "VALUES (%s, now() - interval '1 minute', 503, 'Service Unavailable', 120.0), "
        "(%s, now(), 200, NULL, 35.5)",
        (delivery_id, delivery_id),
    )
    return {"firing": firing, "resolved": resolved, "rule": rule_id, "delivery": delivery_id}


def seed_raw_window(engine: sa.Engine, seeded: Seeded, window_start: datetime, n: int = 400) -> int:
    """Raw prediction rows for one window (shifted like the drift period), for the report."""
    from monitor.storage.partitions import ensure_partitions

    with engine.begin() as sa_conn:
        ensure_partitions(sa_conn, first=window_start.date(), last=window_start.date())
    rng = np.random.default_rng(3)
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    with psycopg.connect(url) as conn:
        kinds = conn.execute(
            "SELECT name, kind, position FROM features WHERE model_id = %s", (seeded.model_id,)
        ).fetchall()
        version = conn.execute(
            "SELECT id FROM model_versions WHERE model_id = %s ORDER BY id LIMIT 1",
            (seeded.model_id,),
        ).fetchone()[0]  # type: ignore[index]
        n_num = sum(1 for _, k, _ in kinds if k == "numeric")
        n_cat = len(kinds) - n_num
        with conn.cursor().copy(
            "COPY predictions (model_id, event_ts, record_id, version_id, num, cat, "
            "prediction_num) FROM STDIN"
        ) as copy:
            for i in range(n):
                num = rng.normal(1.2, 1.0, n_num).tolist()
                cat = rng.choice(["a", "b", "c", "d", "zz_new"], n_cat).tolist()
                ts = window_start + timedelta(seconds=int(i * 3600 / n))
                copy.write_row((seeded.model_id, ts, f"r{i}", version, num, cat, 0.0))
    return n
