"""A deadline for blocking database I/O: a sink that stops answering must not stall the worker.

libpq has timeouts for connecting (``connect_timeout``) and for unacknowledged data
(``tcp_user_timeout``), but none for an answer that never comes: a server stuck on a lock, a
proxy with no backend, a network that drops replies. psycopg's blocking calls then wait
forever, and every record logged meanwhile waits behind them (then overflows the queue).

:class:`Watchdog` guards one operation at a time: if it is still running at its deadline, a
helper thread shuts the guarded connections' sockets down (``shutdown(2)``, which wakes the
blocked ``recv``/``send``); psycopg then raises ``OperationalError``, which the exporter treats
as an outage: the batch is spooled and retried. The helper thread starts with the first guard
and sleeps on a condition; a forked child's exporter makes a new watchdog.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence


class Watchdog:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._fds: Callable[[], Sequence[int]] = tuple
        self._thread: threading.Thread | None = None
        self.tripped = False  # the last guarded operation was cut at its deadline

    @contextlib.contextmanager
    def guard(self, fds: Callable[[], Sequence[int]], seconds: float) -> Iterator[None]:
        """Shut the sockets ``fds()`` names down if the block has not finished after
        ``seconds`` (asked at the deadline: connections opened meanwhile count too)."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="monitor-sdk-watchdog", daemon=True
                )
                self._thread.start()
            self.tripped = False
            self._fds = fds
            self._deadline = self.clock() + seconds
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._deadline = None
                self._fds = tuple

    @contextlib.contextmanager
    def suspended(self, seconds: float) -> Iterator[None]:
        """Inside a guarded block, work that is not the database's (reading the caller's next
        rows while a commit finishes): no deadline meanwhile, ``seconds`` again after."""
        with self._cond:
            active = self._deadline is not None
            self._deadline = None
        try:
            yield
        finally:
            if active:
                with self._cond:
                    if not self.tripped:
                        self._deadline = self.clock() + seconds
                        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._deadline is None:
                    self._cond.wait()
                remaining = self._deadline - self.clock()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                # Under the lock: the guarded block cannot end (and its owner close and reuse
                # the descriptors) while they are shut down.
                self._deadline = None
                self.tripped = True
                with contextlib.suppress(Exception):
                    for fd in self._fds():
                        _shutdown(fd)


def _shutdown(fd: int) -> None:
    """Shut a socket down through a duplicate of its descriptor (the owner still closes it)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
