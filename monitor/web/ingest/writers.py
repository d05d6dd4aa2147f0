"""The collector's Postgres writers: a small pool of connections, each with its
:class:`~monitor.sdk.postgres.writer.PostgresWriter` (which caches models, versions and
feature slots), and the rule that tells a database outage (503, retry) from a record the
database refused."""

from __future__ import annotations

import queue
import threading
from typing import Any

import psycopg
from fastapi import Request

from monitor.sdk.postgres.writer import PostgresWriter
from monitor.storage.engine import libpq_url


class Busy(Exception):
    """Every writer of this worker stayed busy for ``WAIT_SECONDS``: answered 503."""


class WriterPool:
    """Up to ``size`` writers (connections) per worker process, ``idle`` of them kept open.

    The bound keeps a burst of small requests (the thread pool runs 40 at once) from opening
    a connection each: four workers would exhaust Postgres' default 100 connections.
    """

    WAIT_SECONDS = 30.0

    def __init__(
        self, url: str, idle: int = 4, size: int = 8, max_features: int | None = None
    ) -> None:
        self.url = libpq_url(url)
        self.max_features = max_features
        self.idle: queue.LifoQueue[PostgresWriter] = queue.LifoQueue(maxsize=idle)
        self.slots = threading.BoundedSemaphore(size)

    def new(self) -> PostgresWriter:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        return PostgresWriter(conn, max_features=self.max_features)

    def acquire(self) -> PostgresWriter:
        if not self.slots.acquire(timeout=self.WAIT_SECONDS):
            raise Busy
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        try:
            return self.new()
        except BaseException:
            self.slots.release()
            raise

    def release(self, writer: PostgresWriter, healthy: bool) -> None:
        self.slots.release()
        conn = writer.conn
        if not healthy or conn.closed or conn.info.transaction_status != 0:
            conn.close()
            return
        try:
            self.idle.put_nowait(writer)
        except queue.Full:
            conn.close()


class Lease:
    """A writer held for one request; ``renew`` swaps it for a fresh connection after an
    error that may have left its caches or session in doubt."""

    def __init__(self, pool: WriterPool) -> None:
        self.pool = pool
        self.writer = pool.acquire()

    def renew(self) -> None:
        self.writer.conn.close()
        self.writer = self.pool.new()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        self.pool.release(self.writer, healthy=kind is None)


def is_outage(exc: BaseException, conn: psycopg.Connection[Any]) -> bool:
    """True when ``exc`` says the database is unavailable (retry later), False when it refused
    what was sent (the records' fault: never retried).

    ``OperationalError`` covers both: a lost connection, a shutdown, too many connections, a
    full disk (classes 08, 57, 53) are outages; program limits (class 54: an index row too
    large...) on a live connection are the data's."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = getattr(exc, "sqlstate", None) or ""
    return conn.closed or conn.broken or not state.startswith("54")


_POOL_LOCK = threading.Lock()


def pool_of(request: Request) -> WriterPool:
    state = request.app.state
    pool = getattr(state, "ingest_pool", None)
    if pool is None:
        with _POOL_LOCK:
            pool = getattr(state, "ingest_pool", None)
            if pool is None:
                from monitor.settings import get_settings

                pool = WriterPool(
                    state.engine.url.render_as_string(hide_password=False),
                    max_features=get_settings().max_features_per_model,
                )
                state.ingest_pool = pool
    return pool
