"""The batch worker: one per client, the shape of OpenTelemetry's ``BatchProcessor``.

It owns the queue that ``log()`` appends to, the daemon thread that drains it, and the flush
and shutdown state. Everything slow happens on its thread: cleaning, encoding, I/O.

- **Batches.** A batch goes out when ``batch_size`` records wait, at each ``interval`` tick, on
  ``flush()`` and on ``shutdown()``.
- **Outages.** A retryable failure (sink down, timeout, HTTP 5xx/429) starts a backoff (1 s
  doubling to 5 s, or the sink's Retry-After). Meanwhile records are held and written to the
  disk spool in frames of up to ``batch_size`` records (one fsync each), at least every
  ``SPOOL_HOLD`` seconds, so that a long outage makes few large frames, not many tiny ones.
- **Replay.** Once the sink answers again, fresh batches go straight to it and the spool is
  replayed in between, several frames per write, in slices (``REPLAY_SLICE`` seconds, then a
  pause as long), so that the host keeps its CPU and fresh records keep landing while a
  backlog, or a dead process's spool taken over, drains. ``flush()`` replays without pauses
  until the spool is empty or its timeout runs out.
- **Nothing lost silently.** Any exception in the export of a batch is contained: a retryable
  one spools what was not written; any other splits the batch in halves until the bad record
  is alone, which becomes a dead letter (or, if even that fails, a counted drop with the error
  in ``stats()["last_error"]``).
- **Exit.** ``shutdown(timeout)`` flushes, and writes to the spool whatever the sink did not
  take within the timeout, also when the worker thread is stuck on a sink that accepts
  connections and never answers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.sdk.exporters import Exporter, RetryableError
from monitor.sdk.records import (
    ActualRecord,
    CleanCounts,
    PredictionRecord,
    WriteResult,
    uuid7_int,
)
from monitor.sdk.rowblock import RowBlock
from monitor.sdk.spool import Spool
from monitor.sdk.wire import decode_batch, encode_batch

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
# Retries of an unavailable sink back off 1, 2, 4, 5, 5... s (+-20% jitter, so that many
# clients do not retry in step), or the sink's Retry-After: a recovered database is found
# within ~6 s, so that a backlog lands soon after it is back (a connection attempt is cheap).
BACKOFF_CAP = 5.0
SPOOL_HOLD = 5.0  # seconds records may wait in memory during an outage before they are spooled
REPLAY_SLICE = 0.25  # seconds of replay between pauses (as long) when nobody is flushing
REPLAY_RECORDS = 20_000  # records read from the spool for one write
ADOPT_EVERY = 60.0  # seconds between looks for spools of dead processes
STOP_RESERVE = 0.5  # seconds of a shutdown kept to spool what the sink did not take
STOPPED = float("inf")  # next_report once the shutdown's report went out
_time_ns = time.time_ns


class Counters:
    """What happened to the records of one client; ``stats()`` reads these.

    Written by the worker thread, by ``log_batch`` (under the export lock) and, for refused
    input and queue overflow, by callers' threads (``drop`` takes a lock).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.popped = 0  # records the worker took from the queue
        self.bulk = 0  # records log_batch handed over
        self.exported = 0  # acknowledged by the sink: inserted + duplicates
        self.inserted = 0
        self.duplicates = 0
        self.dead_letters = 0
        self.spooled_records = 0  # written to the spool (cumulative)
        self.replayed_records = 0  # of this process's, replayed from the spool
        self.adopted_records = 0  # of dead processes' spools, replayed
        self.export_failures = 0
        self.dropped: dict[str, int] = {}
        self.cleaned = CleanCounts()
        self.last_error: str | None = None
        self.last_export_at: float | None = None

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self.dropped[reason] = self.dropped.get(reason, 0) + n

    def account(self, result: WriteResult) -> None:
        self.exported += result.inserted + result.duplicates
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.dead_letters += result.dead_letters
        self.drop("too_large", result.too_large)
        self.drop("rejected", result.rejected)
        self.cleaned.add(result.counts)
        self.last_export_at = time.time()

    def error(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]


