"""A disposable Postgres (pgserver's bundled binaries) on a TCP port, that a test may kill.

``stop("immediate")`` is a crash as far as Postgres knows (no checkpoint, recovery from WAL on
the next start); ``start()`` brings it back on the same port. As root, Postgres runs as the
unprivileged ``pgserver`` system user, which pgserver itself uses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

from tests.http import free_port


def _bin(name: str) -> str:
    """pgserver's bundled binaries (found without importing pgserver, which warns at import)."""
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.submodule_search_locations
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


class KillablePostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="monitor-killable-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
            entry = pwd.getpwnam(self.user)
            os.chmod(self.root, 0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run([_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-N"])
        self.start()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        subprocess.run(
            args,
            check=True,
            user=self.user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off -c max_connections=50"
        self._run(
            [_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts,
             "-w", "-t", "30", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run([_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"])

    def migrate(self) -> None:
        from monitor.storage import migrate

        engine = sa.create_engine(
            self.dsn.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool
        )
        migrate.upgrade(engine)
        engine.dispose()

    def count(
        self, sql: str = "SELECT count(*), count(DISTINCT record_id) FROM predictions"
    ) -> tuple:
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=3) as conn:
                    row = conn.execute(sql).fetchone()
                    assert row is not None
                    return tuple(row)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
