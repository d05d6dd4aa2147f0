"""Names with ``/`` in URL paths, and URLs that carry NUL bytes.

A model may be called ``team/fraud``. Links write it as one path segment, ``team%2Ffraud``, but
the server decodes the path before routing, so the route ``/models/{model}`` would see
``/models/team/fraud`` and answer 404. :class:`PathNames` re-decodes the path from the raw bytes
with each encoded slash kept apart (as NUL, which no name can contain: Postgres text refuses it),
and the ``name`` convertor (``/models/{model:name}``) turns it back into ``/``. A route that holds
a name declares it with ``:name``; ``/models/{model:name}/report`` still means "the report of
the model", whatever the model is called, because the name never spans a ``/`` of the URL.

The same middleware answers 400 to a URL whose path or query holds a NUL byte (``%00``): no
handler, query or template ever sees one.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

SLASH = "\x00"
"""Stands for an encoded ``/`` inside one path segment while the path is routed."""


class NameConvertor(Convertor[str]):
    """One path segment (``%2F`` allowed inside it) holding a name."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value.replace(SLASH, "/")

    def to_string(self, value: str) -> str:
        return value.replace("/", "%2F")


register_url_convertor("name", NameConvertor())


class PathNames:
    """Pure ASGI middleware: keep encoded slashes inside segments; refuse NUL in URLs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query: bytes = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
            await _bad_request(send, "a NUL byte (%00) is not allowed in a URL")
            return
        raw: bytes | None = scope.get("raw_path")
        if raw and b"%2f" in raw.lower():
            segments = raw.decode("latin-1").split("/")
            path = "/".join(unquote(s).replace("/", SLASH) for s in segments)
            scope = {**scope, "path": path}
        await self.app(scope, receive, send)


async def _bad_request(send: Send, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