class _Partial(Exception):
    """A retryable failure part-way through a batch: ``preds``/``acts`` were not written."""

    def __init__(self, cause: RetryableError, preds: list[Any], acts: list[Any]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.preds = preds
        self.acts = acts


class BatchWorker:
    """Queue, thread, batching, spool and replay of one client (see the module docstring)."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        exporter: Exporter,
        spool: Spool,
        queue_size: int,
        batch_size: int,
        interval: float,
        report_interval: float,
        stats: Callable[[], Mapping[str, Any]],
        instance: str,
        warn: Callable[..., None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.version = version
        self.exporter = exporter
        self.spool = spool
        self.queue: deque[Any] = deque()
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.interval = interval
        self.report_interval = report_interval
        self.counters = Counters()
        self._stats = stats
        self._instance = instance
        self._warn = warn
        self.clock = clock
        self.pending: list[Any] = []
        self.in_flight: Sequence[Any] | None = None  # the batch being exported right now
        self.backoff = 0.0
        self.retry_at = 0.0
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._flush_req = 0  # flush requests made
        self._flushed = 0  # the newest request answered with "all delivered"
        self._flush_until = 0.0
        self._stopping = False
        self._stop_at = 0.0
        self._abandoned = False  # shutdown gave up on a stuck thread and spooled its records
        self._start_lock = threading.Lock()
        self.export_lock = threading.Lock()  # the worker's steps and log_batch's writes
        self.thread: threading.Thread | None = None

    # --- called from the client (any thread) ----------------------------------------------

    def kick(self) -> None:
        """``log()``'s rare path: the worker is not running yet, a batch is full, or the queue
        is over its bound (the oldest records are dropped and counted)."""
        if self.thread is None:
            self.start()
            return
        excess = len(self.queue) - self.queue_size
        dropped = 0
        while excess > 0:
            try:
                self.queue.popleft()
            except IndexError:
                break
            excess -= 1
            dropped += 1
        self.counters.drop("queue_full", dropped)
        self._wake.set()

    def start(self) -> bool:
        """Start the thread (at the first record or flush); False once shut down."""
        with self._start_lock:
            if self.thread is None and not self._stopping:
                self.thread = threading.Thread(
                    target=self.run, name=f"monitor-{self.model}", daemon=True
                )
                self.thread.start()
        return self.thread is not None and not self._stopping

    def flush(self, timeout: float) -> bool:
        """Export everything queued and spooled; True when all of it reached the sink."""
        if not self.start():
            return self.idle()
        with self._cond:
            self._flush_req += 1
            req = self._flush_req
            self._flush_until = max(self._flush_until, self.clock() + max(0.0, timeout))
        self._wake.set()
        with self._cond:
            return self._cond.wait_for(lambda: self._flushed >= req, timeout=max(0.0, timeout))

    def shutdown(self, timeout: float) -> bool:
        """Flush within ``timeout``, spool what the sink did not take, stop the thread. True
        when everything reached the sink."""
        deadline = self.clock() + max(0.0, timeout)
        thread = self.thread
        with self._cond:
            self._stopping = True
            self._stop_at = deadline - min(STOP_RESERVE, max(0.0, timeout) * 0.2)
            self._flush_until = max(self._flush_until, self._stop_at)
        if thread is None:
            self._spool_leftovers()
            return self.idle()
        self._wake.set()
        thread.join(max(0.0, deadline - self.clock()))
        if thread.is_alive():  # stuck in I/O on a sink that does not answer
            self._abandoned = True
            self._spool_leftovers()
            return False
        return self.idle()

    def idle(self) -> bool:
        """Nothing left anywhere: queue, batches in hand, spool."""
        return not self.queue and not self.pending and self.in_flight is None and not self.spool

    # --- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        now = self.clock()
        next_tick = now + self.interval
        next_report = now + self.report_interval
        next_adopt = now
        wait = 0.0
        while True:
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
            with self._cond:
                req = self._flush_req
                stopping = self._stopping
            now = self.clock()
            flushing = req > self._flushed and now < self._flush_until
            with self.export_lock:
                if self._abandoned:
                    return
                try:
                    if now >= next_adopt:
                        next_adopt = now + ADOPT_EVERY
                        self._adopt()
                    tick = now >= next_tick
                    if tick:
                        next_tick = now + (SPOOL_HOLD if self._in_outage(now) else self.interval)
                    self._send(tick, flushing, stopping)
                    more = self._replay(min(now + REPLAY_SLICE, self._stop_at) if stopping
                                        else now + REPLAY_SLICE)
                    if now >= next_report or (stopping and next_report != STOPPED):
                        next_report = STOPPED if stopping else now + self.report_interval
                        self._report()  # and once more on shutdown, with the final counters
                except Exception as exc:  # a bug must not kill the thread silently
                    self.counters.error(exc)
                    log.exception("monitor SDK worker error")
                    more = False
            if self.idle() and not self.backoff:  # all delivered, the sink answering
                with self._cond:
                    self._flushed = max(self._flushed, req)
                    self._cond.notify_all()
            now = self.clock()
            if stopping and (self.idle() or now >= self._stop_at):
                with self.export_lock:
                    self._spool_leftovers()
                return
            wait = self._next_wait(now, next_tick, next_report, more, flushing or stopping)

    def _next_wait(
        self, now: float, next_tick: float, next_report: float, more: bool, hurry: bool
    ) -> float:
        """Seconds to sleep: until the next tick, report or retry; not at all while flushing
        with work left; a slice's length between replay slices."""
        outage = self._in_outage(now)
        if hurry and not outage and (more or self.pending or self.queue):
            return 0.0
        wake_at = min(next_tick, next_report)
        if outage and (self.pending or self.spool):
            wake_at = min(wake_at, self.retry_at)
        elif more:
            wake_at = min(wake_at, now + REPLAY_SLICE)
        if hurry:
            wake_at = min(wake_at, self._stop_at if self._stopping else self._flush_until)
        return max(0.0, wake_at - now)

    def _in_outage(self, now: float) -> bool:
        return self.backoff > 0 and now < self.retry_at

    def _drain(self) -> None:
        """Move queued records into ``pending`` (popleft is atomic; callers never wait).

        ``log()`` queues a plain tuple in :class:`PredictionRecord`'s field order (cheaper for
        the caller); it becomes a ``PredictionRecord`` here, and one logged without an id gets
        its UUIDv7, from its capture time."""
        pop, pending, n = self.queue.popleft, self.pending, 0
        try:
            while n < self.queue_size:
                rec = pop()
                pending.append(_named(rec) if type(rec) is tuple else rec)
                n += 1
        except IndexError:
            pass
        self.counters.popped += n

    def _send(self, tick: bool, flushing: bool, stopping: bool) -> None:
        """Full batches always; the rest at a tick, on flush and on shutdown. During an outage
        records are held and spooled in frames of ``batch_size`` (or at a ``SPOOL_HOLD`` tick,
        or on shutdown): a flush does not cut a frame short, so a long outage makes a few
        large frames, not many small ones."""
        self._drain()
        while self.pending:
            outage = self._in_outage(self.clock())
            due = tick or stopping or (flushing and not outage)
            if len(self.pending) < self.batch_size and not due:
                return
            chunk = self.pending[: self.batch_size]
            self.in_flight = chunk  # before it leaves pending: shutdown's rescue sees it
            del self.pending[: self.batch_size]
            try:
                held = self._deliver(chunk, hold=not (tick or stopping))
            finally:
                self.in_flight = None
            if self._abandoned or held:  # shutdown spooled everything meanwhile, or held back
                return
            if len(self.pending) < self.batch_size:
                self._drain()

    def _deliver(self, chunk: list[Any], *, hold: bool) -> bool:
        """Export a chunk, or spool it during an outage; with ``hold``, a chunk smaller than a
        batch that cannot go out now goes back to ``pending`` (True) to join a larger frame."""
        preds, acts = _split(chunk)
        if self._in_outage(self.clock()):
            if hold and len(chunk) < self.batch_size:
                self.pending[:0] = chunk
                return True
            self._spool(self.model, self.version, preds, acts)
            return False
        try:
            self._export(self.model, self.version, preds, acts)
        except _Partial as partial:
            self._failed(partial.cause)
            rest = [*partial.preds, *partial.acts]
            if hold and len(rest) < self.batch_size:
                self.pending[:0] = rest
                return True
            self._spool(self.model, self.version, partial.preds, partial.acts)
        return False

    # --- export: every exception ends as rows, spool or counted dead letters ----------------

    def _export(
        self,
        model: str,
        version: str,
        preds: Sequence[Any],
        acts: Sequence[Any],
        *,
        adopted: bool = False,
    ) -> None:
        """Write a batch; a non-retryable failure splits it until the bad record is alone.
        Raises :class:`_Partial` with what was not written when the sink becomes unavailable."""
        try:
            result = self.exporter.export(model, version, preds, acts)
        except RetryableError as exc:
            raise _Partial(exc, list(preds), list(acts)) from exc
        except Exception as exc:
            if len(preds) + len(acts) == 1:
                self._dead_letter(model, (preds or acts)[0], exc)
                return
            log.debug("export of %d records failed (%s); splitting", len(preds) + len(acts), exc)
            halves = _halves(preds, acts)
            for k, (p, a) in enumerate(halves):
                try:
                    self._export(model, version, p, a, adopted=adopted)
                except _Partial as partial:
                    rest = [x for half in halves[k + 1 :] for x in half[0]]
                    rest_a = [x for half in halves[k + 1 :] for x in half[1]]
                    raise _Partial(
                        partial.cause, partial.preds + rest, partial.acts + rest_a
                    ) from partial.cause
            return
        if adopted:
            self.counters.dead_letters += result.dead_letters
        else:
            self.counters.account(result)
        self.backoff = 0.0
        self.retry_at = 0.0

    def _dead_letter(self, model: str, record: Any, exc: Exception) -> None:
        """A record the sink refuses for an unforeseen reason: the exporter keeps it as a dead
        letter where it can (Postgres), else it is a counted drop with the error."""
        kind = "actual" if type(record) is ActualRecord else "prediction"
        self.counters.error(exc)
        try:
            self.exporter.dead_letter(model, kind, record, exc)
        except RetryableError as retry:
            raise _Partial(
                retry, [] if kind == "actual" else [record], [record] if kind == "actual" else []
            ) from retry
        except Exception as second:
            self.counters.drop("export_error")
            self._warn("monitor: record could not be exported nor dead-lettered: %s", second)
            return
        self.counters.dead_letters += 1
        self._warn("monitor: record refused (%s); kept as a dead letter", exc)

    def _failed(self, exc: RetryableError) -> None:
        self.counters.export_failures += 1
        self.counters.error(exc)
        self.backoff = min(BACKOFF_CAP, self.backoff * 2 if self.backoff else BACKOFF_START)
        wait = max(self.backoff * random.uniform(0.8, 1.2), exc.retry_after or 0.0)
        self.retry_at = self.clock() + wait
        self._warn("monitor sink unavailable (%s); spooling, retry in %.0f s", exc, wait)

    # --- spool ------------------------------------------------------------------------------

    def _spool(self, model: str, version: str, preds: Sequence[Any], acts: Sequence[Any]) -> None:
        for start in range(0, len(preds) + len(acts), self.batch_size):
            part = [*preds, *acts][start : start + self.batch_size]
            p, a = _split(part)
            n = len(part)
            try:
                payload, unencodable = encode_batch(model, version, p, a)
                self.counters.drop("unencodable", unencodable)
                self.counters.drop("spool_full", self.spool.append(payload, n - unencodable))
                self.counters.spooled_records += n - unencodable
            except OSError as exc:
                self.counters.drop("spool_error", n)
                self.counters.error(exc)
                self._warn("monitor spool write failed (%s): %d records lost", exc, n)

    def _spool_leftovers(self) -> None:
        """Spool everything not delivered (at shutdown). Called by the worker at its deadline,
        or by ``shutdown`` when the worker is stuck; a record spooled twice (it was in flight
        and landed after all) replays as a duplicate, which the idempotent writer skips."""
        records: list[Any] = list(self.in_flight or [])
        pending, self.pending = self.pending, []
        records += pending
        pop = self.queue.popleft
        try:
            while True:
                rec = pop()
                records.append(_named(rec) if type(rec) is tuple else rec)
                self.counters.popped += 1
        except IndexError:
            pass
        if records:
            self._spool(self.model, self.version, *_split(records))

    def _replay(self, until: float) -> bool:
        """Replay spooled frames, several per write, until ``until`` (one slice: the caller
        pauses between slices unless someone flushes). True when frames are left."""
        spool = self.spool
        if not spool or self._in_outage(self.clock()):
            return bool(spool)
        while spool and self.clock() < until:
            frames = spool.peek_many(max(self.batch_size, REPLAY_RECORDS))
            if not frames:
                break
            groups: dict[tuple[str, str, bool], tuple[list[Any], list[Any]]] = {}
            for frame in frames:
                try:
                    model, version, preds, acts = decode_batch(frame.payload)
                except Exception as exc:  # CRC passed but unreadable: count it, never loop on it
                    self.counters.drop("spool_corrupt", frame.records)
                    log.warning("unreadable spool frame dropped: %s", exc)
                    continue
                own = not frame.adopted and (model, version) == (self.model, self.version)
                group = groups.setdefault((model, version, own), ([], []))
                group[0].extend(preds)
                group[1].extend(acts)
            try:
                for (model, version, own), (preds, acts) in groups.items():
                    self._export(model, version, preds, acts, adopted=not own)
            except _Partial as partial:  # frames stay; a later replay skips what landed
                self._failed(partial.cause)
                return True
            if self._abandoned:  # shutdown wrote to the spool meanwhile: leave it as it is
                return True
            spool.commit(len(frames))
            for frame in frames:
                if frame.adopted:
                    self.counters.adopted_records += frame.records
                else:
                    self.counters.replayed_records += frame.records
        return bool(spool)

    def _adopt(self) -> None:
        try:
            frames = self.spool.adopt_orphans()
        except OSError as exc:
            log.warning("could not scan for orphaned spools: %s", exc)
            return
        if frames:
            log.info("adopted %d spooled batches of a dead process", frames)

    def _report(self) -> None:
        try:
            self.exporter.report(self.model, self._instance, self._stats())
        except RetryableError:
            pass  # the sink is down: the next export attempt counts that
        except Exception as exc:
            log.debug("stats report failed: %s", exc)

    # --- log_batch ----------------------------------------------------------------------------

    def deliver_inline(self, block: RowBlock) -> None:
        """``log_batch``'s blocks, exported on the caller's thread under the export lock
        (spooled during an outage, like any batch)."""
        with self.export_lock:
            self.counters.bulk += len(block)
            if self._in_outage(self.clock()):
                self._spool(self.model, self.version, block, [])
                return
            try:
                self._export(self.model, self.version, block, [])
            except _Partial as partial:
                self._failed(partial.cause)
                self._spool(self.model, self.version, partial.preds, partial.acts)


def _named(rec: tuple[Any, ...]) -> PredictionRecord:
    """A ``log()`` tuple as a PredictionRecord; without an id, a UUIDv7 of its capture time."""
    if rec[0] is None:
        ts = rec[1]
        rec = (uuid7_int(ts if type(ts) is int else _time_ns()), *rec[1:])
    return tuple.__new__(PredictionRecord, rec)


def _split(records: Sequence[Any]) -> tuple[Sequence[Any], list[Any]]:
    """Predictions and actuals of a batch (a RowBlock holds predictions only)."""
    if isinstance(records, RowBlock):
        return records, []
    preds: list[Any] = []
    acts: list[Any] = []
    for rec in records:
        (acts if type(rec) is ActualRecord else preds).append(rec)
    return preds, acts


def _halves(preds: Sequence[Any], acts: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Two non-empty parts of a batch of at least two records."""
    if preds and acts:
        return [(preds, []), ([], acts)]
    if preds:
        mid = len(preds) // 2
        return [(preds[:mid], []), (preds[mid:], [])]
    mid = len(acts) // 2
    return [([], acts[:mid]), ([], acts[mid:])]


__all__ = ["BatchWorker", "Counters"]
