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
- **Nothing lost silently.** Any exception in the export of a batch ends as rows, spool or
  counted dead letters (:mod:`monitor.sdk.delivery`, which exports, spools and replays).
- **Exit.** ``shutdown(timeout)`` flushes, and writes to the spool whatever the sink did not
  take within the timeout, also when the worker thread is stuck on a sink that accepts
  connections and never answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monitor.sdk.delivery import Counters, Partial, Sender, split
from monitor.sdk.exporters import Exporter, RetryableError
from monitor.sdk.records import (
    PredictionRecord,
    uuid7_int,
)
from monitor.sdk.rowblock import RowBlock
from monitor.sdk.spool import Spool

log = logging.getLogger(__name__)

SPOOL_HOLD = 5.0  # seconds records may wait in memory during an outage before they are spooled
REPLAY_SLICE = 0.25  # seconds of replay between pauses (as long) when nobody is flushing
ADOPT_EVERY = 60.0  # seconds between looks for spools of dead processes
STOP_RESERVE = 0.5  # seconds of a shutdown kept to spool what the sink did not take
STOPPED = float("inf")  # next_report once the shutdown's report went out
_time_ns = time.time_ns


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
        self.sender = Sender(
            model=model,
            version=version,
            exporter=exporter,
            store=spool,
            counters=self.counters,
            batch_size=batch_size,
            warn=warn,
            clock=clock,
        )
        self._stats = stats
        self._instance = instance
        self._warn = warn
        self.clock = clock
        self.pending: list[Any] = []
        self.in_flight: Sequence[Any] | None = None  # the batch being exported right now
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
                        self.sender.adopt()
                    tick = now >= next_tick
                    if tick:
                        hold = self.sender.in_outage(now)
                        next_tick = now + (SPOOL_HOLD if hold else self.interval)
                    self._send(tick, flushing, stopping)
                    more = self.sender.replay(
                        min(now + REPLAY_SLICE, self._stop_at) if stopping else now + REPLAY_SLICE,
                        lambda: self._abandoned,
                    )
                    if now >= next_report or (stopping and next_report != STOPPED):
                        next_report = STOPPED if stopping else now + self.report_interval
                        self._report()  # and once more on shutdown, with the final counters
                except Exception as exc:  # a bug must not kill the thread silently
                    self.counters.error(exc)
                    log.exception("monitor SDK worker error")
                    more = False
            if self.idle() and not self.sender.backoff:  # all delivered, the sink answering
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
        outage = self.sender.in_outage(now)
        if hurry and not outage and (more or self.pending or self.queue):
            return 0.0
        wake_at = min(next_tick, next_report)
        if outage and (self.pending or self.spool):
            wake_at = min(wake_at, self.sender.retry_at)
        elif more:
            wake_at = min(wake_at, now + REPLAY_SLICE)
        if hurry:
            wake_at = min(wake_at, self._stop_at if self._stopping else self._flush_until)
        return max(0.0, wake_at - now)

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
            outage = self.sender.in_outage(self.clock())
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
        preds, acts = split(chunk)
        if self.sender.in_outage(self.clock()):
            if hold and len(chunk) < self.batch_size:
                self.pending[:0] = chunk
                return True
            self.sender.spool(self.model, self.version, preds, acts)
            return False
        try:
            self.sender.export(self.model, self.version, preds, acts)
        except Partial as partial:
            self.sender.failed(partial.cause)
            rest = [*partial.preds, *partial.acts]
            if hold and len(rest) < self.batch_size:
                self.pending[:0] = rest
                return True
            self.sender.spool(self.model, self.version, partial.preds, partial.acts)
        return False

    # --- spool ------------------------------------------------------------------------------

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
            self.sender.spool(self.model, self.version, *split(records))

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
            if self.sender.in_outage(self.clock()):
                self.sender.spool(self.model, self.version, block, [])
                return
            try:
                self.sender.export(self.model, self.version, block, [])
            except Partial as partial:
                self.sender.failed(partial.cause)
                self.sender.spool(self.model, self.version, partial.preds, partial.acts)


def _named(rec: tuple[Any, ...]) -> PredictionRecord:
    """A ``log()`` tuple as a PredictionRecord; without an id, a UUIDv7 of its capture time."""
    if rec[0] is None:
        ts = rec[1]
        rec = (uuid7_int(ts if type(ts) is int else _time_ns()), *rec[1:])
    return tuple.__new__(PredictionRecord, rec)


__all__ = ["BatchWorker", "Counters"]
