"""A minimal webhook receiver for demos and ``monitor alerts test``: verifies Standard Webhooks
signatures with the ``standardwebhooks`` package, prints each event, answers 200 (401 on a bad
signature). Standard-library HTTP server: nothing to install, one request at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def make_handler(secret: str | None, echo: Callable[[str], None]) -> type[BaseHTTPRequestHandler]:
    verifier = Webhook(secret) if secret else None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(min(length, 5 * 1024 * 1024)).decode("utf-8", "replace")
            status, verdict = 200, "unsigned (no --secret given)"
            if verifier is not None:
                try:
                    verifier.verify(body, dict(self.headers.items()))
                    verdict = "signature verified"
                except WebhookVerificationError as exc:
                    status, verdict = 401, f"signature REJECTED: {exc}"
            echo(f"--- {self.headers.get('webhook-id', '-')} ({verdict})")
            try:
                echo(json.dumps(json.loads(body), indent=2, sort_keys=True))
            except ValueError:
                echo(body)
            answer = b"ok" if status == 200 else b"bad signature"
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:  # quiet access log
            return

    return Handler


def serve(
    host: str,
    port: int,
    secret: str | None,
    *,
    max_requests: int | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    server = HTTPServer((host, port), make_handler(secret, echo))
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
