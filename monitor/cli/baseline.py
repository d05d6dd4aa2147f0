"""``monitor baseline``: register, list, show and delete baselines; choose the reference mode."""

from __future__ import annotations

import click


def _names(values: tuple[str, ...]) -> list[str]:
    """Column lists may be repeated options or comma-separated."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


@click.group()
def baseline() -> None:
    """Register, list, show and delete baselines (the reference data of a model version)."""


@baseline.command("add")
@click.argument("model")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--version", "version", required=True, help="Model version the baseline is for.")
@click.option("--prediction", default=None, help="Column with the model's prediction.")
@click.option("--proba", default=None, help="Column with the positive class's probability.")
@click.option("--target", default=None, help="Column with the ground truth.")
@click.option("--categorical", multiple=True, help="Columns to treat as categorical.")
@click.option("--numerical", multiple=True, help="Columns to treat as numerical.")
@click.option("--ignore", multiple=True, help="Columns to leave out.")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None)
def add(
    model: str,
    file: str,
    version: str,
    prediction: str | None,
    proba: str | None,
    target: str | None,
    categorical: tuple[str, ...],
    numerical: tuple[str, ...],
    ignore: tuple[str, ...],
    task: str | None,
) -> None:
    """Register FILE (.csv or .parquet) as the baseline of MODEL at --version."""
    from pathlib import Path

    from monitor.jobs.baselines import read_table, register_baseline
    from monitor.storage.bootstrap import prepare_database

    engine = prepare_database()
    df = read_table(file)
    info = register_baseline(
        df,
        model=model,
        version=version,
        prediction=prediction,
        target=target,
        proba=proba,
        categorical=_names(categorical),
        numerical=_names(numerical),
        ignore=_names(ignore),
        task=task,
        source=Path(file).name,
        engine=engine,
    )
    kinds = ", ".join(
        f"{c.name} ({c.kind}{'' if c.role == 'feature' else ', ' + c.role})" for c in info.columns
    )
    click.echo(f"baseline of {model} {version}: {info.n_rows:,} rows; columns: {kinds}")
    if info.performance:
        click.echo(
            "performance: "
            + ", ".join(
                f"{k} {val:.4f}"
                for k, val in info.performance.items()
                if isinstance(val, int | float)  # "estimator" holds the CBPE/DLE fit
            )
        )


@baseline.command("list")
@click.argument("model", required=False)
def list_(model: str | None) -> None:
    """List baselines (of MODEL)."""
    from monitor.jobs.baselines import list_baselines
    from monitor.storage.bootstrap import prepare_database

    rows = list_baselines(prepare_database(), model)
    if not rows:
        click.echo("no baselines")
    for r in rows:
        mode = r["baseline_mode"] + (
            f" {r['rolling_baseline_days']}d" if r["baseline_mode"] == "rolling" else ""
        )
        click.echo(
            f"{r['model']}\t{r['version']}\t{r['n_rows']:,} rows\t{r['n_columns']} "
            f"columns\t{r['created_at']:%Y-%m-%d %H:%M}\treference: {mode}"
        )


@baseline.command("show")
@click.argument("model")
@click.option("--version", "version", default=None, help="Version (default: the latest).")
def show(model: str, version: str | None) -> None:
    """Show a baseline's columns, summary statistics and performance."""
    from monitor.jobs.baselines import show_baseline
    from monitor.storage.bootstrap import prepare_database

    b = show_baseline(prepare_database(), model, version)
    click.echo(
        f"{model} {b['version']}: {b['n_rows']:,} rows, task {b['task'] or '-'}, "
        f"source {b['source'] or '-'}, registered {b['created_at']:%Y-%m-%d %H:%M}"
    )
    for name, p in b["profiles"].items():
        stats = ", ".join(
            f"{k} {val:.4g}" if isinstance(val, float) else f"{k} {val}"
            for k, val in p.items()
            if k not in ("role", "kind")
        )
        click.echo(f"  {name} [{p['kind']}, {p['role']}]: {stats}")
    if b["performance"]:
        click.echo(
            "performance: "
            + ", ".join(
                f"{k} {val:.4f}"
                for k, val in b["performance"].items()
                if isinstance(val, int | float)
            )
        )


@baseline.command("delete")
@click.argument("model")
@click.option("--version", "version", required=True)
def delete(model: str, version: str) -> None:
    """Delete the baseline of MODEL at --version."""
    from monitor.jobs.baselines import delete_baseline
    from monitor.storage.bootstrap import prepare_database

    delete_baseline(prepare_database(), model, version)
    click.echo(f"deleted the baseline of {model} {version}")


@baseline.command("mode")
@click.argument("model")
@click.argument("mode", type=click.Choice(["training", "rolling"]))
@click.option("--days", type=int, default=None, help="Rolling window length in days.")
def mode(model: str, mode: str, days: int | None) -> None:
    """Compare MODEL's windows with its training baseline or the last --days of production."""
    from monitor.jobs.baselines import set_baseline_mode
    from monitor.storage.bootstrap import prepare_database

    set_baseline_mode(prepare_database(), model, mode, days)
    click.echo(f"{model}: reference is now {mode}" + (f" ({days} days)" if days else ""))
