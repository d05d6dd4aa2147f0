"""``monitor serve``: the web service (dashboard, API, collector)."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default=None, help="Interface to bind (default MONITOR_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default MONITOR_PORT, 8000).")
def serve(host: str | None, port: int | None) -> None:
    """Run the web dashboard, JSON API and ingest collector."""
    import uvicorn

    from monitor.settings import get_settings
    from monitor.storage.bootstrap import prepare_database
    from monitor.web.app import create_app

    settings = get_settings()
    engine = prepare_database()
    app = create_app(engine)
    click.echo(f"monitor serving on http://{host or settings.host}:{port or settings.port}")
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="warning")
