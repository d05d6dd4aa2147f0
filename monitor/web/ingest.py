"""The HTTP collector: predictions, actuals and SDK reports over HTTP, for serving code that
cannot reach Postgres.

``POST /v1/models/{model}/predictions`` and ``/actuals`` take a JSON array or NDJSON (one object
per line). Every record is validated on its own: the answer lists the rejected ones with their
index and reason, and the good ones are written through the same idempotent path as the SDK
(:class:`~monitor.sdk.postgres.writer.PostgresWriter`), so a client may resend a batch safely (rows
are keyed by id and timestamp: a record without a timestamp gets the time it arrived, so only
records that carry both, as the SDK's do, are deduplicated on resend).
A body over ``max_ingest_body_bytes`` gets 413 before it is read into memory.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from monitor.sdk.client import uuid7_int
from monitor.sdk.postgres.writer import PostgresWriter
from monitor.sdk.records import MAX_RECORD_BYTES, format_id
from monitor.storage.engine import libpq_url
from monitor.web.auth import Principal, require_scope

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["ingest"])
Ingest = Annotated[Principal, Depends(require_scope("ingest"))]
ModelName = Annotated[str, Path(min_length=1, max_length=200)]
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
RETRY_AFTER_SECONDS = "5"


class InvalidRecord(ValueError):
    pass


# --- writers: a small pool of psycopg connections (each writer caches schemas) -----------------


class WriterPool:
    def __init__(self, url: str, size: int = 4) -> None:
        self.url = libpq_url(url)
        self.idle: queue.LifoQueue[PostgresWriter] = queue.LifoQueue(maxsize=size)
        self.lock = threading.Lock()

    @contextmanager
    def writer(self) -> Iterator[PostgresWriter]:
        try:
            writer = self.idle.get_nowait()
        except queue.Empty:
            writer = PostgresWriter(psycopg.connect(self.url, autocommit=True, connect_timeout=5))
        try:
            yield writer
        except BaseException:
            writer.conn.close()
            raise
        if writer.conn.closed or writer.conn.info.transaction_status != 0:
            writer.conn.close()
            return
        try:
            self.idle.put_nowait(writer)
        except queue.Full:
            writer.conn.close()


def _pool(request: Request) -> WriterPool:
    state = request.app.state
    pool = getattr(state, "ingest_pool", None)
    if pool is None:
        with _POOL_LOCK:
            pool = getattr(state, "ingest_pool", None)
            if pool is None:
                pool = WriterPool(state.engine.url.render_as_string(hide_password=False))
                state.ingest_pool = pool
    return pool


_POOL_LOCK = threading.Lock()


# --- body ------------------------------------------------------------------------------------


def _limit(request: Request) -> int:
    limit = getattr(request.app.state, "max_ingest_body_bytes", None)
    if limit is None:
        from monitor.settings import get_settings

        limit = get_settings().max_ingest_body_bytes
    return int(limit)


async def _body(request: Request) -> bytes:
    limit = _limit(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_records(body: bytes, content_type: str) -> list[Any]:
    """A JSON array or NDJSON; an unparsable NDJSON line becomes an :class:`InvalidRecord`."""
    text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if content_type.split(";")[0].strip() not in NDJSON_TYPES and stripped.startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"body is not valid JSON: {exc}") from exc
        if not isinstance(doc, list):
            raise HTTPException(400, "body must be a JSON array of records or NDJSON")
        return doc
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            records.append(InvalidRecord(f"line {number} is not valid JSON: {exc.msg}"))
    return records


# --- validation ------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, bool):
        raise InvalidRecord("timestamp must be an ISO 8601 string or Unix seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidRecord("timestamp must be finite")
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidRecord(f"timestamp {value[:40]!r} is not ISO 8601") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise InvalidRecord("timestamp must be an ISO 8601 string or Unix seconds")


def _record_id(value: Any, required: bool) -> str:
    if value is None:
        if required:
            raise InvalidRecord("id is required")
        return format_id(uuid7_int(time.time_ns()))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRecord("id must be a string")
    text = str(value)
    if not text or len(text) > 200:
        raise InvalidRecord("id must be 1-200 characters")
    return text


def _check_size(raw: Mapping[str, Any]) -> None:
    if len(json.dumps(raw, default=str)) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"record exceeds {MAX_RECORD_BYTES} bytes")


def prediction_from(raw: Any, version: str | None) -> tuple[str, tuple[Any, ...]]:
    if isinstance(raw, InvalidRecord):
        raise raw
    if not isinstance(raw, dict):
        raise InvalidRecord("a record must be a JSON object")
    _check_size(raw)
    features = raw.get("features")
    if not isinstance(features, dict):
        raise InvalidRecord("features must be an object")
    rec_version = raw.get("version", version)
    if not isinstance(rec_version, str) or not rec_version:
        raise InvalidRecord("version is required (query parameter or record field)")
    prediction = raw.get("prediction")
    if isinstance(prediction, dict | list):
        raise InvalidRecord("prediction must be a number, string, boolean or null")
    proba = raw.get("proba")
    if proba is not None and not isinstance(proba, dict | list | int | float):
        raise InvalidRecord("proba must be an object, an array or a number")
    latency = raw.get("latency_ms")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        raise InvalidRecord("latency_ms must be a number")
    segment = raw.get("segment")
    if segment is not None and not (
        isinstance(segment, dict)
        and all(isinstance(v, str | int | float) for v in segment.values())
    ):
        raise InvalidRecord("segment must be an object of strings")
    record = (
        _record_id(raw.get("id"), required=False),
        _timestamp(raw.get("timestamp")),
        features,
        prediction,
        proba,
        latency,
        segment,
    )
    return rec_version, record


def actual_from(raw: Any) -> tuple[Any, ...]:
    if isinstance(raw, InvalidRecord):
        raise raw
    if not isinstance(raw, dict):
        raise InvalidRecord("a record must be a JSON object")
    if "actual" not in raw:
        raise InvalidRecord("actual is required")
    actual = raw["actual"]
    if isinstance(actual, dict | list):
        raise InvalidRecord("actual must be a number, string, boolean or null")
    return (_record_id(raw.get("id"), required=True), _timestamp(raw.get("timestamp")), actual)


# --- routes ----------------------------------------------------------------------------------


def _unavailable(exc: Exception) -> HTTPException:
    log.warning("ingest: database unavailable: %s", exc)
    return HTTPException(
        503, "database unavailable, retry later", headers={"Retry-After": RETRY_AFTER_SECONDS}
    )


def _answer(received: int, rejected: list[dict[str, Any]], result: Any) -> JSONResponse:
    body = {
        "received": received,
        "accepted": received - len(rejected),
        "inserted": result.inserted if result else 0,
        "duplicates": result.duplicates if result else 0,
        "dead_letters": result.dead_letters if result else 0,
        "cleaned": result.counts.as_dict() if result else {},
        "rejected": rejected,
    }
    status = 422 if received and len(rejected) == received else 200
    return JSONResponse(body, status_code=status)


@router.post(
    "/models/{model:name}/predictions", summary="Ingest predictions (JSON array or NDJSON)"
)
async def ingest_predictions(
    request: Request,
    model: ModelName,
    token: Ingest,
    version: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    raw = parse_records(await _body(request), request.headers.get("content-type", ""))
    by_version: dict[str, list[tuple[Any, ...]]] = {}
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            rec_version, record = prediction_from(item, version)
        except InvalidRecord as exc:
            rejected.append({"index": index, "id": _id_of(item), "error": str(exc)})
            continue
        by_version.setdefault(rec_version, []).append(record)
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(_write_predictions, _pool(request), model, by_version)
    return _answer(len(raw), rejected, result)


def _write_predictions(
    pool: WriterPool, model: str, by_version: dict[str, list[tuple[Any, ...]]]
) -> Any:
    from monitor.sdk.records import WriteResult

    total = WriteResult()
    try:
        with pool.writer() as writer:
            for rec_version, records in by_version.items():
                total.add(writer.write_predictions(model, rec_version, records))
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise _unavailable(exc) from exc
    return total


@router.post("/models/{model:name}/actuals", summary="Ingest actuals (JSON array or NDJSON)")
async def ingest_actuals(request: Request, model: ModelName, token: Ingest) -> JSONResponse:
    raw = parse_records(await _body(request), request.headers.get("content-type", ""))
    records: list[tuple[Any, ...]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            records.append(actual_from(item))
        except InvalidRecord as exc:
            rejected.append({"index": index, "id": _id_of(item), "error": str(exc)})
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(_write_actuals, _pool(request), model, records)
    return _answer(len(raw), rejected, result)


def _write_actuals(pool: WriterPool, model: str, records: list[tuple[Any, ...]]) -> Any:
    from monitor.sdk.records import WriteResult

    if not records:
        return WriteResult()
    try:
        with pool.writer() as writer:
            return writer.write_actuals(model, records)
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise _unavailable(exc) from exc


@router.post("/sdk/report", summary="An SDK instance's counters (enqueued, exported, dropped)")
async def sdk_report(request: Request, token: Ingest) -> dict[str, str]:
    body = await _body(request)
    try:
        doc = json.loads(body)
        model, instance, stats = doc["model"], doc["instance"], doc["stats"]
        if not (isinstance(model, str) and isinstance(instance, str) and isinstance(stats, dict)):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise HTTPException(400, "expected {model: str, instance: str, stats: object}") from exc
    from starlette.concurrency import run_in_threadpool

    def write() -> None:
        try:
            with _pool(request).writer() as writer:
                writer.report(model, instance[:200], stats)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _unavailable(exc) from exc

    await run_in_threadpool(write)
    return {"status": "ok"}


def _id_of(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) else None
