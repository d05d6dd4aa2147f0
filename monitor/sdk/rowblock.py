"""A block of ``log_batch`` rows, read in place: no copy of the caller's dicts, no tuple per row.

Taking each row apart into a record tuple (copy the dict, pop the reserved columns, zip) cost
~2.8 us per row of Python, most of it allocation and the garbage collector walking 50k fresh
dicts and tuples, all before the first byte reached the server. A :class:`RowBlock` keeps the
caller's rows as they are and hands the encoder whole columns (``uniform``), so that work is
done chunk by chunk inside the COPY stream, while the server is busy with the previous chunk.

It is still a ``Sequence`` of prediction tuples ``(id, event_ts, features, prediction, proba,
latency_ms, segment)``: anything that is not the fast path (the per-record cleaning path, the
careful path after a conflict, the spool, dead letters) gets the same tuples ``log_batch``
always produced, built on demand. Record ids and event times are fixed when the block is made,
so every retry or spooled replay of a block writes the same keys (idempotency).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, overload

from monitor.sdk.records import PredictionRecord

_new = tuple.__new__

# The record tuple's columns that come from a row's reserved keys, in tuple order.
_PREDICTION, _PROBA, _LATENCY, _SEGMENT = range(4)


class RowBlock(Sequence[PredictionRecord]):
    """Rows (dicts, never modified) with their ids and event times; see the module docstring.

    ``values`` names the reserved keys (prediction, proba, latency_ms, segment; None: not taken
    from the rows); ``reserved`` are all keys taken out of a row (those and the id and timestamp
    keys); ``wanted`` restricts the features to those names (``log_batch(features=...)``).
    """

    __slots__ = (
        "_names",
        "ids",
        "reserved",
        "rows",
        "times",
        "values",
        "wanted",
        "while_committing",
    )

    def __init__(
        self,
        rows: list[dict[str, Any]],
        ids: list[Any],
        times: list[Any],
        values: tuple[str | None, str | None, str | None, str | None],
        reserved: frozenset[str],
        wanted: frozenset[str] | None,
    ) -> None:
        self.rows = rows
        self.ids = ids
        self.times = times
        self.values = values
        self.reserved = reserved
        self.wanted = wanted
        self._names: tuple[str, ...] | None = None
        # Called by the Postgres writer on the caller's thread once all of this block's COPY
        # data is sent, while the server finishes and commits it (a helper thread waits for
        # that). Not copied to slices; never called on the other paths (spool, careful path).
        self.while_committing: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> PredictionRecord: ...

    @overload
    def __getitem__(self, index: slice) -> RowBlock: ...

    def __getitem__(self, index: int | slice) -> PredictionRecord | RowBlock:
        if isinstance(index, slice):
            return RowBlock(
                self.rows[index],
                self.ids[index],
                self.times[index],
                self.values,
                self.reserved,
                self.wanted,
            )
        return self._record(self.rows[index], self.ids[index], self.times[index])

    def __iter__(self) -> Iterator[PredictionRecord]:
        return map(self._record, self.rows, self.ids, self.times)

    def _record(self, row: dict[str, Any], record_id: Any, ts: Any) -> PredictionRecord:
        return _new(
            PredictionRecord,
            (record_id, ts, self.features(row), *(row.get(k) if k else None for k in self.values)),
        )

    def features(self, row: Mapping[str, Any]) -> dict[str, Any]:
        reserved, wanted = self.reserved, self.wanted
        if wanted is None:
            return {k: v for k, v in row.items() if k not in reserved}
        return {k: v for k, v in row.items() if k not in reserved and k in wanted}

    def feature_names(self) -> tuple[str, ...]:
        """The first row's feature names, in its key order (the fast plan's cache key)."""
        if self._names is None:
            self._names = tuple(self.features(self.rows[0])) if self.rows else ()
        return self._names

    def uniform(self, feature_names: Sequence[str]) -> tuple[list[Any], list[Any]] | None:
        """Columns ``(prediction, latency_ms)`` when every row has exactly the first row's keys
        and no proba or segment, else None (the caller then goes record by record).

        Same keys, cheaply: every row is as long as the first and has all of its keys. The
        feature names are looked up by the caller's encoder (a KeyError there means the same);
        the first row's other keys are checked here.
        """
        rows = self.rows
        if not rows:
            return None
        first = rows[0]
        if list(map(len, rows)).count(len(first)) != len(rows):
            return None
        names = set(feature_names)
        others = [k for k in first if k not in names]
        try:
            if others:
                deque(map(itemgetter(*others), rows), maxlen=0)  # KeyError if one is missing
            columns: list[list[Any]] = []
            for key in self.values:
                if key and key in first:
                    columns.append(list(map(itemgetter(key), rows)))
                else:
                    columns.append([None] * len(rows))
        except KeyError:
            return None
        if columns[_PROBA].count(None) != len(rows) or columns[_SEGMENT].count(None) != len(rows):
            return None
        return columns[_PREDICTION], columns[_LATENCY]
