"""``monitor spark``: profile lake tables on Apache Spark into a model's windows (``[spark]``).

``monitor spark profile`` reads a Parquet/Delta/ORC/CSV/JSON path or a catalog table, profiles
every window on the executors and stores each as the window job would, printing one line per
window as it is stored. ``monitor spark baseline`` registers a baseline the same way. Exit codes:
0 done, 2 an error (a bad column, no database, no pyspark...), 3 no rows to profile (an empty
source or range: missing data is not success).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from monitor.errors import InputError, MonitorError

EXIT_NO_DATA = 3
FORMATS = ("parquet", "delta", "table", "orc", "csv", "json")
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def session(master: str | None, conf: tuple[str, ...], app: str) -> Any:
    """A SparkSession for the command (``--master``, ``--conf key=value``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise MonitorError("monitor spark needs pyspark: pip install 'monitor[spark]'") from exc
    # executors on this machine (local mode, a loopback cluster) run this interpreter, so they
    # import the same monitor; a remote cluster sets PYSPARK_PYTHON to its own environment
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    for item in conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--conf wants key=value, got {item!r}")
        builder = builder.config(key.strip(), value.strip())
    return builder.getOrCreate()


def read_source(spark: Any, source: str, fmt: str) -> Any:
    """The source as a DataFrame; a clear error when it cannot be read."""
    try:
        if fmt == "table":
            return spark.table(source)
        reader = spark.read.format(fmt)
        if fmt == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        return reader.load(source)
    except _spark_exceptions() as exc:
        message = first_line(exc)
        if fmt == "delta" and "delta" in message.lower():
            raise InputError(
                "reading Delta needs the delta-spark jars on the session, e.g. --conf "
                "spark.jars.packages=io.delta:delta-spark_2.13:<version> --conf "
                "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension --conf "
                "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog"
                f" ({message})"
            ) from exc
        raise InputError(f"cannot read {source!r} as {fmt}: {message}") from exc


@contextmanager
def spark_errors() -> Iterator[None]:
    """A Spark job that fails (a type it cannot read, a lost executor) as one clear line."""
    try:
        yield
    except _spark_exceptions() as exc:
        raise MonitorError(f"the Spark job failed: {first_line(exc)}") from exc


def _spark_exceptions() -> tuple[type[BaseException], ...]:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    return (PySparkException, Py4JJavaError)


def first_line(exc: BaseException) -> str:
    """The message of a Spark error without the JVM's stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _between(df: Any, column: str, start: datetime | None, end: datetime | None) -> Any:
    """Rows of ``[start, end)`` by the timestamp column (whatever its type)."""
    from pyspark.sql import functions as F

    from monitor.spark.frame import event_micros

    micros = event_micros(df, column)
    if start is not None:
        df = df.where(micros >= F.lit(int(start.timestamp() * 1_000_000)))
    if end is not None:
        df = df.where(micros < F.lit(int(end.timestamp() * 1_000_000)))
    return df


_source = click.option("--source", required=True, help="A path, or a table name (--format table).")
_format = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True
)
_master = click.option(
    "--master",
    default=None,
    help="Spark master: local[*], spark://HOST:PORT, yarn... (default: "
    "spark-submit's or local[*]).",
)
_conf = click.option("--conf", multiple=True, help="Spark setting key=value (repeatable).")
_version = click.option("--version", "version", required=True, help="Model version.")


@click.group()
def spark() -> None:
    """Profile lake tables and streams on Apache Spark (pip install 'monitor[spark]')."""


@spark.command()
@click.argument("model")
@_version
@_source
@_format
@click.option("--timestamp", default="timestamp", show_default=True, help="Event time column.")
@click.option("--prediction", default="prediction", show_default=True, help="Prediction column.")
@click.option("--no-prediction", is_flag=True, help="The source has no prediction column.")
@click.option("--proba", default=None, help="Positive class probability (or class->p map).")
@click.option("--id", "id_", default=None, help="Record id column (joins labels).")
@click.option("--segment", "segments", multiple=True, help="Segment column (repeatable).")
@click.option("--latency", default=None, help="Latency column, milliseconds.")
@click.option("--feature", "features", multiple=True, help="Only these feature columns.")
@click.option("--ignore", multiple=True, help="Columns that are not features.")
@click.option("--window", default=None, help="Window length (default the model's; 1h new).")
@click.option("--from", "start", type=click.DateTime(TIME_FORMATS), help="First instant (UTC).")
@click.option("--to", "end", type=click.DateTime(TIME_FORMATS), help="End instant (UTC).")
@click.option("--actuals", default=None, help="Labels to join (path or table, same --format).")
@click.option("--actual", default="actual", show_default=True, help="Label column.")
@click.option("--actual-id", default="id", show_default=True, help="Labels' record id column.")
@click.option("--actual-timestamp", default=None, help="Labels' time column.")
@click.option("--no-performance", is_flag=True, help="Skip the performance stage.")
@_master
@_conf
def profile(
    model: str,
    version: str,
    source: str,
    fmt: str,
    timestamp: str,
    prediction: str,
    no_prediction: bool,
    proba: str | None,
    id_: str | None,
    segments: tuple[str, ...],
    latency: str | None,
    features: tuple[str, ...],
    ignore: tuple[str, ...],
    window: str | None,
    start: datetime | None,
    end: datetime | None,
    actuals: str | None,
    actual: str,
    actual_id: str,
    actual_timestamp: str | None,
    no_performance: bool,
    master: str | None,
    conf: tuple[str, ...],
) -> None:
    """Profile MODEL's windows from --source on Spark and store them (idempotent per window)."""
    from monitor.spark.windows import WindowReport, profile_windows

    spark_session = session(master, conf, f"monitor spark profile {model}")
    df = _between(read_source(spark_session, source, fmt), timestamp, _utc(start), _utc(end))
    labels = read_source(spark_session, actuals, fmt) if actuals else None
    click.echo(f"profiling {source} into {model} {version} on {spark_session.sparkContext.master}")

    def progress(w: WindowReport) -> None:
        drifted = ", ".join(w.drifted) if w.drifted else "-"
        click.echo(
            f"  {w.window_start:%Y-%m-%d %H:%M}  {w.rows:>10,} rows  {w.segments} segments"
            f"  {w.results} results  drifted: {drifted}"
        )

    with spark_errors():
        report = profile_windows(
            df,
            model=model,
            version=version,
            timestamp=timestamp,
            prediction=None if no_prediction else prediction,
            proba=proba,
            id=id_,
            segments=list(segments),
            latency_ms=latency,
            features=list(features) or None,
            ignore=list(ignore),
            window=window,
            performance=not no_performance,
            actuals=labels,
            actual_id=actual_id,
            actual=actual,
            actual_timestamp=actual_timestamp,
            on_window=progress,
        )
    click.echo(
        f"{len(report.windows)} windows, {report.rows:,} rows in {report.seconds:.1f} s"
        + (f"; performance of {report.performance_windows} windows" if not no_performance else "")
    )
    if report.rows_without_time:
        click.echo(
            f"warning: {report.rows_without_time:,} rows without a timestamp were not counted",
            err=True,
        )
    if not report.windows:
        click.echo("no rows to profile", err=True)
        sys.exit(EXIT_NO_DATA)


@spark.command()
@click.argument("model")
@_version
@_source
@_format
@click.option("--prediction", default=None, help="Prediction column.")
@click.option("--proba", default=None, help="Positive class probability column.")
@click.option("--target", default=None, help="Ground truth column.")
@click.option("--categorical", multiple=True, help="Force a column categorical (repeatable).")
@click.option("--numerical", multiple=True, help="Force a column numerical (repeatable).")
@click.option("--ignore", multiple=True, help="Columns to leave out (repeatable).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None)
@_master
@_conf
def baseline(
    model: str,
    version: str,
    source: str,
    fmt: str,
    prediction: str | None,
    proba: str | None,
    target: str | None,
    categorical: tuple[str, ...],
    numerical: tuple[str, ...],
    ignore: tuple[str, ...],
    task: str | None,
    master: str | None,
    conf: tuple[str, ...],
) -> None:
    """Register MODEL's baseline at --version from --source, reduced on Spark."""
    from monitor.spark.baselines import register_baseline

    spark_session = session(master, conf, f"monitor spark baseline {model}")
    with spark_errors():
        info = register_baseline(
            read_source(spark_session, source, fmt),
            model=model,
            version=version,
            prediction=prediction,
            proba=proba,
            target=target,
            categorical=list(categorical),
            numerical=list(numerical),
            ignore=list(ignore),
            task=task,
            source=f"spark:{fmt}:{source}",
        )
    click.echo(f"baseline {model} {version}: {info.n_rows:,} rows, {len(info.columns)} columns")
