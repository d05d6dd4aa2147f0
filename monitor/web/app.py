"""FastAPI application factory.

The app reads stored results and profiles; it never computes drift in a request. Routers are
registered in :data:`ROUTERS` (module:attribute), one line per area, so areas stay independent.
"""

from __future__ import annotations

import importlib
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from monitor.storage.engine import describe_db_error

ROUTERS: list[str] = [
    "monitor.web.ingest:router",
]


def create_app(engine: sa.Engine) -> FastAPI:
    """Build the app around ``engine`` (schema already checked by the caller)."""
    app = FastAPI(
        title="monitor",
        description="Drift, data quality, performance and alerts for ML models in production.",
        version="0.1.0",
    )
    app.state.engine = engine

    @app.get("/healthz", tags=["health"], summary="Liveness and database reachability")
    def healthz() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            return JSONResponse(
                {"status": "error", "database": describe_db_error(exc)}, status_code=503
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    for spec in ROUTERS:
        module, attr = spec.split(":")
        router: Any = getattr(importlib.import_module(module), attr)
        app.include_router(router)
    return app
