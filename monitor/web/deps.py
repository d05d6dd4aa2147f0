"""Dependencies shared by API routes and pages: a read connection, pagination."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Hashable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from monitor.web.cache import ViewCache

MAX_LIMIT = 500


def autocommit(engine: sa.Engine) -> sa.Engine:
    """``engine`` in autocommit mode (same pool): no BEGIN/ROLLBACK round trips per request.

    Every request paid a BEGIN and a ROLLBACK around its reads; at dashboard concurrency those
    round trips are a fair share of a small request's time. Reads need no transaction: each
    statement sees a consistent snapshot, and results only change when a window job commits.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_engine(request: Request) -> sa.Engine:
    """The app's autocommit engine, built once (``execution_options`` makes a new engine
    object per call, a measurable cost when paid on every request)."""
    state = request.app.state
    engine: sa.Engine | None = getattr(state, "read_engine", None)
    if engine is None:
        engine = state.read_engine = autocommit(state.engine)
    return engine


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestConn:
    """A request's read connection, checked out from the pool on first use.

    Opened by the first synchronous dependency that needs it (authentication, which runs in a
    worker thread, so the pool checkout and its liveness ping never block the event loop) and
    returned to the pool when the request ends.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.conn: sa.Connection | None = None

    def get(self) -> sa.Connection:
        if self.conn is None:
            self.conn = self.engine.connect()
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def shared_conn(request: Request) -> AsyncIterator[RequestConn]:
    """The request's one read connection, shared by authentication and the route.

    FastAPI resolves a dependency once per request, so ``require_scope``/``require_page`` and
    the route's :func:`read_conn` get the same connection: one pool checkout (and its liveness
    ping) per page or API read instead of two. An ``async`` generator with nothing to await:
    it runs on the event loop, where a plain (sync) generator dependency would cost two hops
    to the thread pool per request (the connection is opened lazily, in a worker thread).
    """
    holder = RequestConn(read_engine(request))
    try:
        yield holder
    finally:
        holder.close()


def read_conn(shared: RequestConn = Depends(shared_conn)) -> sa.Connection:
    """A connection for one request's reads (shared with authentication on GETs)."""
    return shared.get()


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int

    def envelope(self, items: list[Any], more: bool) -> dict[str, Any]:
        """The paginated answer: items, and the offset of the next page (null at the end)."""
        return {
            "items": items,
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.offset + self.limit if more else None,
        }


async def page(
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Items per page."),
    offset: int = Query(0, ge=0, le=1_000_000, description="Items to skip."),
) -> Page:
    return Page(limit, offset)


class FastJSON(JSONResponse):
    """JSON straight from ``json.dumps``: the API returns plain dicts of JSON types already,
    so FastAPI's ``jsonable_encoder`` pass (slow on large series) is skipped."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()


def ok(content: Any, status_code: int = 200) -> FastJSON:
    return FastJSON(content, status_code=status_code)


def dumps(content: Any) -> bytes:
    return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()


def cached_json(
    view: dict[str, Any], key: Hashable | None, cache: ViewCache, fresh: Collection[str] = ()
) -> Response:
    """``view`` as JSON, its parts outside ``fresh`` serialised once per cache ``key``.

    Encoding a 90-day dashboard (hundreds of KiB of series) costs tens of milliseconds of GIL
    time per request; the series only change with the results version that ``key`` carries.
    The ``fresh`` parts (e.g. health with open alerts) are encoded per request and spliced in
    front of the cached bytes: both are JSON objects, so ``{fresh...,cached...}`` is one.
    """
    if key is None:
        return ok(view)
    rest = {k: v for k, v in view.items() if k not in fresh}
    cached = cache.get_or_compute(("json", key, tuple(fresh)), lambda: dumps(rest))
    if not fresh:
        return Response(cached, media_type="application/json")
    head = dumps({k: view[k] for k in fresh})
    body = head if cached == b"{}" else head[:-1] + b"," + cached[1:]
    return Response(body, media_type="application/json")
