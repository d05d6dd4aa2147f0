"""A small per-app cache of computed views, keyed by the model's results version, served
stale for a bounded time while it is recomputed in the background.

Everything a cached view is computed from (results, window profiles, runs, baselines, the model
row) is written in transactions that set the model's ``results_versions`` row to a fresh
sequence value (triggers, migration web3_0001), committed with the write: a version is never
seen with other data, and every commit changes it. A view's computation reads the version
before the view's data (itself, on the connection it runs on, even when the request read it
already: values are ordered by when their computation started), so a cached view is never older
than its version, and each web replica caches on its own (they stay stateless). Open alerts,
silences, tokens and sessions are never cached.

Stale-while-revalidate. A view is cached per *family*: its key without the results version and
without the concrete time range (the range label, or the custom start/end as given, plus the
model, segment, sort, ...). When a request finds its family cached at another version, the
cached value is answered at once and one background refresh recomputes it (on its own short
read connection: the request's is gone when it ends; a relative range such as "14d" is re-derived
there, so it ends at the newest window). Only while the newer version was first seen less than
``settings.web_max_stale_seconds`` ago: after that, or with nothing cached, the request computes
synchronously (single flight: concurrent requests for the family wait for that one
computation). So a page lags a write by at most the recompute time, never more than
``web_max_stale_seconds``; 0 turns staleness off (a write shows on the very next request). A
refresh that fails is logged and leaves the stale value; the first request after the bound then
computes synchronously (and reports the error, if it persists).

Why: results change whenever a window job or a label-driven performance recompute commits, so
users often land right after a write, and a cold 90-day model page costs hundreds of
milliseconds of SQL; it must not sit in front of them.

Values derived from a view (its JSON bytes, the page's rendered fragment) are cached by exact
key with :meth:`ViewCache.get_or_compute`, keyed by the key of the view value they derive from.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from monitor.web.reads.common import ModelRef

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_ENTRIES = 256
WAIT_SECONDS = 30.0
REFRESH_THREADS = 2

Compute = Callable[[sa.Connection], tuple[Hashable | None, T]]
"""A view's computation on a connection: (the results version it read first, the value)."""


@dataclass
class _Entry(Generic[T]):
    version: Hashable | None
    value: T
    read_at: float
    """``time.monotonic()`` before the computation read its version: the value is at least as
    new as anything read before this instant."""
    stale_since: float | None = None
    """When a request first found another version than this entry's."""
    refresh_failed: bool = False


@dataclass
class _Refresh:
    slot: Hashable
    compute: Compute[Any]
    event: threading.Event = field(default_factory=threading.Event)


