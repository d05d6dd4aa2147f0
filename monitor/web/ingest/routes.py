"""The collector's routes: predictions, actuals and SDK reports over HTTP.

Each request: authenticate (an ``ingest`` token, perhaps limited to named models), read the
body within the limits (:mod:`.body`), then, in a worker thread, read its records one at a
time (:mod:`.parse`), validate each (:mod:`.validate`) and write them in chunks of
``CHUNK_RECORDS`` through the SDK's idempotent writer. A record that fails costs only itself:
its index and reason are in the answer. A record the writer's database refuses although it
passed validation is retried alone, so it cannot take its chunk down with it either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from monitor.sdk.records import WriteResult
from monitor.web import routing  # noqa: F401  (registers the ``name`` convertor)
from monitor.web.auth import Principal, require_scope
from monitor.web.ingest.body import RETRY_AFTER_SECONDS, InflightBudget, read_body
from monitor.web.ingest.parse import DECODER, BodyError, inspect_value, iter_records
from monitor.web.ingest.validate import (
    NAME_PATTERN,
    InvalidRecord,
    actual_from,
    id_of,
    name_problem,
    prediction_from,
)
from monitor.web.ingest.writers import Busy, Lease, WriterPool, is_outage, pool_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["ingest"])
Ingest = Annotated[Principal, Depends(require_scope("ingest"))]
# ``:name`` (monitor.web.routing): a model name may hold "/", sent as %2F (as the SDK does)
ModelName = Annotated[str, Path(min_length=1, max_length=200, pattern=NAME_PATTERN)]
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
CHUNK_RECORDS = 1_000  # records parsed and held before they are written
CHUNK_CHARS = 1 << 20  # ... or this much of their JSON text, whichever comes first
MAX_LISTED = 1_000  # rejected records listed in an answer (all are counted)
# WriteResult fields the answer states itself: ``rejected`` is what an SDK counts of a
# collector's rejections (here: ``rejected_count`` and the ``rejected`` list)
ANSWER_OWN = frozenset({"rejected"})


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    create_models: bool
    budget: InflightBudget


def limits(request: Request) -> Limits:
    """The collector's limits: the settings, or overrides on ``app.state`` (tests)."""
    state = request.app.state
    cached: Limits | None = getattr(state, "ingest_limits", None)
    if cached is None:
        from monitor.settings import get_settings

        settings = get_settings()
        body = int(getattr(state, "max_ingest_body_bytes", settings.max_ingest_body_bytes))
        inflight = int(
            getattr(state, "ingest_max_inflight_bytes", settings.ingest_max_inflight_bytes)
        )
        create = bool(
            getattr(state, "ingest_tokens_create_models", settings.ingest_tokens_create_models)
        )
        # a body of the maximum size must always fit, or its sender would retry forever
        cached = Limits(body, create, InflightBudget(max(inflight, body)))
        state.ingest_limits = cached
    return cached


# --- outcome of a request --------------------------------------------------------------------


