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
from monitor.web.reads import incidents, overview
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
    models.sort(key=lambda m: (overview.STATUS_ORDER.get(m["status"], 9), m["name"]))
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
    found = incidents.list_incidents(conn, view["model"]["name"], days=30, limit=8, cache=cache)
    return render(
        request,
        "model.html",
        {
            "view": view,
            "m": view["model"],
            "results_html": html,
            "incidents": found,
            "ranges": list(RANGES),
            "range_query": range_query,
            "per_point": bucket_label(view, view["model"]["window_seconds"]),
        },
    )


PERFORMANCE_ORDER = (
    "roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "calibration_error",
    "r2", "rmse", "mae", "mape",
)  # fmt: skip


def bucket_label(view: dict[str, Any], window_seconds: int) -> str:
    """What one point of the page's series covers: "window (1 h)" or "6 h bucket"."""
    seconds = int(view["range"]["bucket_seconds"])
    size = f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds // 60} min"
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        size = f"{seconds // 86400} d"
    return f"window ({size})" if seconds <= window_seconds else f"{size} bucket"


def _model_figures(view: dict[str, Any]) -> dict[str, Any]:
    """The model page's figure specs, serialised once per results version."""
    step = view["range"]["bucket_seconds"]
    per = bucket_label(view, view["model"]["window_seconds"])
    outputs = view.get("output_effect", {})
    names = {v.SCORE_COLUMN: "model score", v.PREDICTION_COLUMN: "predicted class"}
    operational = view["operational"]
    volume = {k: val for k, val in operational.items() if k == v.VOLUME}
    latency = {k: val for k, val in operational.items() if k.startswith("latency_")}
    figures: dict[str, Any] = {
        "heatmap": charts.heatmap(view["heatmap"]) if view["heatmap"]["features"] else None,
        "outputs": {
            col: charts.effect(
                f"Output drift: {names.get(col, col)} ({col}), size of the change",
                line,
                step=step,
            )
            for col, line in sorted(outputs.items())
            if not (charts.no_data(line, "effect") and charts.no_data(line))
        },
        "dataset": charts.lines(
            f"Share of features drifted per {per}",
            {k: val for k, val in view["dataset_drift"].items() if k == "share_drifted"},
            percent=True,
            step=step,
            y_title="features drifted",
        )
        if "share_drifted" in view["dataset_drift"]
        else None,
        "quality": charts.lines(
            f"Data quality: worst feature per {per}",
            view["quality"],
            step=step,
            y_title="share of rows (type errors: count)",
        )
        if view["quality"]
        else None,
        "performance": _performance_figures(view, step),
        "volume": charts.lines(f"Predictions per {per}", volume, step=step, y_title="predictions")
        if volume
        else None,
        "latency": charts.lines(f"Latency per {per}", latency, step=step, y_title="milliseconds")
        if latency
        else None,
    }
    out: dict[str, Any] = {}
    for k, f in figures.items():
        if isinstance(f, dict) and "data" not in f:  # one chart per metric
            out[k] = {col: script_json(spec) for col, spec in f.items()}
        else:
            out[k] = None if f is None else script_json(f)
    return out


def _performance_figures(view: dict[str, Any], step: int) -> dict[str, Any]:
    """One small chart per metric, realised and estimated overlaid (most telling first)."""
    realised, estimated = view["performance"], view["estimated_performance"]
    metrics = [
        m
        for m in set(realised) | set(estimated)
        if not (charts.no_data(realised.get(m) or {}) and charts.no_data(estimated.get(m) or {}))
    ]
    rank = {m: k for k, m in enumerate(PERFORMANCE_ORDER)}
    metrics.sort(key=lambda m: (rank.get(m, len(rank)), m))
    return {m: charts.performance(m, realised.get(m), estimated.get(m), step=step) for m in metrics}


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
    return render(
        request,
        "feature.html",
        {
            "view": view,
            "figures": figures,
            "ranges": list(RANGES),
            "range_query": _range_query(view),
        },
    )


def _feature_figures(view: dict[str, Any]) -> dict[str, Markup | None]:
    feature = view["feature"]
    step = view["range"]["bucket_seconds"]
    eff: dict[str, Any] = view.get("effect") or {}
    has_p = any(p is not None for p in eff.get("p_value", []))
    figures = {
        "drift": charts.effect(
            f"{feature}: size of the change, against its tolerance", eff, step=step
        )
        if eff and not (charts.no_data(eff, "effect") and charts.no_data(eff))
        else None,
        "pvalue": charts.p_values(f"{feature}: test p-value (secondary)", eff, step=step)
        if has_p
        else None,
        "distribution": charts.distribution(view["distribution"], feature)
        if view["distribution"]["reference"] or view["distribution"]["current"]
        else None,
        "quality": charts.lines(
            f"{feature}: data quality", view["quality"], step=step, y_title="share of rows"
        )
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
