"""``monitor backfill``: compute (or with --rerun recompute) a model's windows over a range.

Exits 1 when a window of the range is left failed or still open (held by another worker past
the wait), so a script that backfills knows whether the range now has results.
"""

from __future__ import annotations

import sys
from datetime import datetime

import click


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@click.command()
@click.argument("model")
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="First instant (UTC), e.g. 2026-11-01 or 2026-11-01T06:00.",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="End instant (UTC, exclusive).",
)
@click.option("--rerun", is_flag=True, help="Recompute windows that were already computed.")
def backfill(model: str, start: datetime, end: datetime, rerun: bool) -> None:
    """Compute MODEL's windows from --from to --to (idempotent; safe beside workers)."""
    from monitor.jobs.backfill import backfill as run_backfill
    from monitor.jobs.tick import make_context
    from monitor.storage.bootstrap import prepare_database

    ctx = make_context(prepare_database())
    with click.progressbar(length=1, label=f"backfill {model}", show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, done)
            bar.update(done - bar.pos)

        report = run_backfill(ctx, model, _utc(start), _utc(end), rerun=rerun, on_window=progress)
    click.echo(f"{report.computed} windows computed here, {report.remaining} still open")
    for f in report.failed:
        click.echo(
            f"failed: {model} {f['window_start']:%Y-%m-%d %H:%M} attempt {f['attempt']}:"
            f" {f['error']}",
            err=True,
        )
    if report.failed or report.remaining:
        click.echo(
            f"{len(report.failed)} windows failed, {report.remaining} still open:"
            " see monitor worker --status or the runs page",
            err=True,
        )
        sys.exit(1)
