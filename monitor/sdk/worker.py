"""The background worker: drains the queue, batches, exports, spools on outage, replays.

One daemon thread per :class:`~monitor.sdk.client.Monitor`. It owns everything slow: cleaning,
encoding, I/O. It exports a batch when ``batch_size`` records are waiting or ``interval``
seconds passed; on a retryable failure the batch goes to the disk spool and the sink is retried
with backoff (1 s doubling, capped at 30 s). While the spool holds anything, new batches are
appended to it too, so records reach the sink in the order they were logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitor.sdk.client import uuid7_int
from monitor.sdk.exporters import RetryableError, decode_batch, encode_batch
from monitor.sdk.records import CleanCounts
from monitor.sdk.rowblock import RowBlock

if TYPE_CHECKING:
    from monitor.sdk.client import Monitor

_time_ns = time.time_ns

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
REPLAY_FRAMES_PER_ROUND = 20
ADOPT_EVERY = 60.0


class Counters:
    """Worker-side counters (written by the worker thread only, read by ``stats()``)."""

    def __init__(self) -> None:
        self.popped = 0
        self.exported = 0
        self.inserted = 0
        self.duplicates = 0
        self.dead_letters = 0
        self.spooled_records = 0
        self.replayed_records = 0
        self.export_failures = 0
        self.dropped: dict[str, int] = {}
        self.cleaned = CleanCounts()
        self.last_error: str | None = None
        self.last_export_at: float | None = None

    def drop(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n


class Worker:
    def __init__(self, monitor: Monitor) -> None:
        self.m = monitor
        self.c = monitor._counters
        self.pending: list[Any] = []
        self.backoff = 0.0
        self.retry_at = 0.0
        self.next_adopt = 0.0

    # --- loop -----------------------------------------------------------------------------

    def run(self) -> None:
        m = self.m
        next_export = time.monotonic() + m.interval
        next_report = time.monotonic() + m.report_interval
        while True:
            now = time.monotonic()
            m._wake.wait(max(0.0, min(next_export, next_report) - now))
            m._wake.clear()
            flush_req = m._flush_req
            stopping = m._stopping
            try:
                m._export_lock.acquire()
                self._drain()
                now = time.monotonic()
                flushing = flush_req > m._flush_done
                due = now >= next_export or flushing or stopping
                while len(self.pending) >= m.batch_size or (due and self.pending):
                    chunk = self.pending[: m.batch_size]
                    del self.pending[: m.batch_size]
                    self._deliver(chunk, give_up=stopping and self.backoff > 0)
                    if len(self.pending) < m.batch_size:
                        self._drain()
                if due:
                    next_export = now + m.interval
                if now >= self.next_adopt and m.spool is not None:
                    self.next_adopt = now + ADOPT_EVERY
                    self._adopt()
                self._replay(force=flushing, deadline=m._stop_deadline if stopping else None)
                if now >= next_report or stopping:
                    next_report = now + m.report_interval
                    self._report()
            except Exception:  # a bug here must not kill the thread silently
                log.exception("monitor SDK worker error")
            finally:
                m._export_lock.release()
            if flush_req > m._flush_done:
                ok = not self.pending and not len(m._queue) and not m.spool_pending()
                m._finish_flush(flush_req, ok and self.backoff == 0)
            if stopping and not self.pending and not len(m._queue):
                return

    def _drain(self) -> None:
        """Move queued records into ``pending`` (popleft is atomic; callers never wait)."""
        q = self.m._queue
        pop = q.popleft
        pending = self.pending
        n = 0
        limit = self.m.queue_size
        try:
            while n < limit:
                rec = pop()
                if rec[0] is None and len(rec) == 7:  # log() without an id: give it one now
                    ts = rec[1]
                    rec = (uuid7_int(ts if type(ts) is int else _time_ns()), *rec[1:])
                pending.append(rec)
                n += 1
        except IndexError:
            pass
        self.c.popped += n

    # --- delivery -------------------------------------------------------------------------

    def deliver_inline(self, chunk: Sequence[Any]) -> None:
        """The bulk path (``log_batch``): export on the caller's thread, under the export lock."""
        with self.m._export_lock:
            self.c.popped += len(chunk)
            try:
                self._deliver(chunk)
            except Exception:
                log.exception("monitor SDK bulk export error")
                self.c.drop("export_error", len(chunk))

    def _deliver(self, chunk: Sequence[Any], *, give_up: bool = False) -> None:
        m = self.m
        preds: Sequence[Any]
        acts: list[Any] = []
        if isinstance(chunk, RowBlock):  # log_batch's rows: predictions only
            preds = chunk
        else:
            preds = []
            for rec in chunk:
                (acts if len(rec) == 3 else preds).append(rec)
        if not preds and not acts:
            return
        if m.spool_pending() or give_up or (self.backoff and time.monotonic() < self.retry_at):
            self._spool(preds, acts)
            return
        try:
            self._export(preds, acts)
        except RetryableError as exc:
            self._failed(exc)
            self._spool(preds, acts)

    def _export(self, preds: Sequence[Any], acts: Sequence[Any]) -> None:
        m = self.m
        result = m.exporter.export(m.model, m.version, preds, acts)
        c = self.c
        c.exported += result.inserted + result.duplicates
        c.inserted += result.inserted
        c.duplicates += result.duplicates
        c.dead_letters += result.dead_letters
        c.drop("too_large", result.too_large)
        c.cleaned.add(result.counts)
        c.last_export_at = time.time()
        self.backoff = 0.0
        self.retry_at = 0.0

    def _failed(self, exc: RetryableError) -> None:
        self.c.export_failures += 1
        self.c.last_error = str(exc)[:500]
        self.backoff = min(BACKOFF_CAP, self.backoff * 2 if self.backoff else BACKOFF_START)
        wait = max(self.backoff, exc.retry_after or 0.0)
        self.retry_at = time.monotonic() + wait
        self.m._warn("monitor sink unavailable (%s); spooling, retry in %.0f s", exc, wait)

    def _spool(self, preds: Sequence[Any], acts: Sequence[Any]) -> None:
        n = len(preds) + len(acts)
        spool = self.m.spool
        if spool is None:
            self.c.drop("spool_unavailable", n)
            return
        try:
            payload = encode_batch(self.m.model, self.m.version, preds, acts)
            self.c.drop("spool_full", spool.append(payload, n))
            self.c.spooled_records += n
        except OSError as exc:
            self.c.drop("spool_error", n)
            self.m._warn("monitor spool write failed (%s): %d records lost", exc, n)

    def _replay(self, *, force: bool, deadline: float | None) -> None:
        spool = self.m.spool
        if spool is None or not spool:
            return
        if self.backoff and time.monotonic() < self.retry_at and not force:
            return
        for _ in range(REPLAY_FRAMES_PER_ROUND):
            if deadline is not None and time.monotonic() > deadline:
                return
            frame = spool.peek()
            if frame is None:
                return
            payload, records = frame
            try:
                model, version, preds, acts = decode_batch(payload)
            except Exception as exc:  # CRC passed but unreadable: count it, never loop on it
                self.c.drop("spool_corrupt", records)
                log.warning("unreadable spool frame dropped: %s", exc)
                spool.commit()
                continue
            try:
                if model == self.m.model and version == self.m.version:
                    self._export(preds, acts)
                else:  # adopted from a process that logged another model
                    result = self.m.exporter.export(model, version, preds, acts)
                    self.c.dead_letters += result.dead_letters
            except RetryableError as exc:
                self._failed(exc)
                return
            spool.commit()
            self.c.replayed_records += records

    def _adopt(self) -> None:
        spool = self.m.spool
        if spool is None:
            return
        try:
            frames = spool.adopt_orphans()
        except OSError as exc:
            log.warning("could not scan for orphaned spools: %s", exc)
            return
        if frames:
            log.info("adopted %d spooled batches of a dead process", frames)

    def _report(self) -> None:
        try:
            self.m.exporter.report(self.m.model, self.m.instance, self.m.stats())
        except RetryableError:
            pass
        except Exception as exc:
            log.debug("stats report failed: %s", exc)


def start_thread(monitor: Monitor, worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name=f"monitor-{monitor.model}", daemon=True)
    thread.start()
    return thread
