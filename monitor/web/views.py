"""What the model and feature pages show, as data: one function per view, shared by API and page."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import sqlalchemy as sa

from monitor.errors import InputError, NotFoundError
from monitor.storage import vocabulary as v
from monitor.web.cache import ViewCache, cached_view, results_version
from monitor.web.reads import overview, profiles, series
from monitor.web.reads.common import (
    DEFAULT_RANGE,
    ModelRef,
    TimeRange,
    get_model,
    iso,
    parse_ts,
    reread_model,
    time_range,
)


def _segment(value: str | None) -> str:
    seg = value or ""
    if len(seg) > 500 or "\x00" in seg:
        raise InputError("segment must be at most 500 characters")
    return seg


def anchor(
    c: sa.Connection, model: ModelRef, range_: str | None, start: str | None, end: str | None
) -> tuple[ModelRef, TimeRange, Hashable | None]:
    """The model, time range and results version a cached view is computed from, read on
    ``c`` when the computation runs: the version first (with the model, one statement), and
    the range re-derived from its label, so a refreshed "14d" ends at the newest window.

    Read again even on the request's own connection: the cache orders values by when their
    computation started reading (:mod:`monitor.web.cache`), so the version must be read then.
    """
    m = reread_model(c, model)
    return m, time_range(c, m, range_, start, end), results_version(c, m)


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

    Returns the view and the key of its cached part (``None`` when not cached): the series
    and their range are cached per results version (and may be the previous version's for a
    few seconds, see :mod:`monitor.web.cache`); health and alerts are read every time.
    """
    model = get_model(conn, name)
    seg = _segment(segment)
    if sort not in ("drifted", "name"):
        raise InputError("sort must be 'drifted' or 'name'")
    time_range(conn, model, range_, start, end)  # a bad range is a 400 before the cache
    version = results_version(conn, model)
    detail = overview.model_detail(conn, name, cache, model, version if cache else None)
    family = ("model", model.id, range_ or DEFAULT_RANGE, start, end, seg, sort)

    def compute(c: sa.Connection) -> tuple[Hashable | None, dict[str, Any]]:
        m, r, ver = anchor(c, model, range_, start, end)
        lines = series.page_series(c, m, r, seg)
        return ver, {
            "range": r.as_dict(),
            "heatmap": series.heatmap(c, m, r, seg, sort),
            "output_effect": series.effect_lines(
                c, m, r, [v.SCORE_COLUMN, v.PREDICTION_COLUMN], seg
            ),
            "newest": series.newest_effects(c, m, r, seg),
            "prediction_drift": {
                col: lines[v.DRIFT].get(col, {}) for col in (v.PREDICTION_COLUMN, v.SCORE_COLUMN)
            },
            "dataset_drift": lines[v.DATASET_DRIFT].get("", {}),
            "quality": lines[v.QUALITY].get("*", {}),
            "performance": lines[v.PERFORMANCE].get("", {}),
            "estimated_performance": lines[v.ESTIMATED_PERFORMANCE].get("", {}),
            "operational": lines[v.OPERATIONAL].get("", {}),
        }

    key, body = cached_view(cache, family, version, conn, compute)
    view = {"model": detail, "segment": seg, "sort": sort, **body}
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
    time_range(conn, model, range_, start, end)  # a bad range is a 400 before the cache
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
    family = ("feature", model.id, feature, range_ or DEFAULT_RANGE, start, end, seg, window)
    window_ts = None if window in (None, "range") else parse_ts(window, "window")

    def compute(c: sa.Connection) -> tuple[Hashable | None, dict[str, Any]]:
        m, r, ver = anchor(c, model, range_, start, end)
        drift = series.family_series(c, m, r, v.DRIFT, seg, feature, "max")
        quality = series.family_series(c, m, r, v.QUALITY, seg, feature, "max")
        ws = None
        if window == "range":
            current = profiles.merged_profile(c, m, feature, r, seg)
        else:
            ws = window_ts or series.focus_window(c, m, r, feature, seg)
            current = profiles.current_profile(c, m, feature, ws, seg) if ws else None
        reference = profiles.reference_profile(c, m, feature)
        return ver, {
            "range": r.as_dict(),
            "drift": drift["metrics"],
            "effect": series.effect_lines(c, m, r, [feature], seg).get(feature),
            "episode": series.drift_episode(c, m, feature, ws, seg),
            "window_drift": series.window_drift(c, m, feature, ws, seg),
            "quality": quality["metrics"],
            "drifted_windows": series.drift_windows(c, m, r, feature, seg),
            "distribution": profiles.distribution(reference, current),
            "what_changed": profiles.what_changed(reference, current),
            "focus": iso(ws) if ws is not None else None,
        }

    key, body = cached_view(cache, family, version, conn, compute)
    view = {
        "model": {"name": model.name, "task": model.task},
        "feature": feature,
        "kind": known,
        "segment": seg,
        "window": window,
        **body,
    }
    return view, key
