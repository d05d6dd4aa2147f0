"""An embedded, real PostgreSQL for the demo, the service and the tests when no URL is configured.

It uses ``pgserver`` (Postgres 16 binaries in a wheel): ``initdb`` on first use under
``MONITOR_HOME/pgdata``, a Unix socket only (no TCP port), and a clean stop at process exit.
As root, pgserver runs Postgres as a ``pgserver`` system user it creates with ``useradd``.
"""

from __future__ import annotations

import logging
import warnings
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
            try:
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise DatabaseError(
                    f"could not start the embedded Postgres in {pgdata}: {exc}"
                ) from exc
        _servers[pgdata] = server
        log.info("embedded Postgres running in %s", pgdata)
    return to_sqlalchemy_url(_servers[pgdata].get_uri())


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
