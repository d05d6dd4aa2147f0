"""Dependencies shared by API routes and pages: a read connection, pagination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Query, Request
from fastapi.responses import JSONResponse

MAX_LIMIT = 500


def read_conn(request: Request) -> Iterator[sa.Connection]:
    """A connection for one request's reads (pages and GET routes never write)."""
    with request.app.state.engine.connect() as conn:
        yield conn


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


def page(
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
