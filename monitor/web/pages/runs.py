"""The runs page: is the monitor itself healthy (window jobs per model, lag, backlog, failures)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from monitor.web.auth import Principal, require_page
from monitor.web.deps import read_conn
from monitor.web.reads import runs
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request,
    model: str | None = Query(None, max_length=200),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    # never cached: a stuck worker must show on the next request
    rows = runs.runs_overview(conn)
    failures = runs.failed_runs(conn)
    if model:
        rows = [r for r in rows if r["model"] == model]
        failures = [f for f in failures if f["model"] == model]
    return render(
        request,
        "runs.html",
        {"rows": rows, "failures": failures, "model": model, "recent_days": runs.RECENT_DAYS},
    )
