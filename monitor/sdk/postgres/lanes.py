"""A bulk block over two connections: the second connection, the order of the chunks, and the
commit that overlaps the caller's next read.

With the C encoder, one server process is the bulk path's bottleneck (about twice Python's time
per row): a block of ``log_batch`` rows goes over two connections, each taking one half, so two
server processes parse and index in parallel (see ``PostgresWriter._stream_predictions``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

LANE_RETRY = 60.0  # seconds before trying again to open a second connection that failed


class SecondLane:
    """The writer's second connection: opened on first use and kept, reopened when lost. A
    server that refuses one more connection (``max_connections``) costs the bulk path its
    second lane for ``LANE_RETRY`` seconds, never the block: it goes over the first alone."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        prepare: Callable[[psycopg.Connection[Any]], None],
    ) -> None:
        self._connect = connect
        self._prepare = prepare
        self.conn: psycopg.Connection[Any] | None = None
        self._retry_at = 0.0

    def get(self) -> psycopg.Connection[Any] | None:
        if time.monotonic() < self._retry_at:
            return None
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.close()
            conn = None
            try:
                conn = self._connect()
                if not conn.autocommit:
                    raise ValueError("the second connection needs autocommit=True")
                self._prepare(conn)
            except (psycopg.Error, ValueError) as exc:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                self._retry_at = time.monotonic() + LANE_RETRY
                log.warning("no second connection for bulk blocks (%s); using one", exc)
                return None
            self.conn = conn
        return self.conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def abandon(self) -> psycopg.Connection[Any] | None:
        """Forget the connection without closing it (after ``fork``: it is the parent's)."""
        conn, self.conn = self.conn, None
        return conn


def chunk_order(n: int, lanes: int, chunk: int) -> list[tuple[int, int]]:
    """``(connection, first row)`` of each ``chunk``-row part of an ``n``-row block, in sending
    order. With two connections, the first takes the first half and the second the other, a
    chunk of each in turn: both server processes stay busy, and each appends to its own end of
    the key range. The price is a larger primary-key index: whichever connection appends below
    the other's keys splits its pages in the middle (nbtree's split-after-new-item rule is only
    for tuples of up to two int8 columns), 58 against 44 bytes per row; the table and index
    together 384 against 369. Any concurrent scheme pays it: alternating chunks measured 383,
    alternating rows 59 bytes of index per row."""
    starts = range(0, n, chunk)
    if lanes == 1:
        return [(0, begin) for begin in starts]
    half = -(-len(starts) // 2)
    first, second = starts[:half], starts[half:]
    order = []
    for k, begin in enumerate(first):
        order.append((0, begin))
        if k < len(second):
            order.append((1, second[k]))
    return order


def finish_during(stack: contextlib.ExitStack, work: Callable[[], None]) -> None:
    """Close ``stack`` (COPY end, the trigger, commit) on a helper thread while this thread does
    ``work``, then re-raise whatever closing raised.

    After the last COPY byte the server still parses what is buffered, runs the statement's
    trigger and commits, with an fsync of the batch's WAL under ``synchronous_commit``: tens
    of milliseconds per 50k-row block during which the caller's thread used to wait. The
    helper only waits on the socket (the GIL released), so ``work`` (reading the caller's next
    rows) runs meanwhile; the connection is not touched by ``work``.
    """
    errors: list[BaseException] = []

    def close() -> None:
        try:
            stack.close()
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)

    helper = threading.Thread(target=close, name="monitor-sdk-commit", daemon=True)
    helper.start()
    try:
        work()
    finally:
        helper.join()
    if errors:
        raise errors[0]
