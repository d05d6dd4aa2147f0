"""``monitor demo``: the whole product on an embedded database, with a model whose data drifts."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option("--reseed", is_flag=True, help="Delete the demo model's data and seed it again.")
@click.option("--no-serve", is_flag=True, help="Seed and print the login link, then exit.")
def demo(host: str, port: int, reseed: bool, no_serve: bool) -> None:
    """Start the service on an embedded database with a demo model."""
    import time
    from datetime import timedelta

    from monitor.cli.login_link import login_url
    from monitor.demo import jobs as demo_jobs
    from monitor.demo import seed as demo_seed
    from monitor.demo.data import MODEL, generate
    from monitor.settings import get_settings
    from monitor.storage.bootstrap import prepare_database
    from monitor.storage.engine import session_scope
    from monitor.storage.login_codes import create_login_code
    from monitor.storage.tokens import create_token

    settings = get_settings()
    started = time.monotonic()
    engine = prepare_database()
    if reseed:
        demo_seed.remove(engine)
    if demo_seed.is_seeded(engine):
        click.echo(f"demo model {MODEL!r} already seeded (use --reseed to start over)")
    else:
        click.echo(f"seeding demo model {MODEL!r}: 50k-row baseline, two weeks of hourly traffic")
        counts = demo_seed.seed(engine, generate(), settings.home / "demo")
        click.echo(
            f"  {counts['predictions']:,} predictions and {counts['actuals']:,} late labels"
            f" written in {time.monotonic() - started:.1f} s"
        )
    if not demo_jobs.has_baseline(engine):
        click.echo("registering the training baseline (version 2026.11.1)")
        demo_jobs.register_demo_baseline(engine, settings.home / "demo")
    from monitor.alerts.demo import setup_demo_alerts

    alerts = setup_demo_alerts(engine, MODEL, settings.home / "demo")
    click.echo(f"alerts:    default rules; webhook receiver {alerts.url}")
    click.echo(f"           signed events it receives are logged to {alerts.log_path}")
    click.echo("computing drift, quality, volume, performance and alerts for every window...")
    window_started = time.monotonic()
    computed = demo_jobs.compute_due_windows(engine)
    click.echo(f"  {computed} windows computed in {time.monotonic() - window_started:.1f} s")
    events = alerts.received()
    kinds = [str(e["event"].get("type", "")) for e in events if isinstance(e["event"], dict)]
    firing = sum(1 for kind in kinds if kind.endswith("firing"))
    verified = sum(1 for e in events if e["verified"])
    click.echo(
        f"  {len(events)} alert notifications reached the demo webhook ({firing} firing, "
        f"{len(events) - firing} resolved; {verified} with verified signatures)"
    )
    with session_scope(engine) as session:
        token, info = create_token(
            session, f"demo admin {time.strftime('%Y-%m-%d %H:%M:%S')}", "admin"
        )
        code = create_login_code(
            session, info.id, timedelta(seconds=settings.login_code_ttl_seconds)
        )
    base = f"http://{host}:{port}"
    click.echo(f"dashboard: {base}/")
    click.echo(f"login:     {login_url(base, code)}")
    minutes = settings.login_code_ttl_seconds / 60
    click.echo(
        f"           (works once, within {minutes:g} minutes; `monitor login-link` prints another)"
    )
    click.echo(f"API token: {token}   (for scripts: Authorization: Bearer <token>)")
    if no_serve:
        return
    import uvicorn

    from monitor.cli.serve import UVICORN_OPTIONS
    from monitor.demo.labels import SPEED, start_label_feeder
    from monitor.web.app import create_app

    scheduler = demo_jobs.start_background_worker(engine)
    _, stop_labels = start_label_feeder(engine)
    click.echo(f"late labels: landing {SPEED / 1440:.0f} day(s) of them every minute")
    try:
        uvicorn.run(create_app(engine), host=host, port=port, **UVICORN_OPTIONS)
    finally:
        stop_labels.set()
        scheduler.shutdown(wait=False)
