"""Reading an ingest body: size limit, ``Content-Encoding: gzip``, and the worker's budget of
body bytes in flight.

Memory is what bounds a collector worker: each request holds its (decompressed) body while it
is parsed and written. :class:`InflightBudget` caps the body bytes that one worker process
holds at once (``MONITOR_INGEST_MAX_INFLIGHT_BYTES``); a request that does not fit is answered
429 with ``Retry-After`` (the SDK spools and retries), never queued in memory. A request
reserves its declared ``Content-Length`` before reading anything; a streamed or compressed body
reserves its bytes as they arrive.

A gzip body is decompressed as it streams, never beyond the body limit: a gzip bomb costs at
most ``max_ingest_body_bytes`` (413), whatever its ratio.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect

RETRY_AFTER_SECONDS = "2"
GZIP = ("gzip", "x-gzip")


class InflightBudget:
    """Body bytes of ingest requests held by this worker process at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            self.peak = max(self.peak, self.used)
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


def too_busy(budget: InflightBudget) -> HTTPException:
    return HTTPException(
        429,
        f"the collector holds {budget.limit} bytes of ingest bodies already; retry later",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"body exceeds the limit of {limit} bytes")


class _Gunzip:
    """Streaming gzip decompression (concatenated members too) that never outputs more than
    ``room`` bytes per call: ``max_length`` stops zlib before a bomb expands."""

    def __init__(self) -> None:
        self.inflate = zlib.decompressobj(wbits=31)
        self.pending = False  # a member begun and not yet ended

    def feed(self, data: bytes, room: int) -> bytes:
        out: list[bytes] = []
        produced = 0
        while data:
            self.pending = True
            piece = self.inflate.decompress(data, room - produced + 1)
            produced += len(piece)
            out.append(piece)
            if produced > room:
                raise OverflowError
            if self.inflate.eof:  # the next member, if any
                self.pending = False
                data = self.inflate.unused_data
                self.inflate = zlib.decompressobj(wbits=31)
            else:
                data = self.inflate.unconsumed_tail
        return b"".join(out)

    def finish(self) -> None:
        if self.pending:
            raise zlib.error("the gzip stream ends in the middle of a member")


async def _stream(request: Request) -> AsyncIterator[bytes]:
    """The body's chunks; a client gone mid-body ends the request quietly (no traceback)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before its body ended") from None


@asynccontextmanager
async def read_body(
    request: Request, limit: int, budget: InflightBudget
) -> AsyncIterator[bytearray]:
    """The request's body (decompressed), its bytes held against ``budget`` until the block
    ends. 413 past ``limit``, 429 when the worker's budget is spent, 415 for an encoding other
    than gzip, 400 for a broken gzip stream."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in (*GZIP, "identity", ""):
        raise HTTPException(
            415, f"Content-Encoding {encoding[:40]!r} is not supported; use gzip or none"
        )
    gunzip = _Gunzip() if encoding in GZIP else None
    declared = request.headers.get("content-length", "")
    held = 0
    if declared.isdigit():
        if int(declared) > limit:
            raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
        if not budget.take(int(declared)):
            raise too_busy(budget)
        held = int(declared)
    body = bytearray()
    try:
        async for chunk in _stream(request):
            if gunzip is not None:
                try:
                    chunk = gunzip.feed(chunk, limit - len(body))
                except OverflowError:
                    raise too_large(limit) from None
                except zlib.error as exc:
                    raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
            if len(body) + len(chunk) > limit:
                raise too_large(limit)
            body += chunk
            if len(body) > held:  # streamed, or expanded by gzip: hold what arrived
                if not budget.take(len(body) - held):
                    raise too_busy(budget)
                held = len(body)
        if gunzip is not None:
            try:
                gunzip.finish()
            except zlib.error as exc:
                raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
        yield body
    finally:
        budget.give(held)