class ViewCache:
    """Thread-safe LRU with single-flight misses and bounded stale-while-revalidate.

    When a results version changes, every dashboard user's next request misses at once; the
    heavy views (a 90-day heatmap) would then be computed once per concurrent request, all
    competing for the same cores. Instead the first miss computes and concurrent requests for
    the same key wait for its value (or compute themselves if it fails or takes longer than
    :data:`WAIT_SECONDS`). With an ``engine`` and ``max_stale`` > 0, :meth:`view` also answers
    a family's previous value while one background thread recomputes it.
    """

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        engine: sa.Engine | None = None,
        max_stale: float = 0.0,
        threads: int = REFRESH_THREADS,
    ) -> None:
        self.max_entries = max_entries
        self.engine = engine
        self.max_stale = max_stale if engine is not None else 0.0
        self.threads = threads
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Refresh] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self.hits = self.misses = self.waits = 0
        self.stale = self.refreshes = self.refresh_errors = 0

    # exact keys --------------------------------------------------------------------------

    def get_or_compute(self, key: Hashable | None, compute: Callable[[], T]) -> T:
        """The value under ``key`` (an exact key: it changes whenever the value would)."""
        if key is None:
            return compute()
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return self._items[key]  # type: ignore[no-any-return,unused-ignore]
                event = self._pending.get(key)
                if event is None:
                    event = self._pending[key] = threading.Event()
                    self.misses += 1
                    break
                self.waits += 1
            if not event.wait(WAIT_SECONDS):
                return compute()
            # computed (loop finds it) or failed (loop makes this thread the one computing)
        try:
            value = compute()
            with self._lock:
                self._store(key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            event.set()

    def _store(self, key: Hashable, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    # view families -----------------------------------------------------------------------

    def view(
        self,
        family: Hashable,
        version: Hashable | None,
        conn: sa.Connection,
        compute: Compute[T],
    ) -> tuple[Hashable | None, T]:
        """A family's value for a request that read results ``version``, and the value's key.

        ``compute(conn)`` reads the version, then the data, and returns both; it is called with
        the request's ``conn`` when computed synchronously, else with a refresh's own
        connection. The key, ``(family, version of the value)``, names the value served (which
        may be the previous version's) for caches of values derived from it; None when the
        model has no version yet (nothing is cached then).
        """
        if version is None:
            got, value = compute(conn)
            return None, value
        slot = ("view", family)
        called = time.monotonic()
        while True:
            with self._lock:
                entry: _Entry[T] | None = self._items.get(slot)
                if entry is not None and (entry.version == version or entry.read_at >= called):
                    self._items.move_to_end(slot)
                    self.hits += 1
                    return (family, entry.version), entry.value
                event = self._pending.get(slot)
                if entry is not None and self.max_stale > 0:
                    now = time.monotonic()
                    if entry.stale_since is None:
                        entry.stale_since = now
                    if now - entry.stale_since < self.max_stale:
                        self.stale += 1
                        self._items.move_to_end(slot)
                        if event is None and not entry.refresh_failed:
                            self._start_refresh(slot, compute)
                        return (family, entry.version), entry.value
                if event is None:
                    event = self._pending[slot] = threading.Event()
                    self.misses += 1
                    break
                self.waits += 1
            if not event.wait(WAIT_SECONDS):
                got, value = self._compute(conn, compute)[1:]
                return (family, got), value
            # stored (the loop finds it) or failed (the loop makes this thread compute)
        try:
            fresh = self._compute(conn, compute)
            with self._lock:
                self._keep(slot, fresh[0], fresh[1], fresh[2])
            return (family, fresh[1]), fresh[2]
        finally:
            with self._lock:
                self._pending.pop(slot, None)
            event.set()

    @staticmethod
    def _compute(conn: sa.Connection, compute: Compute[T]) -> tuple[float, Hashable | None, T]:
        read_at = time.monotonic()
        version, value = compute(conn)
        return read_at, version, value

    def _keep(self, slot: Hashable, read_at: float, version: Hashable | None, value: Any) -> None:
        """Store a computed value unless a newer read is cached already."""
        if version is None:
            return
        old = self._items.get(slot)
        if old is not None and old.read_at > read_at:
            return
        self._store(slot, _Entry(version, value, read_at))

    def _start_refresh(self, slot: Hashable, compute: Compute[Any]) -> None:
        """Queue one refresh of ``slot`` (called with the lock held, none pending)."""
        job = _Refresh(slot, compute)
        self._pending[slot] = job.event
        self.refreshes += 1
        self._queue.put(job)
        if len(self._workers) < self.threads:
            # daemon threads: a refresh never keeps the server from exiting
            worker = threading.Thread(target=self._work, name="view-refresh", daemon=True)
            self._workers.append(worker)
            worker.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                assert self.engine is not None
                with self.engine.connect() as conn:
                    fresh = self._compute(conn, job.compute)
                with self._lock:
                    self._keep(job.slot, *fresh)
            except Exception:
                log.exception("background refresh of cached view %r failed", job.slot)
                with self._lock:
                    self.refresh_errors += 1
                    entry = self._items.get(job.slot)
                    if entry is not None:
                        entry.refresh_failed = True
            finally:
                with self._lock:
                    self._pending.pop(job.slot, None)
                job.event.set()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "waits": self.waits,
                "stale": self.stale,
                "refreshes": self.refreshes,
                "refresh_errors": self.refresh_errors,
            }


def cached_view(
    cache: ViewCache | None,
    family: Hashable,
    version: Hashable | None,
    conn: sa.Connection,
    compute: Compute[T],
) -> tuple[Hashable | None, T]:
    """:meth:`ViewCache.view`, or the computation on ``conn`` without a cache (key None)."""
    if cache is None:
        return None, compute(conn)[1]
    return cache.view(family, version, conn, compute)


_VERSION = sa.text("SELECT version FROM results_versions WHERE model_id = :m")


def results_version(conn: sa.Connection, model: ModelRef) -> Hashable | None:
    """The model's results version (None: nothing written yet, nothing to key on); read with
    the model by ``get_model`` already, else read here."""
    version = model.state[0] if model.state is not None else None
    if model.state is None:
        version = conn.execute(_VERSION, {"m": model.id}).scalar()
    return None if version is None else int(version)


def view_cache(app_state: Any) -> ViewCache:
    cache = getattr(app_state, "view_cache", None)
    if cache is None:
        cache = ViewCache()
        app_state.view_cache = cache
    return cache
