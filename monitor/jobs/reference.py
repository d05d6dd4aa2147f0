"""The reference a window is compared with: the training baseline or a rolling production window.

Training (default) shows training-serving skew; rolling (the last N days of production, merged
from stored window profiles, never from rows) shows drift in production itself. A version without
its own baseline falls back to the model's latest baseline and says so (``fallback``), which the
results carry in their details so the UI can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from monitor.statistics.profiles import Profile, profile_from_dict

MIN_ROLLING_ROWS = 100
"""A rolling reference with fewer rows than this falls back to the training baseline."""


@dataclass(frozen=True)
class RefColumn:
    name: str  # name in results: the feature's name, or @prediction / @score
    source: str  # column name in the baseline file
    role: str  # feature | prediction | score | target
    kind: str  # numeric | categorical
    profile: Profile


@dataclass
class Reference:
    baseline_id: int
    version: str
    fallback: bool
    mode: str
    columns: list[RefColumn]
    performance: dict[str, float] | None = None
    note: str | None = None
    created_at: datetime | None = None

    def details(self) -> dict[str, Any]:
        """What results record about their reference."""
        out: dict[str, Any] = {
            "reference": self.mode,
            "baseline_version": self.version,
            "baseline_fallback": self.fallback,
        }
        if self.note:
            out["reference_note"] = self.note
        return out


_CACHE: dict[tuple[int, datetime], list[RefColumn]] = {}
"""Baseline columns by (baseline id, registration time): a replaced baseline gets a new key."""


def load_training(conn: sa.Connection, model_id: int, version_id: int | None) -> Reference | None:
    """The baseline of ``version_id``, else the model's latest one (marked as a fallback)."""
    row = conn.execute(
        sa.text(
            "SELECT b.id, v.version, b.version_id = :v AS own, b.performance, b.created_at,"
            " b.columns FROM baselines b JOIN model_versions v ON v.id = b.version_id"
            " WHERE b.model_id = :m"
            " ORDER BY (b.version_id = :v) DESC, b.created_at DESC, b.id DESC LIMIT 1"
        ),
        {"m": model_id, "v": version_id if version_id is not None else -1},
    ).first()
    if row is None:
        return None
    baseline_id, version, own, performance, created_at, spec = row
    key = (baseline_id, created_at)
    if key not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = _load_columns(conn, baseline_id, spec)
    fallback = version_id is not None and not own
    return Reference(
        baseline_id, version, fallback, "training", _CACHE[key], performance, created_at=created_at
    )


def _load_columns(conn: sa.Connection, baseline_id: int, spec: list[Any]) -> list[RefColumn]:
    """The baseline's columns: features in the baseline's order, then the model's outputs."""
    columns = []
    for name, role, kind, prof, sample in conn.execute(
        sa.text(
            "SELECT column_name, role, kind, profile, sample_num FROM baseline_profiles"
            " WHERE baseline_id = :b"
        ),
        {"b": baseline_id},
    ):
        if role == "rows":
            continue
        source = prof.get("source_column", name)
        if prof.get("type") == "numeric":
            prof = {**prof, "sample": sample or []}
        columns.append(RefColumn(name, source, role, kind, profile_from_dict(prof)))
    position = {c["name"]: i for i, c in enumerate(spec)}
    order = {"feature": 0, "prediction": 1, "score": 2, "target": 3}
    return sorted(columns, key=lambda c: (order.get(c.role, 9), position.get(c.source, 1 << 30)))


_ROWS: dict[tuple[int, datetime | None], dict[str, Any] | None] = {}


def load_row_sample(conn: sa.Connection, ref: Reference) -> dict[str, Any] | None:
    """The baseline's row-aligned feature sample (for multivariate drift), if it has one."""
    key = (ref.baseline_id, ref.created_at)
    if key not in _ROWS:
        if len(_ROWS) > 16:
            _ROWS.clear()
        _ROWS[key] = conn.execute(
            sa.text(
                "SELECT profile FROM baseline_profiles WHERE baseline_id = :b AND role = 'rows'"
            ),
            {"b": ref.baseline_id},
        ).scalar()
    return _ROWS[key]


def load_rolling(
    conn: sa.Connection, model_id: int, window_start: datetime, days: int, training: Reference
) -> Reference:
    """Merge the stored all-traffic profiles of the ``days`` before ``window_start``."""
    merged: dict[str, Profile] = {}
    for name, prof, sample in conn.execute(
        sa.text(
            "SELECT column_name, profile, sample_num FROM window_profiles WHERE model_id = :m"
            " AND segment = '' AND window_start >= :lo AND window_start < :hi"
            " ORDER BY window_start"
        ),
        {"m": model_id, "lo": window_start - timedelta(days=days), "hi": window_start},
    ):
        if prof.get("type") == "numeric":
            prof = {**prof, "sample": sample or []}
        current = profile_from_dict(prof)
        if name in merged:
            merged[name] = merge_compatible(merged[name], current)
        else:
            merged[name] = current
    columns = []
    for col in training.columns:
        prof = merged.get(col.name)
        if prof is None or not compatible(col.profile, prof):
            continue
        columns.append(replace(col, profile=prof))
    rows = max((c.profile.count for c in columns), default=0)
    if rows < MIN_ROLLING_ROWS:
        return replace(
            training,
            note=f"rolling reference of the last {days} days has {rows} "
            "rows; compared with the training baseline instead",
        )
    return Reference(
        training.baseline_id,
        training.version,
        training.fallback,
        "rolling",
        columns,
        training.performance,
        note=f"last {days} days of production",
    )


def compatible(a: Profile, b: Profile) -> bool:
    """Same kind and, for numbers, the same bin edges (profiles of one baseline)."""
    return type(a) is type(b) and getattr(a, "edges", None) == getattr(b, "edges", None)


def merge_compatible(a: Profile, b: Profile) -> Profile:
    """Merge two profiles; one whose bin edges differ (another baseline) is left out."""
    if not compatible(a, b):
        return a
    return a.merge(b)  # type: ignore[arg-type]


def load_reference(
    conn: sa.Connection, model_id: int, version_id: int | None, window_start: datetime
) -> Reference | None:
    """The reference for a window of ``model_id`` whose dominant version is ``version_id``."""
    training = load_training(conn, model_id, version_id)
    if training is None:
        return None
    mode, days = conn.execute(
        sa.text("SELECT baseline_mode, rolling_baseline_days FROM models WHERE id = :m"),
        {"m": model_id},
    ).one()
    if mode == "rolling":
        return load_rolling(conn, model_id, window_start, int(days), training)
    return training
