"""The ``monitor`` command.

Each command lives in its own module and is imported only when it runs, so ``monitor --help``
stays fast and a command's heavy imports (scipy, fastapi, evidently) cost only that command.
Add a command: one entry in ``COMMANDS`` (name -> module:attribute, one-line help).

Errors: a :class:`monitor.errors.MonitorError` (or a click usage error) prints one clear line
and exits non-zero; tracebacks are shown only with ``--debug``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

try:
    import click
except ImportError:  # pragma: no cover - the light SDK install has no CLI
    click = None  # type: ignore[assignment]

COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("monitor.cli.db:db", "Migrate or check the database schema."),
    "serve": ("monitor.cli.serve:serve", "Run the web dashboard, JSON API and ingest collector."),
    "demo": (
        "monitor.cli.demo:demo",
        "Start the service on an embedded database with a demo model.",
    ),
    "token": ("monitor.cli.token:token", "Create, list or revoke API tokens."),
    "login-link": (
        "monitor.cli.login_link:login_link",
        "Print a one-time browser login link (10 minutes, single use).",
    ),
    "alerts": ("monitor.cli.alerts:alerts", "Alert rules, alerts, silences and deliveries."),
    "channel": ("monitor.cli.channel:channel", "Add, list or remove notification channels."),
    "worker": ("monitor.cli.worker:worker", "Run the scheduled window jobs (or --until-idle)."),
    "baseline": ("monitor.cli.baseline:baseline", "Register, list, show or delete baselines."),
    "backfill": ("monitor.cli.backfill:backfill", "Compute a model's windows over a date range."),
    "drift": (
        "monitor.cli.drift:drift",
        "Compare two CSV/Parquet files for drift (CI gate: exit 1).",
    ),
    "spark": (
        "monitor.cli.spark:spark",
        "Profile lake tables on Apache Spark into windows (monitor[spark]).",
    ),
}


def _load(spec: str) -> Any:
    module, attr = spec.split(":")
    return getattr(importlib.import_module(module), attr)


if click is not None:

    class LazyGroup(click.Group):
        """A click group whose commands are imported on first use."""

        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            if cmd_name not in COMMANDS:
                return None
            return _load(COMMANDS[cmd_name][0])

        def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
    @click.option("-v", "--verbose", is_flag=True, help="Show informational logs.")
    @click.pass_context
    def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
        """monitor: drift, data quality, performance and alerts for ML models in production."""
        import logging

        level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI and turn our errors into one line and an exit code."""
    if click is None:
        print(
            "monitor: the command line needs the server extra: pip install 'monitor[server]'",
            file=sys.stderr,
        )
        return 2
    from monitor.errors import MonitorError

    args = sys.argv[1:] if argv is None else argv
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=args, prog_name="monitor", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        print("monitor: aborted", file=sys.stderr)
        return 130
    except MonitorError as exc:
        if "--debug" in args:
            raise
        print(f"monitor: error: {exc}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
