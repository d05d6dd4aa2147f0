"""API: health of the monitor's own jobs (the runs page as JSON)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query

from monitor.web.auth import require_scope
from monitor.web.deps import FastJSON, ok, read_conn
from monitor.web.reads import runs

router = APIRouter(prefix="/api/v1", tags=["runs"], dependencies=[Depends(require_scope("read"))])


@router.get("/runs/health", summary="Window jobs per model: lag, backlog, durations, failures")
def runs_health(
    failures: int = Query(20, ge=0, le=500, description="Failed runs to list, newest first."),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    return ok({"jobs": runs.runs_overview(conn), "failures": runs.failed_runs(conn, failures)})
