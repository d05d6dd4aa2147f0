"""``monitor demo``: the whole product on an embedded database: a model in trouble (an incident
open now, another resolved days ago) and a healthy one."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to serve on.")
@click.option("--reseed", is_flag=True, help="Delete the demo models' data and seed them again.")
@click.option("--no-serve", is_flag=True, help="Seed and print the login link, then exit.")
def demo(host: str, port: int, reseed: bool, no_serve: bool) -> None:
    """Start the service on an embedded database with a model in trouble and a healthy one."""
    import time
    from datetime import timedelta

    from monitor.cli.login_link import login_url
    from monitor.demo import jobs as demo_jobs
    from monitor.demo import seed as demo_seed
    from monitor.demo.data import (
        HEALTHY_MODEL,
        HEALTHY_VERSION,
        MODEL,
        VERSION_1,
        generate,
        generate_healthy,
    )
    from monitor.settings import get_settings
    from monitor.storage.bootstrap import prepare_database
    from monitor.storage.engine import session_scope
    from monitor.storage.login_codes import create_login_code
    from monitor.storage.tokens import create_token

    settings = get_settings()
    started = time.monotonic()
    engine = prepare_database()
    home = settings.home / "demo"
    if reseed:
        demo_seed.remove(engine)
    if demo_seed.is_seeded(engine):
        click.echo("demo models already seeded (use --reseed to start over)")
    else:
        click.echo(
            f"seeding {MODEL!r} (an incident resolved days ago, another one open now) and"
            f" {HEALTHY_MODEL!r} (healthy): two weeks of hourly traffic"
        )
        counts = demo_seed.seed(engine, generate(), home)
        healthy = demo_seed.seed(engine, generate_healthy(), home)
        click.echo(
            f"  {counts['predictions'] + healthy['predictions']:,} predictions and"
            f" {counts['actuals'] + healthy['actuals']:,} late labels written in"
            f" {time.monotonic() - started:.1f} s"
        )
    for name, version in ((MODEL, VERSION_1), (HEALTHY_MODEL, HEALTHY_VERSION)):
        if not demo_jobs.has_baseline(engine, name):
            click.echo(f"registering the training baseline of {name!r} (version {version})")
            demo_jobs.register_demo_baseline(engine, home, model=name, version=version)
    from monitor.alerts.demo import setup_demo_alerts

    alerts = setup_demo_alerts(engine, MODEL, home)
    demo_jobs.default_rules(engine, HEALTHY_MODEL)
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
    state = alerts.state(engine)
    click.echo(
        f"  alerts: {state['firing']} firing, {state['cleared_to_tell']} episodes of the history"
        f" cleared (told firing, then resolved), {state['resolved']} resolved;"
        f" {state['rule_errors']} rules in error"
    )
    click.echo(
        f"  {len(events)} alert notifications reached the demo webhook so far ({firing} firing,"
        f" {len(events) - firing} resolved; {verified} with verified signatures); the rest go"
        " out as the worker ticks (group_wait 30 s, group_interval 5 min)"
    )
    with session_scope(engine) as session:
        token, info = create_token(
            session, f"demo admin {time.strftime('%Y-%m-%d %H:%M:%S')}", "admin"
        )
        code = create_login_code(
            session, info.id, timedelta(seconds=settings.login_code_ttl_seconds)
        )
    base = f"http://{host}:{port}"
    click.echo(f"dashboard: {base}/  (the model in trouble: {base}/models/{MODEL})")
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
    from monitor.demo.live import start_live_traffic
    from monitor.web.app import create_app

    scheduler = demo_jobs.start_background_worker(engine)
    _, stop_labels = start_label_feeder(engine)
    traffic, stop_traffic = start_live_traffic(engine)
    click.echo(f"late labels: landing {SPEED / 1440:.0f} day(s) of them every minute")
    click.echo("live traffic: both models keep logging through the SDK (the incident goes on)")
    try:
        uvicorn.run(create_app(engine), host=host, port=port, **UVICORN_OPTIONS)
    finally:
        stop_labels.set()
        stop_traffic.set()
        traffic.close()
        scheduler.shutdown(wait=False)
