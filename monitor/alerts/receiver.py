"""A minimal webhook receiver for demos and ``monitor alerts receiver``: verifies Standard
Webhooks signatures with the ``standardwebhooks`` package, hands each request to a callback,
answers 200 (401 on a bad signature). Standard-library HTTP server: nothing to install."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 5 * 1024 * 1024


@dataclass
class Received:
    received_at: str
    webhook_id: str | None
    verdict: str
    verified: bool
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def make_handler(
    secret: str | None, on_request: Callable[[Received], None]
) -> type[BaseHTTPRequestHandler]:
    verifier = Webhook(secret) if secret else None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, MAX_BODY)).decode("utf-8", "replace")
            status, verdict, verified = 200, "unsigned (no secret to verify with)", False
            if verifier is not None:
                try:
                    verifier.verify(body, dict(self.headers.items()))
                    verdict, verified = "signature verified", True
                except WebhookVerificationError as exc:
                    status, verdict = 401, f"signature REJECTED: {exc}"
            on_request(
                Received(
                    received_at=datetime.now(UTC).isoformat(),
                    webhook_id=self.headers.get("webhook-id"),
                    verdict=verdict,
                    verified=verified,
                    body=body,
                )
            )
            answer = b"ok" if status == 200 else b"bad signature"
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:  # quiet access log
            return

    return Handler


def printer(echo: Callable[[str], None]) -> Callable[[Received], None]:
    def show(received: Received) -> None:
        echo(f"--- {received.webhook_id or '-'} ({received.verdict})")
        parsed = received.json()
        echo(json.dumps(parsed, indent=2, sort_keys=True) if parsed is not None else received.body)

    return show


def serve(
    host: str,
    port: int,
    secret: str | None,
    *,
    max_requests: int | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve in the foreground until Ctrl-C (or ``max_requests``), printing every event."""
    server = HTTPServer((host, port), make_handler(secret, printer(echo)))
    echo(f"listening on http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    try:
        if max_requests is None:
            server.serve_forever()
        else:
            for _ in range(max_requests):
                server.handle_request()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class BackgroundReceiver:
    """The receiver on a free port in a daemon thread (the demo runs one inside the service)."""

    def __init__(
        self,
        secret: str | None,
        on_request: Callable[[Received], None],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.server = ThreadingHTTPServer((host, port), make_handler(secret, on_request))
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_port}/demo-hook"
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="monitor-demo-receiver", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
