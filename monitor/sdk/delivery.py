"""Delivery of batches to the sink: export, split on refusal, spool on outage, replay.

Every exception in the export of a batch ends as rows, spool or counted dead letters, never as a
dropped batch: a retryable one (the sink is unavailable) starts a backoff and raises
:class:`Partial` with exactly what was not written, which the caller spools; any other splits
the batch in halves until the bad record is alone, and that one becomes a dead letter (or, if
even that fails, a counted drop with the error in ``stats()["last_error"]``).

The worker (:class:`~monitor.sdk.worker.BatchWorker`) decides when; :class:`Sender` does it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from monitor.sdk.exporters import Exporter, RetryableError
from monitor.sdk.records import ActualRecord, CleanCounts, WriteResult
from monitor.sdk.rowblock import RowBlock
from monitor.sdk.spool import Spool
from monitor.sdk.wire import decode_batch, encode_batch

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
# Retries of an unavailable sink back off 1, 2, 4, 5, 5... s (+-20% jitter, so that many
# clients do not retry in step), or the sink's Retry-After: a recovered database is found
# within ~6 s, so that a backlog lands soon after it is back (a connection attempt is cheap).
BACKOFF_CAP = 5.0
REPLAY_RECORDS = 20_000  # records read from the spool for one write


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


class Partial(Exception):
    """A retryable failure part-way through a batch: ``preds``/``acts`` were not written."""

    def __init__(self, cause: RetryableError, preds: list[Any], acts: list[Any]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.preds = preds
        self.acts = acts



class Sender:
    """Export, dead letters, backoff, spool and replay of one client's batches."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        exporter: Exporter,
        store: Spool,
        counters: Counters,
        batch_size: int,
        warn: Callable[..., None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model  # the client's: its own frames are counted as replayed
        self.version = version
        self.exporter = exporter
        self.store = store
        self.counters = counters
        self.batch_size = batch_size
        self.warn = warn
        self.clock = clock
        self.backoff = 0.0
        self.retry_at = 0.0

    def in_outage(self, now: float) -> bool:
        return self.backoff > 0 and now < self.retry_at

    def export(
        self,
        model: str,
        version: str,
        preds: Sequence[Any],
        acts: Sequence[Any],
        *,
        adopted: bool = False,
    ) -> None:
        """Write a batch; a non-retryable failure splits it until the bad record is alone.
        Raises :class:`Partial` with what was not written when the sink becomes unavailable."""
        try:
            result = self.exporter.export(model, version, preds, acts)
        except RetryableError as exc:
            raise Partial(exc, list(preds), list(acts)) from exc
        except Exception as exc:
            if len(preds) + len(acts) == 1:
                self.dead_letter(model, (preds or acts)[0], exc)
                return
            log.debug("export of %d records failed (%s); splitting", len(preds) + len(acts), exc)
            parts = halves(preds, acts)
            for k, (p, a) in enumerate(parts):
                try:
                    self.export(model, version, p, a, adopted=adopted)
                except Partial as partial:
                    rest = [x for half in parts[k + 1 :] for x in half[0]]
                    rest_a = [x for half in parts[k + 1 :] for x in half[1]]
                    raise Partial(
                        partial.cause, partial.preds + rest, partial.acts + rest_a
                    ) from partial.cause
            return
        if adopted:
            self.counters.dead_letters += result.dead_letters
        else:
            self.counters.account(result)
        self.backoff = 0.0
        self.retry_at = 0.0

    def dead_letter(self, model: str, record: Any, exc: Exception) -> None:
        """A record the sink refuses for an unforeseen reason: the exporter keeps it as a dead
        letter where it can (Postgres), else it is a counted drop with the error."""
        kind = "actual" if type(record) is ActualRecord else "prediction"
        self.counters.error(exc)
        try:
            self.exporter.dead_letter(model, kind, record, exc)
        except RetryableError as retry:
            raise Partial(
                retry, [] if kind == "actual" else [record], [record] if kind == "actual" else []
            ) from retry
        except Exception as second:
            self.counters.drop("export_error")
            self.warn("monitor: record could not be exported nor dead-lettered: %s", second)
            return
        self.counters.dead_letters += 1
        self.warn("monitor: record refused (%s); kept as a dead letter", exc)

    def failed(self, exc: RetryableError) -> None:
        self.counters.export_failures += 1
        self.counters.error(exc)
        self.backoff = min(BACKOFF_CAP, self.backoff * 2 if self.backoff else BACKOFF_START)
        wait = max(self.backoff * random.uniform(0.8, 1.2), exc.retry_after or 0.0)
        self.retry_at = self.clock() + wait
        self.warn("monitor sink unavailable (%s); spooling, retry in %.0f s", exc, wait)

    def spool(self, model: str, version: str, preds: Sequence[Any], acts: Sequence[Any]) -> None:
        for start in range(0, len(preds) + len(acts), self.batch_size):
            part = [*preds, *acts][start : start + self.batch_size]
            p, a = split(part)
            n = len(part)
            try:
                payload, unencodable = encode_batch(model, version, p, a)
                self.counters.drop("unencodable", unencodable)
                self.counters.drop("spool_full", self.store.append(payload, n - unencodable))
                self.counters.spooled_records += n - unencodable
            except OSError as exc:
                self.counters.drop("spool_error", n)
                self.counters.error(exc)
                self.warn("monitor spool write failed (%s): %d records lost", exc, n)

    def replay(self, until: float, abandoned: Callable[[], bool]) -> bool:
        """Replay spooled frames, several per write, until ``until`` (one slice: the caller
        pauses between slices unless someone flushes). True when frames are left.
        ``abandoned()``: a shutdown gave up on this thread and wrote to the spool itself."""
        spool = self.store
        if not spool or self.in_outage(self.clock()):
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
                    self.export(model, version, preds, acts, adopted=not own)
            except Partial as partial:  # frames stay; a later replay skips what landed
                self.failed(partial.cause)
                return True
            if abandoned():  # shutdown wrote to the spool meanwhile: leave it as it is
                return True
            spool.commit(len(frames))
            for frame in frames:
                if frame.adopted:
                    self.counters.adopted_records += frame.records
                else:
                    self.counters.replayed_records += frame.records
        return bool(spool)

    def adopt(self) -> None:
        try:
            frames = self.store.adopt_orphans()
        except OSError as exc:
            log.warning("could not scan for orphaned spools: %s", exc)
            return
        if frames:
            log.info("adopted %d spooled batches of a dead process", frames)


def split(records: Sequence[Any]) -> tuple[Sequence[Any], list[Any]]:
    """Predictions and actuals of a batch (a RowBlock holds predictions only)."""
    if isinstance(records, RowBlock):
        return records, []
    preds: list[Any] = []
    acts: list[Any] = []
    for rec in records:
        (acts if type(rec) is ActualRecord else preds).append(rec)
    return preds, acts


def halves(preds: Sequence[Any], acts: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Two non-empty parts of a batch of at least two records."""
    if preds and acts:
        return [(preds, []), ([], acts)]
    if preds:
        mid = len(preds) // 2
        return [(preds[:mid], []), (preds[mid:], [])]
    mid = len(acts) // 2
    return [([], acts[:mid]), ([], acts[mid:])]


