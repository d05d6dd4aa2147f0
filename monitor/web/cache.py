"""A small per-app cache of computed views, keyed by the model's results version.

Everything a cached view is computed from (results, window profiles, runs, baselines, the model
row) is written in transactions that set the model's ``results_versions`` row to a fresh
sequence value (triggers, migration web3_0001), committed with the write: a version is never
seen with other data, and every commit changes it. The version is read before the view's data,
so a cached view is never older than its key: a new window shows on the next request,
and each web replica can cache on its own (they stay stateless). Open alerts, silences, tokens
and sessions are never cached.

The previous key, ``max(runs.finished_at)`` and a count of runs, missed a completion that
committed after a later-started one (``now()`` is the transaction's start), and scanned every
run of the model on each request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa

from monitor.web.reads.common import ModelRef

T = TypeVar("T")
MAX_ENTRIES = 256
WAIT_SECONDS = 30.0


class ViewCache:
    """Thread-safe LRU with single-flight misses.

    When a results version changes, every dashboard user's next request misses at once; the
    heavy views (a 90-day heatmap) would then be computed once per concurrent request, all
    competing for the same cores. Instead the first miss computes and concurrent requests for
    the same key wait for its value (or compute themselves if it fails or takes longer than
    :data:`WAIT_SECONDS`).
    """

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = self.waits = 0

    def get_or_compute(self, key: Hashable | None, compute: Callable[[], T]) -> T:
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
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            event.set()


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
