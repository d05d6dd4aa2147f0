"""An embedded, real PostgreSQL for the demo, the service and the tests when no URL is configured.

It uses ``pgserver`` (Postgres 16 binaries in a wheel): ``initdb`` on first use under
``MONITOR_HOME/pgdata``, a Unix socket only (no TCP port), and a clean stop at process exit.
As root, pgserver runs Postgres as a ``pgserver`` system user it creates with ``useradd``.

pgserver stops the server from an ``atexit`` hook, and a process killed by a signal runs none:
``monitor demo`` or ``monitor serve`` stopped with SIGTERM (systemd, Docker, ``kill``) left its
Postgres running. :func:`exit_on_signals_after` turns SIGTERM and SIGHUP into ``SystemExit`` in
a process that starts an embedded server, so ``finally`` blocks and the hook run (uvicorn restores
this handler after its graceful shutdown and re-raises the signal to it). A signal that arrives
while the server is starting (``initdb`` and ``pg_ctl start`` take seconds) is held until the
start has finished and then exits the same way: killed mid-start, the process would leave behind
a Postgres that nobody stops.
"""

from __future__ import annotations

import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.errors import DatabaseError

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}


def start_embedded(pgdata: Path) -> str:
    """Start (or join) the embedded server in ``pgdata`` and return a SQLAlchemy URL for it.

    Several processes may share one data directory: pgserver counts its users and only the last
    one to exit stops the server.
    """
    pgdata = pgdata.expanduser().resolve()
    if pgdata not in _servers:
        pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR at import
            try:
                import pgserver
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise DatabaseError(
                    "no MONITOR_DATABASE_URL is set and the embedded Postgres is not installed: "
                    "pip install 'monitor[server]' or set MONITOR_DATABASE_URL"
                ) from exc
            with exit_on_signals_after():
                try:
                    forget_dead_handles(pgdata)
                    server = pgserver.get_server(pgdata, cleanup_mode="stop")
                except Exception as exc:
                    raise DatabaseError(
                        f"could not start the embedded Postgres in {pgdata}: {exc}"
                    ) from exc
                _servers[pgdata] = server
        log.info("embedded Postgres running in %s", pgdata)
    return to_sqlalchemy_url(_servers[pgdata].get_uri())


HANDLES = ".handle_pids.json"
"""pgserver's list of the processes using a data directory; the last one out stops Postgres."""


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop processes that no longer exist from pgserver's handle list (returns them).

    A process killed before its exit hook ran (SIGKILL, or SIGTERM before this module handled
    it) stays listed forever, and then no later process is ever "the last one": each leaves
    Postgres running. Done under pgserver's own inter-process lock.
    """
    import psutil
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    handles = DiskList(pgdata / HANDLES)
    with PostgresServer._lock:
        pids = handles.get()
        dead = [pid for pid in pids if not alive(pid)]
        if dead:
            handles.put([pid for pid in pids if pid not in dead])
    if dead:
        log.info("embedded Postgres in %s: forgot exited processes %s", pgdata, dead)
    return dead


EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def exit_on_signals_after() -> Iterator[None]:
    """Exit through ``SystemExit`` (running ``atexit``) on SIGTERM/SIGHUP once the block is
    over, where their default action would kill the process (a handler someone else installed
    is left alone); one that arrives during the block is held, and exits the process as soon as
    the block has finished.

    A recording handler rather than a blocked signal mask: the mask would be inherited by the
    ``initdb`` and ``pg_ctl`` processes the block starts.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def hold(signum: int, frame: object) -> None:
        arrived.append(signum)

    held = [sig for sig in EXIT_SIGNALS if signal.getsignal(sig) is signal.SIG_DFL]
    for sig in held:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig in held:
            signal.signal(sig, _exit)
        if arrived:
            log.warning(
                "signal %d arrived while the embedded Postgres started: exiting", arrived[0]
            )
            _exit(arrived[0], None)


def stop_embedded(pgdata: Path) -> None:
    """Release this process's handle on the embedded server (stops it if nobody else uses it)."""
    server = _servers.pop(pgdata.expanduser().resolve(), None)
    if server is not None:
        server.cleanup()


def to_sqlalchemy_url(url: str) -> str:
    """``postgresql://...`` -> ``postgresql+psycopg://...`` (psycopg 3 driver)."""
    if url.startswith("postgresql+"):
        return url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
