"""``monitor worker``: tick the window jobs (any number of replicas), or run until idle.

Exit codes for cron and health checks: ``--until-idle`` exits 1 when a run it attempted is left
failed or a step of a tick raised; ``--status`` exits 1 while a window run is failed; else 0.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import sqlalchemy as sa

    from monitor.jobs.tick import TickContext


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
    help="Print job health (lag, failures, last success); exit 1 while a window run is failed.",
)
def worker(until_idle: bool, metrics_port: int | None, show_status: bool) -> None:
    """Compute window profiles, drift and quality; create partitions; drop old raw data.

    With --until-idle: process everything due, then exit; 1 if anything failed (for cron).
    """
    import logging
    import signal

    from monitor.jobs.tick import make_context
    from monitor.storage.bootstrap import prepare_database

    engine = prepare_database()
    if show_status:
        sys.exit(_print_status(engine))
    ctx = make_context(engine)
    if until_idle:
        sys.exit(_until_idle(ctx))
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


def _until_idle(ctx: TickContext) -> int:
    """Everything due, once; the exit code says whether it all succeeded."""
    import sqlalchemy as sa

    from monitor.jobs.health import failures_since
    from monitor.jobs.tick import run_until_idle

    with ctx.engine.connect() as conn:
        started = conn.execute(sa.text("SELECT now()")).scalar_one()
    totals: dict[str, int] = {}
    failed_steps: set[str] = set()
    run_until_idle(ctx, totals=totals, failed_steps=failed_steps)
    click.echo(
        f"worker {ctx.owner}: {totals.get('compute', 0)} windows processed,"
        f" {totals.get('performance', 0)} performance windows, nothing left due"
    )
    with ctx.engine.connect() as conn:
        failed = failures_since(conn, started)
    for f in failed:
        click.echo(
            f"failed: {f['job']} {f['model']} {f['window_start']:%Y-%m-%d %H:%M}"
            f" attempt {f['attempt']}: {f['error']}",
            err=True,
        )
    if failed_steps:
        click.echo(f"steps that raised (see the log): {', '.join(sorted(failed_steps))}", err=True)
    return 1 if failed or failed_steps else 0


def _print_status(engine: sa.Engine) -> int:
    from monitor.jobs.health import job_health

    with engine.connect() as conn:
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
    return 1 if h["failed"] else 0
