"""FastAPI application factory.

The app reads stored results and profiles; it never computes drift in a request. Routers are
registered in :data:`ROUTERS` (module:attribute), one line per area, so areas stay independent.

Errors: API routes (``/api/``, ``/v1/``, ``/metrics``) answer JSON ``{"detail": message}``;
pages answer an HTML error page, and an unauthenticated page request is redirected to ``/login``.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import plotly
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import DatabaseError, InputError, MonitorError, NotFoundError
from monitor.settings import get_settings
from monitor.storage.engine import describe_db_error
from monitor.web.auth import LoginRequired
from monitor.web.cache import ViewCache
from monitor.web.deps import autocommit
from monitor.web.report import BusyError

log = logging.getLogger(__name__)

ROUTERS: list[str] = [
    "monitor.web.ingest:router",
    "monitor.web.pages.login:router",
    "monitor.web.pages.models:router",
    "monitor.web.pages.alerts:router",
    "monitor.web.pages.admin:router",
    "monitor.web.pages.runs:router",
    "monitor.web.api.models:router",
    "monitor.web.api.alerts:router",
    "monitor.web.api.admin:router",
    "monitor.web.api.runs:router",
    "monitor.web.metrics:router",
]

STATIC_DIR = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
API_PREFIXES = ("/api/", "/v1/", "/metrics", "/docs", "/openapi.json")


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _error(request: Request, status: int, message: Any, headers: Any = None) -> Response:
    if is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    from monitor.web.templating import render_error

    return render_error(request, status, str(message), headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if is_api(request):
            return JSONResponse({"detail": "invalid request", "errors": problems}, status_code=422)
        text = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems)
        return _error(request, 422, f"invalid request: {text}")

    @app.exception_handler(MonitorError)
    async def monitor_error(request: Request, exc: MonitorError) -> Response:
        status = 500
        if isinstance(exc, NotFoundError):
            status = 404
        elif isinstance(exc, InputError):
            status = 400
        elif isinstance(exc, DatabaseError | BusyError):
            status = 503
        return _error(request, status, str(exc))

    @app.exception_handler(sa.exc.DBAPIError)
    async def db_error(request: Request, exc: sa.exc.DBAPIError) -> Response:
        if isinstance(exc, sa.exc.DataError):
            return _error(request, 400, f"invalid value: {describe_db_error(exc)}")
        log.warning("database error on %s: %s", request.url.path, describe_db_error(exc))
        return _error(request, 503, describe_db_error(exc))


def create_app(engine: sa.Engine, max_stale_seconds: float | None = None) -> FastAPI:
    """Build the app around ``engine`` (schema already checked by the caller).

    ``max_stale_seconds``: how long a cached view may be answered stale while it is refreshed
    (default ``settings.web_max_stale_seconds``; see :mod:`monitor.web.cache`).
    """

    app = FastAPI(
        title="monitor",
        description="Drift, data quality, performance and alerts for ML models in production. "
        "Authenticate with `Authorization: Bearer <token>` (`monitor token create`).",
        version="0.1.0",
        # /docs and /openapi.json are our own authenticated routes (monitor.web.pages.admin)
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.read_engine = autocommit(engine)
    if max_stale_seconds is None:
        max_stale_seconds = get_settings().web_max_stale_seconds
    app.state.view_cache = ViewCache(engine=app.state.read_engine, max_stale=max_stale_seconds)
    _install_error_handlers(app)

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

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        # served from the installed plotly package: the dashboard never loads a CDN
        return FileResponse(
            PLOTLY_JS,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    for spec in ROUTERS:
        module, attr = spec.split(":")
        router: Any = getattr(importlib.import_module(module), attr)
        app.include_router(router)
    return app


def app_from_settings() -> FastAPI:
    """The app on the configured database: the factory each ``monitor serve`` worker calls.

    Every worker process builds its own engine (a pool must never cross a fork); the parent
    has already checked (or migrated) the schema, so workers do not repeat it.
    """
    from monitor.storage.engine import get_engine

    return create_app(get_engine())
