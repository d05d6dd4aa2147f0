"""What the model and feature pages show, as data: one function per view, shared by API and page."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError
from monitor.storage import vocabulary as v
from monitor.web.cache import ViewCache, results_version
from monitor.web.reads import overview, profiles, series
from monitor.web.reads.common import get_model, parse_ts, time_range


def _segment(value: str | None) -> str:
    seg = value or ""
    if len(seg) > 500 or "\x00" in seg:
        raise InputError("segment must be at most 500 characters")
    return seg


def model_view(
    conn: sa.Connection,
    name: str,
    range_: str | None = None,
    start: str | None = None,
    end: str | None = None,
    segment: str | None = None,
    sort: str = "drifted",
    cache: ViewCache | None = None,
) -> tuple[dict[str, Any], Hashable | None]:
    """The model page: health, heatmap, output drift, quality, performance, volume, latency.

    Returns the view and its cache key (``None`` when the model has no runs to key on). The
    series part is cached per results version; health and alerts are read every time.
    """
    model = get_model(conn, name)
    seg = _segment(segment)
    if sort not in ("drifted", "name"):
        raise InputError("sort must be 'drifted' or 'name'")
    tr = time_range(conn, model, range_, start, end)
    version = results_version(conn, model)
    detail = overview.model_detail(conn, name, cache, model, version if cache else None)
    key = None if version is None else (
        "model", model.id, version, tr.start, tr.end, tr.bucket_seconds, seg, sort
    )  # fmt: skip

    def compute() -> dict[str, Any]:
        lines = series.page_series(conn, model, tr, seg)
        return {
            "heatmap": series.heatmap(conn, model, tr, seg, sort),
            "prediction_drift": {
                col: lines[v.DRIFT].get(col, {}) for col in (v.PREDICTION_COLUMN, v.SCORE_COLUMN)
            },
            "dataset_drift": lines[v.DATASET_DRIFT].get("", {}),
            "quality": lines[v.QUALITY].get("*", {}),
            "performance": lines[v.PERFORMANCE].get("", {}),
            "estimated_performance": lines[v.ESTIMATED_PERFORMANCE].get("", {}),
            "operational": lines[v.OPERATIONAL].get("", {}),
        }

    body = (cache or ViewCache(0)).get_or_compute(key if cache else None, compute)
    view = {"model": detail, "range": tr.as_dict(), "segment": seg, "sort": sort, **body}
    return view, key


def feature_view(
    conn: sa.Connection,
    name: str,
    feature: str,
    range_: str | None = None,
    start: str | None = None,
    end: str | None = None,
    segment: str | None = None,
    window: str | None = None,
    cache: ViewCache | None = None,
) -> tuple[dict[str, Any], Hashable | None]:
    """A feature's drift over time against its threshold and its distributions for a window.

    ``window``: an ISO window start, ``"range"`` for the merge of every window in range, or
    unset for the window where the feature drifted most.
    """
    model = get_model(conn, name)
    seg = _segment(segment)
    tr = time_range(conn, model, range_, start, end)
    known = conn.execute(
        sa.text(
            "SELECT kind FROM features WHERE model_id = :m AND name = :f "
            "UNION ALL SELECT 'output' WHERE :f LIKE '@%' "
            "UNION ALL (SELECT 'result' FROM results WHERE model_id = :m AND column_name = :f "
            "AND family = 'drift' LIMIT 1) LIMIT 1"
        ),
        {"m": model.id, "f": feature},
    ).scalar()
    if known is None:
        raise NotFoundError(f"model {name!r} has no feature named {feature!r}")
    version = results_version(conn, model)
    key = None if version is None else (
        "feature", model.id, version, feature, tr.start, tr.end, tr.bucket_seconds, seg, window
    )  # fmt: skip
    window_ts = None if window in (None, "range") else parse_ts(window, "window")

    def compute() -> dict[str, Any]:
        drift = series.family_series(conn, model, tr, v.DRIFT, seg, feature, "max")
        quality = series.family_series(conn, model, tr, v.QUALITY, seg, feature, "max")
        if window == "range":
            current = profiles.merged_profile(conn, model, feature, tr, seg)
        else:
            ws = window_ts or series.most_drifted_window(conn, model, tr, feature, seg)
            current = profiles.current_profile(conn, model, feature, ws, seg) if ws else None
        reference = profiles.reference_profile(conn, model, feature)
        return {
            "drift": drift["metrics"],
            "quality": quality["metrics"],
            "drifted_windows": series.drift_windows(conn, model, tr, feature, seg),
            "distribution": profiles.distribution(reference, current),
        }

    body = (cache or ViewCache(0)).get_or_compute(key if cache else None, compute)
    view = {
        "model": {"name": model.name, "task": model.task},
        "feature": feature,
        "kind": known,
        "range": tr.as_dict(),
        "segment": seg,
        "window": window,
        **body,
    }
    return view, key
