"""``monitor serve``: the web service (dashboard, API, collector).

Requests are served by ``--workers`` uvicorn processes (default ``MONITOR_WEB_WORKERS``,
min(4, CPUs)). Route handlers spend their time in Python (templating, JSON) under one GIL per
process, so one process saturates a single core and queues concurrent dashboard users behind
each other; several processes use every core. Workers are stateless (each keeps its own view
cache keyed by the results version), so any worker can answer any request.
"""

from __future__ import annotations

import os
from typing import Any

import click

UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    # X-Forwarded-* are read by the app, from MONITOR_TRUSTED_PROXIES only (uvicorn's own
    # handling would believe any 127.0.0.1 peer, or every peer with FORWARDED_ALLOW_IPS=*)
    "proxy_headers": False,
    "server_header": False,
}


@click.command()
@click.option("--host", default=None, help="Interface to bind (default MONITOR_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default MONITOR_PORT, 8000).")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(1, 64),
    help="Server processes (default MONITOR_WEB_WORKERS, min(4, CPUs)).",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web dashboard, JSON API and ingest collector."""
    import uvicorn

    from monitor.settings import get_settings
    from monitor.storage.bootstrap import prepare_database

    settings = get_settings()
    engine = prepare_database()
    host, port = host or settings.host, port or settings.port
    workers = workers or settings.web_workers
    click.echo(f"monitor serving on http://{host}:{port} ({workers} worker processes)")
    if workers == 1:
        from monitor.web.app import create_app

        uvicorn.run(create_app(engine), host=host, port=port, **UVICORN_OPTIONS)
        return
    if settings.database_url is None:
        # the embedded server is already running: workers connect to it rather than start it
        os.environ["MONITOR_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    # each worker takes its share of per-server budgets (the wrong-credential throttle)
    os.environ["MONITOR_WEB_WORKERS"] = str(workers)
    engine.dispose()
    uvicorn.run(
        "monitor.web.app:app_from_settings",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **UVICORN_OPTIONS,
    )
