"""FastAPI application factory.

The app reads stored results and profiles; it never computes drift in a request. Routers are
registered in :data:`ROUTERS` (module:attribute), one line per area, so areas stay independent.

Errors: API routes (``/api/``, ``/v1/``, ``/metrics``) answer JSON ``{"detail": message}``;
pages answer an HTML error page, and an unauthenticated page request is redirected to ``/login``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import plotly
import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from monitor.errors import DatabaseError, InputError, MonitorError, NotFoundError
from monitor.settings import get_settings
from monitor.storage.engine import describe_db_error
from monitor.web import contract
from monitor.web.auth import LoginRequired
from monitor.web.cache import ViewCache
from monitor.web.deps import autocommit
from monitor.web.headers import MonitorApp
from monitor.web.report import BusyError
from monitor.web.routing import PathNames
from monitor.web.throttle import FailureThrottle

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
RETRY_AFTER_503 = "5"  # seconds
API_PREFIXES = ("/api/", "/v1/", "/metrics", "/docs", "/openapi.json")


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


def _error(request: Request, status: int, message: Any, headers: Any = None) -> Response:
    if status == 503 and not any(k.lower() == "retry-after" for k in headers or {}):
        headers = {**(headers or {}), "Retry-After": RETRY_AFTER_503}  # outages pass: retry
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
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return _error(request, exc.status_code, exc.detail, headers)

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
        elif isinstance(exc, DatabaseError) and isinstance(exc.__cause__, sa.exc.DBAPIError):
            # session_scope wraps every driver error; the client's data is not an outage
            return await db_error(request, exc.__cause__)
        elif isinstance(exc, DatabaseError | BusyError):
            status = 503
        return _error(request, status, str(exc))

    @app.exception_handler(psycopg.DataError)
    async def driver_data_error(request: Request, exc: psycopg.DataError) -> Response:
        # raised by psycopg itself (e.g. a NUL byte or a lone surrogate in text), not wrapped
        return _error(request, 400, f"invalid value: {describe_db_error(exc)}")

    @app.exception_handler(sa.exc.DBAPIError)
    async def db_error(request: Request, exc: sa.exc.DBAPIError) -> Response:
        if isinstance(exc, sa.exc.DataError):
            # a value Postgres refuses (a NUL byte in text, a number out of range): a 400
            return _error(request, 400, f"invalid value: {describe_db_error(exc)}")
        if isinstance(exc, sa.exc.IntegrityError):
            return _error(request, 409, f"conflict: {describe_db_error(exc)}")
        log.warning("database error on %s: %s", request.url.path, describe_db_error(exc))
        return _error(request, 503, describe_db_error(exc), {"Retry-After": "5"})


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    scope = {**request.scope, "method": "\x00"}  # no route serves it: path matches are PARTIAL
    methods: set[str] = set()
    for route in _flat(request.app.router.routes):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes themselves, through included routers (FastAPI wraps each router whole)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield route


def create_app(
    engine: sa.Engine,
    max_stale_seconds: float | None = None,
    *,
    trusted_proxies: Sequence[str] | None = None,
    throttle: FailureThrottle | None = None,
    processes: int = 1,
) -> FastAPI:
    """Build the app around ``engine`` (schema already checked by the caller).

    ``max_stale_seconds``: how long a cached view may be answered stale while it is refreshed
    (default ``settings.web_max_stale_seconds``; see :mod:`monitor.web.cache`).
    ``trusted_proxies``: addresses/CIDRs whose ``X-Forwarded-For``/``-Proto`` are believed
    (default ``settings.trusted_proxies``; the server itself must not interpret them: ``monitor
    serve`` runs uvicorn with ``proxy_headers=False``). ``throttle``: the wrong-credential
    throttle (default from settings; tests inject one with a fake clock). ``processes``: how
    many server processes share the traffic; each allows that share of the wrong-credential
    rate, so the settings bound the whole server, not each process.
    """
    settings = get_settings()

    app = MonitorApp(
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
        max_stale_seconds = settings.web_max_stale_seconds
    app.state.auth_throttle = throttle or FailureThrottle(
        settings.auth_failure_burst, settings.auth_failure_per_second / max(processes, 1)
    )
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
    app.add_middleware(PathNames)  # names holding "/" (team%2Ffraud); NUL in URLs is a 400
    proxies = list(settings.trusted_proxies if trusted_proxies is None else trusted_proxies)
    if proxies:
        # only these peers may say which client and scheme a request came from
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)

    for spec in ROUTERS:
        module, attr = spec.split(":")
        router: Any = getattr(importlib.import_module(module), attr)
        app.include_router(router)
    contract.install(app)
    return app


def app_from_settings() -> FastAPI:
    """The app on the configured database: the factory each ``monitor serve`` worker calls.

    Every worker process builds its own engine (a pool must never cross a fork); the parent
    has already checked (or migrated) the schema, so workers do not repeat it.
    """
    from monitor.storage.engine import get_engine

    return create_app(get_engine(), processes=get_settings().web_workers)
