"""API: models, their health, drift heatmap, result series, features and distributions."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from monitor.storage import vocabulary as v
from monitor.web.auth import require_scope
from monitor.web.cache import results_version, view_cache
from monitor.web.deps import FastJSON, Page, cached_json, dumps, ok, page, read_conn
from monitor.web.reads import overview, series
from monitor.web.reads.common import (
    DEFAULT_RANGE,
    finite,
    get_model,
    iso,
    parse_ts,
    reread_model,
    time_range,
)
from monitor.web.report import report_response
from monitor.web.views import anchor, feature_view, model_view

router = APIRouter(prefix="/api/v1", tags=["models"], dependencies=[Depends(require_scope("read"))])

ModelName = Annotated[str, Path(min_length=1, max_length=200, description="Model name.")]
RangeQ = Annotated[
    str | None, Query(pattern="^(1d|7d|14d|30d|90d|custom)$", description="Preset range.")
]
TIMESTAMP: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]
}
"""An RFC 3339 timestamp, or empty for the default (as an HTML form sends an unset field)."""
StartQ = Annotated[
    str | None,
    Query(max_length=40, description="Range start (ISO 8601).", json_schema_extra=TIMESTAMP),
]
EndQ = Annotated[
    str | None,
    Query(
        max_length=40,
        description="Range end (ISO 8601); default: newest window.",
        json_schema_extra=TIMESTAMP,
    ),
]
SegmentQ = Annotated[
    str | None, Query(max_length=500, description="Segment, e.g. `region=eu`; empty: all.")
]


@router.get("/models", summary="Every model with its health at a glance")
def list_models(
    request: Request, p: Page = Depends(page), conn: sa.Connection = Depends(read_conn)
) -> FastJSON:
    items, more = overview.list_models(conn, p.limit, p.offset, view_cache(request.app.state))
    return ok(p.envelope(items, more))


@router.get("/models/{model:name}", summary="A model: health, versions, features, segments")
def get_model_detail(
    request: Request, model: ModelName, conn: sa.Connection = Depends(read_conn)
) -> FastJSON:
    return ok(overview.model_detail(conn, model, view_cache(request.app.state)))


@router.get("/models/{model:name}/dashboard", summary="Everything the model page charts")
def model_dashboard(
    request: Request,
    model: ModelName,
    range: RangeQ = None,
    start: StartQ = None,
    end: EndQ = None,
    segment: SegmentQ = None,
    sort: str = Query("drifted", pattern="^(drifted|name)$"),
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    cache = view_cache(request.app.state)
    view, key = model_view(conn, model, range, start, end, segment, sort, cache)
    # health and open alerts are read per request; the series only change with the key
    return cached_json(view, key, cache, fresh=("model",))


@router.get("/models/{model:name}/heatmap", summary="Drift score per feature and window")
def model_heatmap(
    request: Request,
    model: ModelName,
    range: RangeQ = None,
    start: StartQ = None,
    end: EndQ = None,
    segment: SegmentQ = None,
    sort: str = Query("drifted", pattern="^(drifted|name)$"),
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    ref = get_model(conn, model)
    time_range(conn, ref, range, start, end)  # a bad range is a 400 before the cache
    seg = segment or ""
    version = results_version(conn, ref)
    family = ("heatmap", ref.id, range or DEFAULT_RANGE, start, end, seg, sort)

    def body(c: sa.Connection) -> tuple[Hashable | None, bytes]:
        m, r, ver = anchor(c, ref, range, start, end)
        return ver, dumps({"range": r.as_dict(), **series.heatmap(c, m, r, seg, sort)})

    _, content = view_cache(request.app.state).view(family, version, conn, body)
    return Response(content, media_type="application/json")


@router.get("/models/{model:name}/series/{family}", summary="One result family over time")
def model_series(
    model: ModelName,
    family: str = Path(..., pattern="^(" + "|".join(v.FAMILIES) + ")$"),
    column: str | None = Query(
        "", max_length=500, description="'' whole-window rows; a column name; '*' every column."
    ),
    agg: str = Query("avg", pattern="^(avg|max|min|sum)$"),
    range: RangeQ = None,
    start: StartQ = None,
    end: EndQ = None,
    segment: SegmentQ = None,
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    ref = get_model(conn, model)
    tr = time_range(conn, ref, range, start, end)
    col = None if column == "*" else (column or "")
    return ok(
        {
            "range": tr.as_dict(),
            **series.family_series(conn, ref, tr, family, segment or "", col, agg),
        }
    )


@router.get(
    "/models/{model:name}/features/{feature:name}",
    summary="A feature: drift vs threshold over time, quality, reference vs current distribution",
)
def model_feature(
    request: Request,
    model: ModelName,
    feature: str = Path(..., min_length=1, max_length=500),
    range: RangeQ = None,
    start: StartQ = None,
    end: EndQ = None,
    segment: SegmentQ = None,
    window: str | None = Query(
        None,
        max_length=40,
        description="Window start (ISO 8601), or 'range' to merge the range.",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "enum": ["range", ""]},
            ]
        },
    ),
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    cache = view_cache(request.app.state)
    view, key = feature_view(conn, model, feature, range, start, end, segment, window, cache)
    return cached_json(view, key, cache)


@router.get("/models/{model:name}/results", summary="Stored result rows, newest first")
def model_results(
    request: Request,
    model: ModelName,
    family: str | None = Query(None, pattern="^(" + "|".join(v.FAMILIES) + ")$"),
    column: str | None = Query(None, max_length=500),
    metric: str | None = Query(None, max_length=200),
    segment: SegmentQ = None,
    start: StartQ = None,
    end: EndQ = None,
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    ref = get_model(conn, model)
    where = ["model_id = :m", "segment = :s"]
    params: dict[str, Any] = {"m": ref.id, "s": segment or "", "l": p.limit + 1, "o": p.offset}
    for key, value in (("family", family), ("column_name", column), ("metric", metric)):
        if value is not None:
            where.append(f"{key} = :{key}")
            params[key] = value
    s, e = parse_ts(start, "start"), parse_ts(end, "end")
    if s:
        where.append("window_start >= :start")
        params["start"] = s
    if e:
        where.append("window_start < :end")
        params["end"] = e

    def body(c: sa.Connection) -> tuple[Hashable | None, bytes]:
        ver = results_version(c, reread_model(c, ref))  # first, see monitor.web.cache
        rows = c.execute(
            sa.text(
                "SELECT window_start, window_end, segment, family, column_name, metric, value, "
                "p_value, threshold, effect_size, ci_low, ci_high, drifted, status, "
                "n_reference, n_current, details, computed_at FROM results WHERE "
                + " AND ".join(where)
                + " ORDER BY window_start DESC, family, column_name, metric LIMIT :l OFFSET :o"
            ),
            params,
        ).all()
        items = [_result(r) for r in rows[: p.limit]]
        return ver, dumps(p.envelope(items, len(rows) > p.limit))

    # stored rows change only with the results version: the page's JSON is encoded once
    version = results_version(conn, ref)
    view_family = ("results", ref.id, *sorted(params.items()))
    _, content = view_cache(request.app.state).view(view_family, version, conn, body)
    return Response(content, media_type="application/json")


def _result(r: Any) -> dict[str, Any]:
    out = {k: finite(val) for k, val in r._mapping.items()}
    for k in ("window_start", "window_end", "computed_at"):
        out[k] = iso(r._mapping[k])
    return out


@router.get("/models/{model:name}/runs", summary="Job runs of the model's windows, newest first")
def model_runs(
    model: ModelName,
    status: str | None = Query(None, pattern="^(pending|running|succeeded|failed|skipped|stale)$"),
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    ref = get_model(conn, model)
    rows = conn.execute(
        sa.text(
            "SELECT job, window_start, window_end, status, attempt, rows, reason, error, "
            "started_at, finished_at FROM runs WHERE model_id = :m "
            "AND (CAST(:st AS text) IS NULL OR status = :st) "
            "ORDER BY window_start DESC, job LIMIT :l OFFSET :o"
        ),
        {"m": ref.id, "st": status, "l": p.limit + 1, "o": p.offset},
    ).all()
    items = [
        {k: (iso(val) if isinstance(val, datetime) else val) for k, val in r._mapping.items()}
        for r in rows[: p.limit]
    ]
    return ok(p.envelope(items, len(rows) > p.limit))


@router.get(
    "/models/{model:name}/report",
    summary="Evidently HTML report: baseline sample vs one window's rows (while retained)",
    response_class=Response,
    responses={
        200: {
            "description": "A standalone HTML file (a download, sandboxed by its own CSP).",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def model_report(
    model: ModelName,
    window: str = Query(
        ...,
        max_length=40,
        description="Window start (ISO 8601).",
        json_schema_extra={"format": "date-time"},
    ),
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    return report_response(conn, model, window)
