"""``monitor worker``: tick the window jobs (any number of replicas), or run until idle."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--until-idle", is_flag=True, help="Process everything due, then exit (for cron and tests)."
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve job health as Prometheus metrics on this port.",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Print job health (lag, failures, last success) and exit.",
)
def worker(until_idle: bool, metrics_port: int | None, show_status: bool) -> None:
    """Compute window profiles, drift and quality; create partitions; drop old raw data."""
    import logging
    import signal

    from monitor.jobs.tick import make_context, run_until_idle
    from monitor.storage.bootstrap import prepare_database

    engine = prepare_database()
    if show_status:
        _print_status(engine)
        return
    ctx = make_context(engine)
    if until_idle:
        totals: dict[str, int] = {}
        run_until_idle(ctx, totals=totals)
        click.echo(
            f"worker {ctx.owner}: {totals.get('compute', 0)} windows processed,"
            f" {totals.get('performance', 0)} performance windows, nothing left due"
        )
        return
    if metrics_port is not None:
        from prometheus_client import REGISTRY, start_http_server

        from monitor.jobs.health import HealthCollector

        REGISTRY.register(HealthCollector(engine))
        start_http_server(metrics_port, addr=ctx.settings.host)
    from monitor.jobs.scheduler import make_scheduler

    scheduler = make_scheduler(ctx, background=False)

    def stop(signum: int, frame: object) -> None:
        logging.getLogger(__name__).info("signal %d: stopping after the current window", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"worker {ctx.owner} ticking every {ctx.settings.tick_seconds} s")
    scheduler.start()


def _print_status(engine: object) -> None:
    from monitor.jobs.health import job_health

    with engine.connect() as conn:  # type: ignore[attr-defined]
        h = job_health(conn)
    click.echo(f"lag of the oldest due window: {h['lag_seconds']:.0f} s")
    click.echo(f"last success: {h['last_success'] or 'never'}")
    click.echo(
        "runs: "
        + ", ".join(
            f"{s} {h[s]}" for s in ("pending", "stale", "running", "failed", "skipped", "succeeded")
        )
    )
    for f in h["failures"]:
        click.echo(
            f"failed: {f['model']} {f['window_start']:%Y-%m-%d %H:%M} "
            f"attempt {f['attempt']}: {f['error']}"
        )
