"""Security headers on every response: pages, API, errors, redirects, static files, /metrics.

Set by the outermost layer of the app (:class:`MonitorApp` wraps even Starlette's server-error
middleware), so no route, error handler or early middleware answer can forget them. A response
that sets its own header keeps it (the Evidently report has its own, stricter sandbox policy).

- ``Content-Security-Policy``: scripts only from our origin (plotly.js is served locally), no
  ``unsafe-eval`` (plotly's SVG traces, the only kinds the dashboard draws, need none; its WebGL
  traces would), no inline script (figure specs are inert ``application/json`` blocks), inline
  styles allowed (plotly sets ``style`` attributes), no framing, no plugins, forms post only here.
- ``X-Frame-Options: DENY`` for browsers without ``frame-ancestors``; ``nosniff``;
  ``Referrer-Policy: same-origin``; ``Strict-Transport-Security`` when served over https.
- ``Cache-Control: no-store`` unless the response chose otherwise: data behind authentication
  must not stay in shared or browser caches. Static assets are public: ``no-cache`` (revalidated
  by ETag) unless they say more (plotly.js: a day).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}
HSTS = "max-age=31536000"
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """Pure ASGI middleware adding :data:`HEADERS` (and a cache policy) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                headers.setdefault("cache-control", "no-cache" if static else "no-store")
                # read at answer time: a trusted proxy's X-Forwarded-Proto is applied (in place)
                # by a middleware inside this one
                if scope.get("scheme") == "https":
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class MonitorApp(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything, the 500 page included."""

    def build_middleware_stack(self) -> Any:
        return SecurityHeaders(super().build_middleware_stack())
