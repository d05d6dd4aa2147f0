"""A small per-app cache of computed views, keyed by the model's results version.

Stored results only change when a window job finishes (or recomputes a stale window), and every
such change moves the model's newest ``runs.finished_at``. A view computed from results is
therefore valid as long as that stamp is unchanged; including it in the key makes invalidation
automatic and exact, and each web replica can cache on its own (they stay stateless). Open
alerts, tokens and silences are never cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
MAX_ENTRIES = 256


class ViewCache:
    """Thread-safe LRU; computing happens outside the lock (two misses may both compute)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_compute(self, key: Hashable | None, compute: Callable[[], T]) -> T:
        if key is None:
            return compute()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]  # type: ignore[no-any-return,unused-ignore]
            self.misses += 1
        value = compute()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value


def results_version(conn: sa.Connection, model_id: int) -> Hashable | None:
    """The model's results stamp: newest run finish and run count (None: nothing to key on)."""
    row = conn.execute(
        sa.text("SELECT max(finished_at), count(*) FROM runs WHERE model_id = :m"),
        {"m": model_id},
    ).first()
    if row is None or row[0] is None:
        return None
    return (row[0].timestamp(), int(row[1]))


def view_cache(app_state: Any) -> ViewCache:
    cache = getattr(app_state, "view_cache", None)
    if cache is None:
        cache = ViewCache()
        app_state.view_cache = cache
    return cache
