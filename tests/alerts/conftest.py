"""Fixtures for the alerts tests: models, results rows (the jobs' contract), real receivers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.http import serve_app

T0 = (datetime.now(UTC) - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
HOUR = timedelta(hours=1)


@pytest.fixture()
def alerts_env(
    settings_env: None, clean_db: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    """Settings pointed at the test DB, 127.0.0.1 allowed as a target; the DB emptied after."""
    from monitor.settings import get_settings

    monkeypatch.setenv("MONITOR_WEBHOOK_ALLOW_PRIVATE", '["127.0.0.1"]')
    monkeypatch.setenv("MONITOR_BASE_URL", "http://monitor.test")
    get_settings.cache_clear()
    yield clean_db
    get_settings.cache_clear()


def make_model(engine: sa.Engine, name: str = "credit") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text("INSERT INTO models (name) VALUES (:n) RETURNING id"), {"n": name}
            ).scalar_one()
        )


def put_results(
    engine: sa.Engine, model_id: int, window: datetime, rows: list[dict[str, Any]]
) -> None:
    """Insert results rows for one window as the window jobs would (upsert on the natural key)."""
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO results (model_id, window_start, window_end, segment, family, "
                    "column_name, metric, value, threshold, drifted, status, n_reference, "
                    "n_current) "
                    "VALUES (:m, :ws, :we, :seg, :family, :col, :metric, :value, :threshold, "
                    ":drifted, :status, 1000, 500) "
                    "ON CONFLICT (model_id, window_start, segment, family, column_name, metric) "
                    "DO UPDATE SET value = EXCLUDED.value, drifted = EXCLUDED.drifted, "
                    "status = EXCLUDED.status"
                ),
                {
                    "m": model_id,
                    "ws": window,
                    "we": window + HOUR,
                    "seg": row.get("segment", ""),
                    "family": row["family"],
                    "col": row.get("column", ""),
                    "metric": row["metric"],
                    "value": row.get("value"),
                    "threshold": row.get("threshold"),
                    "drifted": row.get("drifted"),
                    "status": row.get("status", "ok"),
                },
            )


def drift_rows(columns: list[str], drifted: bool) -> list[dict[str, Any]]:
    return [
        {
            "family": "drift",
            "column": c,
            "metric": "wasserstein",
            "value": 0.35 if drifted else 0.02,
            "threshold": 0.1,
            "drifted": drifted,
        }
        for c in columns
    ]


def add_rule(engine: sa.Engine, model_id: int, raw: dict[str, Any]) -> None:
    from monitor.alerts.rules import RuleSpec, upsert_rule
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        upsert_rule(session, model_id, RuleSpec.model_validate(raw), source="api")


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that scripts its answers and verifies signatures."""

    url: str
    secret: str | None
    script: list[tuple[Any, ...]]
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if 200 <= r["answered"] < 300]


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified: Any = None
        error = None
        if receiver.secret:
            try:
                verified = Webhook(receiver.secret).verify(body, headers)
            except WebhookVerificationError as exc:
                error = str(exc)
        with receiver.lock:
            step = receiver.script.pop(0) if receiver.script else (200, {})
        status, extra = step[0], step[1]
        if len(step) > 2:  # a slow receiver
            time.sleep(step[2])
        with receiver.lock:
            receiver.requests.append(
                {
                    "path": self.path.lstrip("/"),
                    "headers": headers,
                    "body": body,
                    "json": json.loads(body),
                    "verified": verified,
                    "verify_error": error,
                    "answered": 401 if error else status,
                }
            )
        if error:
            status, extra = 401, {}
        answer = (b"ok" if status < 300 else b"nope") if not error else b"bad signature"
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture()
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    """Real HTTP receivers on 127.0.0.1 (standard-library server: starts and stops in
    milliseconds), each with a script of answers: (status, headers[, seconds to wait])."""
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def make(secret: str | None = None, script: list[tuple[Any, ...]] | None = None) -> Receiver:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
        server.daemon_threads = True
        receiver = Receiver(
            url=f"http://127.0.0.1:{server.server_address[1]}/hook",
            secret=secret,
            script=list(script or []),
        )
        server.receiver = receiver  # type: ignore[attr-defined]
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        return receiver

    yield make
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def add_webhook(
    engine: sa.Engine, name: str, receiver: Receiver, *, is_default: bool = False, **options: Any
) -> str:
    """Register ``receiver`` as a webhook channel; stores the channel's secret on the receiver."""
    from monitor.alerts.channel_store import add_channel
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        _, secret = add_channel(
            session, name, "webhook", receiver.url, options=options, is_default=is_default
        )
    receiver.secret = secret
    return str(secret)


@dataclass
class Site:
    """The real app on 127.0.0.1 with an admin token."""

    base: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def app_base(engine: sa.Engine) -> Iterator[str]:
    """The real app on 127.0.0.1, one per module (each test empties the database after)."""
    from monitor.web.app import create_app

    with serve_app(create_app(engine)) as base:
        yield base


@pytest.fixture()
def site(app_base: str, alerts_env: sa.Engine) -> Site:
    from monitor.storage.engine import session_scope
    from monitor.storage.tokens import create_token

    with session_scope(alerts_env) as session:
        token, _ = create_token(session, "alerts-admin", "admin")
    return Site(app_base, token)


def add_channel(
    engine: sa.Engine, name: str, url: str = "http://127.0.0.1:9/hook", **kw: Any
) -> None:
    from monitor.alerts.channel_store import add_channel as add
    from monitor.storage.engine import session_scope

    with session_scope(engine) as session:
        add(session, name, "webhook", url, **kw)


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], family: int) -> None:
        self.address_family = family
        self.requests: list[dict[str, Any]] = []
        super().__init__(address, _RecordingHandler)


class _RecordingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        self.server.requests.append(  # type: ignore[attr-defined]
            {"host": self.headers.get("host"), "path": self.path, "body": body}
        )
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def recording_server(host: str, port: int = 0) -> Iterator[_Recorder]:
    """A plain HTTP server on ``host`` (IPv4 or IPv6) that records POSTs and answers 200."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _Recorder((host, port), family)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
