"""``log_batch``: the bulk path for batch scoring jobs (a DataFrame or an iterable of dicts).

Unlike ``log()`` it exports on the caller's thread (outages spool as usual) and returns when
every row was written or spooled: a batch job wants completeness and speed, not microseconds
per call (two threads sharing the GIL would make it several times slower).

Rows go in blocks of ``BULK_BATCH``, one transaction each. The caller's dicts are read, never
copied or changed (:class:`~monitor.sdk.rowblock.RowBlock`). The next block is read from the
caller's iterable, on the caller's thread, while the server finishes and commits the current
one (its last COPY data sent, the writer calls the block's ``while_committing`` and waits for
the commit on a helper thread), so neither side sits idle between blocks. If the iterable
raises, the blocks read before are still written, then the error propagates.

Ids and event times are fixed when a block is made, so every retry or spooled replay of a
block writes the same keys (idempotency). A missing id (None, NaN, ``pd.NA``) gets a UUIDv7;
an id or time that cannot be read as the caller meant refuses its row, counted as ``invalid``
(raised in strict mode).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from monitor.sdk.records import caller_id, caller_time, is_missing, uuid7_int
from monitor.sdk.rowblock import RowBlock

if TYPE_CHECKING:
    from monitor.sdk.client import Monitor

BULK_BATCH = 50_000
_time_ns = time.time_ns


def log_batch(
    client: Monitor,
    records: Any,
    keys: tuple[str, str | None, str | None, str | None, str | None, str | None],
    features: Sequence[str] | None,
) -> int:
    """Write ``records`` through ``client``'s worker; returns the number of rows taken."""
    worker = client._worker
    worker.start()
    blocks = _blocks(client, _rows(records), keys, features, uuid7_int)
    taken = 0
    block = next(blocks, None)
    while block is not None:
        ahead: list[RowBlock | Exception | None] = []

        def read_ahead(ahead: list[RowBlock | Exception | None] = ahead) -> None:
            if not ahead:
                try:
                    ahead.append(next(blocks, None))
                except Exception as exc:  # the caller's: raised once this block is written
                    ahead.append(exc)

        block.while_committing = read_ahead
        taken += len(block)
        worker.deliver_inline(block)
        read_ahead()  # a no-op when the writer already did it
        following = ahead[0]
        if isinstance(following, Exception):
            raise following
        block = following
    return taken


def _blocks(
    client: Monitor,
    rows: Iterator[Mapping[str, Any]],
    keys: tuple[str, str | None, str | None, str | None, str | None, str | None],
    features: Sequence[str] | None,
    uuid7_int: Any,
) -> Iterator[RowBlock]:
    prediction, id, timestamp, latency_ms, proba, segment = keys
    reserved = frozenset(k for k in keys if k)
    wanted = frozenset(features) if features is not None else None
    values = (prediction, proba, latency_ms, segment)
    # Bigger transactions than log()'s batches: measured ~1.6x the rate of 1,000-row ones.
    chunk_size = max(client.batch_size, BULK_BATCH)
    while True:
        taken = list(islice(rows, chunk_size))
        if not taken:
            return
        block: list[dict[str, Any]] = (
            taken  # type: ignore[assignment]
            if list(map(type, taken)).count(dict) == len(taken)
            else [r if type(r) is dict else dict(r) for r in taken]
        )
        none, n = repeat(None), len(block)
        ns = _time_ns()  # one capture time per block: these rows were scored together
        ids: list[Any] = list(map(dict.get, block, repeat(id), none)) if id else [None] * n
        if list(map(type, ids)).count(str) != n:
            ids = [_id(i, ns, uuid7_int) for i in ids]
        times: list[Any] = (
            list(map(dict.get, block, repeat(timestamp), none)) if timestamp else [None] * n
        )
        if times.count(None) == n:
            times = [ns] * n
        else:
            times = [ns if t is None or is_missing(t) else _time(t) for t in times]
        refused = [i for i in range(n) if ids[i] is _REFUSED or times[i] is _REFUSED]
        if refused:
            if client.strict:
                raise ValueError(f"row {refused[0]} has an id or timestamp that cannot be read")
            client._worker.counters.drop("invalid", len(refused))
            keep = sorted(set(range(n)) - set(refused))
            block = [block[i] for i in keep]
            ids = [ids[i] for i in keep]
            times = [times[i] for i in keep]
            if not block:
                continue
        yield RowBlock(block, ids, times, values, reserved, wanted)


_REFUSED: Any = object()


def _id(value: Any, ns: int, uuid7_int: Any) -> Any:
    if value is None or is_missing(value) or (isinstance(value, float) and value != value):
        return uuid7_int(ns)
    try:
        text = caller_id(value)
    except TypeError:
        return _REFUSED
    return text if text and "\x00" not in text else _REFUSED


def _time(value: Any) -> Any:
    try:
        return caller_time(value)
    except (TypeError, ValueError):
        return _REFUSED


def _rows(records: Any) -> Iterator[Mapping[str, Any]]:
    """Rows of a DataFrame (duck-typed: no pandas import) or an iterable of mappings; they are
    only read, never modified."""
    to_dict = getattr(records, "to_dict", None)
    if callable(to_dict) and hasattr(records, "columns"):
        return iter(to_dict("records"))
    return iter(records)