@dataclass
class Outcome:
    received: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    rejected_count: int = 0
    result: WriteResult = field(default_factory=WriteResult)

    def reject(self, index: int, record_id: Any, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED:
            self.rejected.append({"index": index, "id": record_id, "error": reason})

    def answer(self) -> JSONResponse:
        """Counts of what happened to every record: rejected here (listed by index, up to
        ``MAX_LISTED``), and what the writer did with the accepted ones (every counter of its
        :class:`~monitor.sdk.records.WriteResult`: inserted, duplicates, dead letters, too
        large, cleaned values...)."""
        body: dict[str, Any] = {
            "received": self.received,
            "accepted": self.received - self.rejected_count,
        }
        for f in fields(self.result):
            value = getattr(self.result, f.name)
            if f.name == "counts":
                body["cleaned"] = value.as_dict()
            elif f.name not in ANSWER_OWN:
                body[f.name] = value
        body["rejected_count"] = self.rejected_count
        body["rejected"] = self.rejected
        # every record rejected: 400 (the request as a whole was of no use), with the reasons
        rejected_all = self.received and self.rejected_count == self.received
        return JSONResponse(body, status_code=400 if rejected_all else 200)


class RejectLog:
    """At most one warning per ``interval`` seconds per worker about rejected records, with
    their number since the last one and a sample reason: operators see rejections in the log
    without a line per record on the hot path (clients get every reason in the answer)."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.pending = 0
        self.sample: tuple[str, str] | None = None
        self.next_at = 0.0
        self._lock = threading.Lock()

    def note(self, model: str, outcome: Outcome) -> None:
        if not outcome.rejected_count:
            return
        now = self.clock()
        with self._lock:
            self.pending += outcome.rejected_count
            if self.sample is None and outcome.rejected:
                self.sample = (model, outcome.rejected[0]["error"])
            if now < self.next_at:
                return
            pending, sample = self.pending, self.sample or (model, "?")
            self.pending, self.sample, self.next_at = 0, None, now + self.interval
        log.warning("ingest: %d records rejected (e.g. model %r: %s)", pending, *sample)


REJECTS = RejectLog()


# --- checks before the body ------------------------------------------------------------------


def check_model(who: Principal, model: str) -> None:
    """422 for a name that cannot name a model; 403 when the token is limited to others."""
    problem = name_problem(model, "model name")
    if problem is not None:
        raise HTTPException(422, problem)
    if not who.token.allows_model(model):
        raise HTTPException(403, f"this token may not write to model {model!r}")


def _ensure_model(lease: Lease, who: Principal, model: str, create: bool) -> None:
    """403 when the model does not exist and this token may not create models."""
    if create or who.allows("admin"):
        return
    found = lease.writer.conn.execute("SELECT 1 FROM models WHERE name = %s", (model,)).fetchone()
    if found is None:
        raise HTTPException(
            403,
            f"model {model!r} does not exist and ingest tokens may not create models "
            "(MONITOR_INGEST_TOKENS_CREATE_MODELS=false); an admin token or "
            "`monitor baseline add` creates it",
        )


def unavailable(exc: BaseException, why: str = "database unavailable") -> HTTPException:
    log.warning("ingest: %s: %r", why, exc)
    return HTTPException(503, f"{why}, retry later", headers={"Retry-After": RETRY_AFTER_SECONDS})


# --- the write loop --------------------------------------------------------------------------

Chunk = list[tuple[int, str, Any]]  # (index, version, record)
Write = Callable[[Lease, str, list[Any]], WriteResult]


def _ingest(
    pool: WriterPool,
    who: Principal,
    model: str,
    create: bool,
    body: bytearray,
    ndjson: bool,
    validate: Callable[[Any], tuple[str, Any]],
    write: Write,
) -> Outcome:
    """Read, validate and write the records of ``body`` (in a worker thread)."""
    import psycopg

    outcome = Outcome()
    lease: Lease | None = None
    try:
        with Lease(pool) as lease:
            _ensure_model(lease, who, model, create)
            chunk: Chunk = []
            chars = 0
            for item in iter_records(body, ndjson):
                outcome.received += 1
                if item.error is not None:
                    outcome.reject(item.index, None, item.error)
                    continue
                try:
                    version, record = validate(item.value)
                except InvalidRecord as exc:
                    outcome.reject(item.index, id_of(item.value), str(exc))
                    continue
                chunk.append((item.index, version, record))
                chars += item.size
                if len(chunk) >= CHUNK_RECORDS or chars >= CHUNK_CHARS:
                    _write_chunk(lease, model, chunk, write, outcome)
                    chunk, chars = [], 0
            _write_chunk(lease, model, chunk, write, outcome)
    except BodyError as exc:
        raise HTTPException(400, str(exc)) from exc
    except Busy as exc:
        raise unavailable(exc, "every database writer of this worker is busy") from exc
    except psycopg.Error as exc:
        if lease is None or is_outage(exc, lease.writer.conn):
            raise unavailable(exc) from exc
        raise
    return outcome


def _write_chunk(lease: Lease, model: str, chunk: Chunk, write: Write, outcome: Outcome) -> None:
    by_version: dict[str, Chunk] = {}
    for entry in chunk:
        by_version.setdefault(entry[1], []).append(entry)
    for version, entries in by_version.items():
        try:
            outcome.result.add(write(lease, version, [record for _, _, record in entries]))
        except Exception as exc:
            if is_outage(exc, lease.writer.conn):
                raise
            log.warning("ingest: the writer refused a chunk (%r); writing it record by record", exc)
            lease.renew()
            for index, _, record in entries:
                _write_alone(lease, version, index, record, write, outcome)


def _write_alone(
    lease: Lease, version: str, index: int, record: Any, write: Write, outcome: Outcome
) -> None:
    try:
        outcome.result.add(write(lease, version, [record]))
    except Exception as exc:
        if is_outage(exc, lease.writer.conn):
            raise
        lease.renew()
        outcome.reject(index, record[0], f"the database refused it: {type(exc).__name__}")


# --- routes ----------------------------------------------------------------------------------


def _is_ndjson(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip() in NDJSON_TYPES


@router.post(
    "/models/{model:name}/predictions", summary="Ingest predictions (JSON array or NDJSON)"
)
async def ingest_predictions(
    request: Request,
    model: ModelName,
    token: Ingest,
    version: Annotated[
        str | None, Query(min_length=1, max_length=200, pattern=NAME_PATTERN)
    ] = None,
) -> JSONResponse:
    check_model(token, model)
    if version is not None and (problem := name_problem(version, "version")) is not None:
        raise HTTPException(422, problem)
    config = limits(request)

    def validate(raw: Any) -> tuple[str, Any]:
        return prediction_from(raw, version)

    def write(lease: Lease, rec_version: str, records: list[Any]) -> WriteResult:
        return lease.writer.write_predictions(model, rec_version, records)

    async with read_body(request, config.body_bytes, config.budget) as body:
        outcome = await run_in_threadpool(
            _ingest,
            pool_of(request),
            token,
            model,
            config.create_models,
            body,
            _is_ndjson(request),
            validate,
            write,
        )
    REJECTS.note(model, outcome)
    return outcome.answer()


@router.post("/models/{model:name}/actuals", summary="Ingest actuals (JSON array or NDJSON)")
async def ingest_actuals(request: Request, model: ModelName, token: Ingest) -> JSONResponse:
    check_model(token, model)
    config = limits(request)

    def validate(raw: Any) -> tuple[str, Any]:
        return "", actual_from(raw)

    def write(lease: Lease, _: str, records: list[Any]) -> WriteResult:
        return lease.writer.write_actuals(model, records)

    async with read_body(request, config.body_bytes, config.budget) as body:
        outcome = await run_in_threadpool(
            _ingest,
            pool_of(request),
            token,
            model,
            config.create_models,
            body,
            _is_ndjson(request),
            validate,
            write,
        )
    REJECTS.note(model, outcome)
    return outcome.answer()


@router.post("/sdk/report", summary="An SDK instance's counters (enqueued, exported, dropped)")
async def sdk_report(request: Request, token: Ingest) -> dict[str, str]:
    config = limits(request)
    async with read_body(request, config.body_bytes, config.budget) as body:
        model, instance, stats = _report_of(body)
    check_model(token, model)

    def write() -> None:
        import psycopg

        lease: Lease | None = None
        try:
            with Lease(pool_of(request)) as lease:
                _ensure_model(lease, token, model, config.create_models)
                lease.writer.report(model, instance, stats)
        except Busy as exc:
            raise unavailable(exc, "every database writer of this worker is busy") from exc
        except psycopg.Error as exc:
            if lease is None or is_outage(exc, lease.writer.conn):
                raise unavailable(exc) from exc
            refused = f"the database refused the report: {type(exc).__name__}"
            raise HTTPException(400, refused) from exc

    await run_in_threadpool(write)
    return {"status": "ok"}


def _report_of(body: bytearray) -> tuple[str, str, dict[str, Any]]:
    expected = "expected {model: str, instance: str, stats: object}"
    try:
        doc = DECODER.decode(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"{expected}: body is not JSON") from exc
    if not isinstance(doc, dict):
        raise HTTPException(400, expected)
    model, instance, stats = doc.get("model"), doc.get("instance"), doc.get("stats")
    if not (isinstance(model, str) and isinstance(instance, str) and isinstance(stats, dict)):
        raise HTTPException(400, expected)
    problem = (
        name_problem(model, "model name")
        or name_problem(instance, "instance", limit=len(body))
        or inspect_value(stats, nul=True, finite=True)
    )
    if problem is not None:
        raise HTTPException(400, problem)
    return model, instance[:200], stats
