"""Pages: the models overview, a model's dashboard and a feature's drift detail."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from monitor.storage import vocabulary as v
from monitor.web import charts
from monitor.web.auth import Principal, require_page
from monitor.web.cache import view_cache
from monitor.web.deps import read_conn
from monitor.web.reads import alerting, overview
from monitor.web.reads.common import RANGES
from monitor.web.report import report_response
from monitor.web.safejson import script_json
from monitor.web.templating import render, render_fragment
from monitor.web.views import feature_view, model_view

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())


@router.get("/", response_class=HTMLResponse)
def models_page(
    request: Request,
    offset: int = Query(0, ge=0, le=1_000_000),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    models, more = overview.list_models(conn, 100, offset, view_cache(request.app.state))
    return render(request, "models.html", {"models": models, "more": more, "offset": offset})


def _range_query(view: dict[str, Any]) -> dict[str, str]:
    r = view["range"]
    q = {"range": r["range"]}
    if r["range"] == "custom":
        q.update(start=r["start"], end=r["end"])
    if view["segment"]:
        q["segment"] = view["segment"]
    return q


@router.get("/models/{model:name}", response_class=HTMLResponse)
def model_page(
    request: Request,
    model: str,
    range: str | None = Query(None, pattern="^(1d|7d|14d|30d|90d|custom)$"),
    start: str | None = Query(None, max_length=40),
    end: str | None = Query(None, max_length=40),
    segment: str | None = Query(None, max_length=500),
    sort: str = Query("drifted", pattern="^(drifted|name)$"),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    cache = view_cache(request.app.state)
    view, key = model_view(conn, model, range, start, end, segment, sort, cache)
    range_query = _range_query(view)

    def results_html() -> Markup:
        # the figures and feature table depend on the results (and range) alone: rendered
        # once per results version, not per request (400 KiB of page at 90 days)
        return render_fragment(
            "_model_results.html",
            {
                "view": view,
                "model_name": view["model"]["name"],
                "figures": _model_figures(view),
                "range_query": range_query,
                "heatmap_features": [f["name"] for f in view["heatmap"]["features"]],
            },
        )

    html = cache.get_or_compute(None if key is None else ("model-html", key), results_html)
    alerts, _ = alerting.list_alerts(conn, "open", model, 50, 0)
    return render(
        request,
        "model.html",
        {
            "view": view,
            "m": view["model"],
            "results_html": html,
            "alerts": alerts,
            "ranges": list(RANGES),
            "range_query": range_query,
        },
    )


def _model_figures(view: dict[str, Any]) -> dict[str, Markup | None]:
    """The model page's figure specs, serialised once per results version."""
    outputs = {
        f"{col} {method}": line
        for col, metrics in view["prediction_drift"].items()
        for method, line in metrics.items()
    }
    figures = {
        "heatmap": charts.heatmap(view["heatmap"]),
        "prediction": charts.lines(
            "Drift of the model's outputs", outputs, threshold=True, field="auto"
        )
        if outputs
        else None,
        "dataset": charts.lines(
            "Share of drifted features",
            {k: val for k, val in view["dataset_drift"].items() if k == "share_drifted"},
            percent=True,
        )
        if "share_drifted" in view["dataset_drift"]
        else None,
        "quality": charts.lines("Data quality (worst column per window)", view["quality"])
        if view["quality"]
        else None,
        "performance": _performance_figure(view),
        "volume": charts.lines(
            "Volume per window",
            {k: val for k, val in view["operational"].items() if k == v.VOLUME},
        )
        if v.VOLUME in view["operational"]
        else None,
        "latency": charts.lines(
            "Latency (ms)",
            {k: val for k, val in view["operational"].items() if k.startswith("latency_")},
        )
        if any(k.startswith("latency_") for k in view["operational"])
        else None,
    }
    return {k: None if f is None else script_json(f) for k, f in figures.items()}


def _performance_figure(view: dict[str, Any]) -> dict[str, Any] | None:
    metrics: dict[str, Any] = {}
    for name, line in view["performance"].items():
        metrics[f"{name} (realised)"] = line
    for name, line in view["estimated_performance"].items():
        metrics[f"{name} (estimated)"] = line
    if not metrics:
        return None
    return charts.lines("Performance: realised (labels) and estimated (no labels)", metrics)


@router.get("/models/{model:name}/features/{feature:name}", response_class=HTMLResponse)
def feature_page(
    request: Request,
    model: str,
    feature: str,
    range: str | None = Query(None, pattern="^(1d|7d|14d|30d|90d|custom)$"),
    start: str | None = Query(None, max_length=40),
    end: str | None = Query(None, max_length=40),
    segment: str | None = Query(None, max_length=500),
    window: str | None = Query(None, max_length=40),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    cache = view_cache(request.app.state)
    view, key = feature_view(conn, model, feature, range, start, end, segment, window, cache)
    figures = cache.get_or_compute(
        None if key is None else ("feature-figures", key), lambda: _feature_figures(view)
    )
    pvalue = any(any(p is not None for p in line["p_value"]) for line in view["drift"].values())
    return render(
        request,
        "feature.html",
        {
            "view": view,
            "figures": figures,
            "ranges": list(RANGES),
            "range_query": _range_query(view),
            "pvalue": pvalue,
        },
    )


def _feature_figures(view: dict[str, Any]) -> dict[str, Markup | None]:
    feature = view["feature"]
    pvalue = any(any(p is not None for p in line["p_value"]) for line in view["drift"].values())
    figures = {
        "drift": charts.lines(
            f"{feature}: drift {'p-value' if pvalue else 'statistic'} against its threshold",
            view["drift"],
            field="p_value" if pvalue else "value",
            threshold=True,
            log_y=pvalue,
        )
        if view["drift"]
        else None,
        "distribution": charts.distribution(view["distribution"], feature)
        if view["distribution"]["reference"] or view["distribution"]["current"]
        else None,
        "quality": charts.lines(f"{feature}: data quality", view["quality"])
        if view["quality"]
        else None,
    }
    return {k: None if f is None else script_json(f) for k, f in figures.items()}


@router.get("/models/{model:name}/report")
def report_download(
    request: Request,
    model: str,
    window: str = Query(..., max_length=40, description="Window start (ISO 8601)."),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> Response:
    return report_response(conn, model, window)
