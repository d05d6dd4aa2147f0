"""``monitor drift REFERENCE CURRENT``: offline drift report between two files.

Reads CSV or Parquet, runs :func:`monitor.statistics.detect_drift` and prints a table, JSON or a
self-contained HTML report (plotly.js embedded from the installed package, no CDN). The exit
code makes it a CI gate: 0 when every column was judged and none drifted, 1 when at least one
drifted, 2 on bad input (with one clear line on stderr), 3 when none drifted but some column
could not be judged (missing from the current file, all null, too few values): missing data is
not health (``--allow-missing`` turns 3 into 0).
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path
from typing import Any

import click

from monitor.errors import InputError

PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
HTML_MAX_CATEGORIES = 30
"""Categories shown per chart in the HTML report (the rest are summed into "other")."""
HTML_BINS = 40
EXIT_NO_VERDICT = 3
"""Exit code when nothing drifted but some columns could not be judged."""


def read_table(path: str, label: str) -> Any:
    """Read a CSV or Parquet file into a DataFrame; InputError with a one-line reason."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError(f"{label} file not found: {path}")
    if not p.is_file():
        raise InputError(f"{label} path is not a file: {path}")
    suffix = p.suffix.lower()
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
        if suffix in PARQUET_SUFFIXES or magic == b"PAR1":
            return pd.read_parquet(p)
        if suffix in CSV_SUFFIXES or suffix == "":
            return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
    except Exception as exc:  # pandas/pyarrow raise many types; all mean "unreadable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read {label} file {path}: {reason}") from exc
    raise InputError(
        f"cannot read {label} file {path}: unsupported format {suffix!r} (use .csv or .parquet)"
    )


def _split_list(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def _parse_assignments(values: tuple[str, ...], what: str) -> tuple[str | None, dict[str, str]]:
    """``NAME`` (all columns) or ``COLUMN=NAME`` items -> (global, per column)."""
    everywhere: str | None = None
    per_column: dict[str, str] = {}
    for item in values:
        if "=" in item:
            col, _, val = item.rpartition("=")
            if not col or not val:
                raise InputError(f"bad {what} {item!r}; expected COLUMN=VALUE or VALUE")
            per_column[col] = val
        else:
            everywhere = item
    return everywhere, per_column


def _kinds(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``num=VALUE`` / ``cat=VALUE`` items."""
    everywhere, per_kind = _parse_assignments(values, what)
    bad = [k for k in per_kind if k not in ("num", "cat")] + ([everywhere] if everywhere else [])
    if bad:
        raise InputError(f"bad {what} {bad[0]!r}; expected num=VALUE or cat=VALUE")
    return per_kind


def _float(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise InputError(f"{what} must be a number, not {value!r}") from exc


def run_drift(
    reference: str,
    current: str,
    *,
    policy: str,
    columns: str | None,
    categorical: str | None,
    numerical: str | None,
    method: tuple[str, ...],
    threshold: tuple[str, ...],
    multivariate: bool = False,
    kind_method: tuple[str, ...] = (),
    kind_threshold: tuple[str, ...] = (),
) -> tuple[Any, Any, Any]:
    """Load both files and compute drift; returns (result, reference frame, current frame)."""
    from monitor.statistics import detect_drift

    ref = read_table(reference, "reference")
    cur = read_table(current, "current")
    common = [str(c) for c in ref.columns if c in set(cur.columns)]
    if not common:
        raise InputError("reference and current have no columns in common")
    ref_only = {str(c) for c in ref.columns} - set(common)
    ref.columns = [str(c) for c in ref.columns]
    cur.columns = [str(c) for c in cur.columns]
    cats, nums = _split_list(categorical), _split_list(numerical)
    both = set(cats) & set(nums)
    if both:
        raise InputError(
            f"columns listed as both categorical and numerical: {', '.join(sorted(both))}"
        )
    selected = _split_list(columns) or None
    for col in selected or []:
        if col not in common:
            raise InputError(f"column {col!r} is not in both files")
    for col in cats + nums:
        if col not in common and col not in ref_only:
            raise InputError(f"column {col!r} is not in the reference file")
    kinds: dict[str, Any] = {c: "cat" for c in cats} | {c: "num" for c in nums}
    m_all, m_cols = _parse_assignments(method, "--method")
    t_all, t_cols = _parse_assignments(threshold, "--threshold")
    k_methods = _kinds(kind_method, "--kind-method")
    k_thresholds = {
        k: _float(v, f"--kind-threshold for {k}")
        for k, v in _kinds(kind_threshold, "--kind-threshold").items()
    }
    result = detect_drift(
        ref,
        cur,
        policy=policy,
        columns=selected,
        column_kinds=kinds,
        method=m_all,
        methods=m_cols or None,
        kind_methods=k_methods or None,
        kind_thresholds=k_thresholds or None,
        threshold=None if t_all is None else _float(t_all, "--threshold"),
        thresholds={c: _float(v, f"--threshold for {c}") for c, v in t_cols.items()} or None,
    )
    if multivariate:
        from monitor.statistics.multivariate import multivariate_drift

        cols = [c.column for c in result.columns]
        result.multivariate = [r.to_dict() for r in multivariate_drift(ref, cur, columns=cols)]
    return result, ref, cur


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def render_table(result: Any) -> str:
    """Plain-text table of the column records plus a dataset summary line."""
    head = [
        "column",
        "kind",
        "method",
        "statistic",
        "p_value",
        "threshold",
        "effect",
        "effect_ci",
        "drifted",
        "n_ref",
        "n_cur",
    ]
    rows = [head]
    for c in result.columns:
        ci = f"[{_fmt(c.effect_ci[0], 3)}, {_fmt(c.effect_ci[1], 3)}]" if c.effect_ci else "-"
        verdict = "DRIFT" if c.drifted else ("n/a: " + c.status if c.status != "ok" else "no")
        rows.append(
            [
                c.column,
                c.kind,
                c.method,
                _fmt(c.statistic),
                _fmt(c.p_value),
                _fmt(c.threshold),
                _fmt(c.effect_size, 3),
                ci,
                verdict,
                str(c.n_reference),
                str(c.n_current),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"dataset ({result.policy} policy): {result.n_drifted} of {result.n_columns} "
        f"columns drifted (share {result.share:.3f}) -> "
        f"{'DRIFT' if result.drifted else 'no drift'}"
    )
    missing = [c for c in result.columns if c.status != "ok"]
    if missing:
        lines.append(
            f"{len(missing)} column(s) WITHOUT A VERDICT (not evidence of no drift): "
            + "; ".join(f"{c.column} ({c.status}: {c.message})" for c in missing)
        )
    for col, reason in result.skipped.items():
        lines.append(f"skipped {col}: {reason}")
    for mv in result.multivariate:
        top = ", ".join(f"{t['feature']} ({t['contribution']:.3g})" for t in mv["top_features"])
        verdict = "DRIFT" if mv["drifted"] else "no drift"
        lines.append(
            f"multivariate {mv['method']}: {_fmt(mv['statistic'])} (threshold "
            f"{_fmt(mv['threshold'])}) -> {verdict}; top features: {top or '-'}"
        )
    return "\n".join(lines)


def _column_figure(rec: Any, ref: Any, cur: Any) -> Any:
    import numpy as np
    import plotly.graph_objects as go

    from monitor.statistics.profiles import category_label

    fig = go.Figure()
    if rec.kind == "num":
        r = np.asarray(ref[rec.column].to_numpy(dtype=float, na_value=np.nan), dtype=float)
        c = np.asarray(cur[rec.column].to_numpy(dtype=float, na_value=np.nan), dtype=float)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        both = np.concatenate([r, c])
        edges = np.histogram_bin_edges(both, bins=HTML_BINS) if both.size else np.arange(2.0)
        mids = ((edges[:-1] + edges[1:]) / 2).tolist()
        for name, data in (("reference", r), ("current", c)):
            share = np.histogram(data, edges)[0] / max(data.size, 1)
            fig.add_trace(go.Bar(x=mids, y=share.tolist(), name=name, opacity=0.6))
        fig.update_layout(barmode="overlay", bargap=0)
    else:
        shares = []
        for frame in (ref, cur):
            counts = frame[rec.column].dropna().map(category_label).value_counts()
            shares.append(counts / max(int(counts.sum()), 1))
        top = (
            shares[0]
            .add(shares[1], fill_value=0)
            .sort_values(ascending=False)
            .index[:HTML_MAX_CATEGORIES]
            .tolist()
        )
        for name, s in zip(("reference", "current"), shares, strict=True):
            fig.add_trace(go.Bar(x=top, y=[float(s.get(k, 0.0)) for k in top], name=name))
        fig.update_layout(barmode="group", xaxis_type="category")
    verdict = "drifted" if rec.drifted else "no drift"
    fig.update_layout(
        title=f"{rec.column} - {rec.method}: {verdict}",
        height=320,
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        yaxis_title="share",
    )
    return fig


def render_html(result: Any, ref: Any, cur: Any) -> str:
    """Self-contained HTML: summary table and one reference-vs-current chart per column."""
    from plotly.offline import get_plotlyjs

    charts = [
        _column_figure(rec, ref, cur).to_html(full_html=False, include_plotlyjs=False)
        for rec in result.columns
        if rec.status == "ok"
    ]
    table = html.escape(render_table(result))
    missing = [c for c in result.columns if c.status != "ok"]
    warning = (
        f'<p class="no-verdict"><strong>{len(missing)} column(s) without a verdict</strong> '
        "(not evidence of no drift): "
        + html.escape("; ".join(f"{c.column} ({c.message})" for c in missing))
        + "</p>\n"
        if missing
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>monitor drift report'
        "</title>\n<style>body{font-family:sans-serif;margin:2em}pre{background:#f6f6f6;"
        "padding:1em;overflow-x:auto}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head><body>\n'
        f"<h1>Drift report</h1>\n<p>{result.n_drifted} of {result.n_columns} columns drifted "
        f"({result.policy} policy).</p>\n{warning}<pre>{table}</pre>\n"
        + "\n".join(f'<div class="chart">{c}</div>' for c in charts)
        + "\n</body></html>\n"
    )


@click.command("drift")
@click.argument("reference", metavar="REFERENCE")
@click.argument("current", metavar="CURRENT")
@click.option(
    "--policy",
    type=click.Choice(["default", "evidently"]),
    default="default",
    show_default=True,
    help="Decision policy: ours, or Evidently's defaults.",
)
@click.option("--columns", help="Comma-separated columns to compare (default: all common).")
@click.option("--categorical", help="Comma-separated columns to treat as categorical.")
@click.option("--numerical", help="Comma-separated columns to treat as numerical.")
@click.option(
    "--method", multiple=True, help="COLUMN=METHOD for one column or METHOD for all; repeatable."
)
@click.option(
    "--threshold",
    multiple=True,
    help="COLUMN=VALUE for one column or VALUE for all; repeatable. Under the "
    "default policy a p-value method's threshold is its FDR level.",
)
@click.option(
    "--kind-method",
    multiple=True,
    help="num=METHOD or cat=METHOD: method for a column kind; repeatable.",
)
@click.option(
    "--kind-threshold",
    multiple=True,
    help="num=VALUE or cat=VALUE: threshold for a column kind; repeatable.",
)
@click.option(
    "--multivariate",
    is_flag=True,
    help="Also run the domain-classifier and PCA-reconstruction detectors.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Exit 0 instead of 3 when nothing drifted but some columns had no verdict "
    "(missing, all null or too few values).",
)
def drift(
    reference: str,
    current: str,
    policy: str,
    columns: str | None,
    categorical: str | None,
    numerical: str | None,
    method: tuple[str, ...],
    threshold: tuple[str, ...],
    kind_method: tuple[str, ...],
    kind_threshold: tuple[str, ...],
    multivariate: bool,
    fmt: str,
    output: str | None,
    allow_missing: bool,
) -> None:
    """Compare CURRENT with REFERENCE (CSV or Parquet) column by column.

    Exit code: 0 when every column was judged and none drifted, 1 when some did (or a
    multivariate detector did, with --multivariate), 2 on bad input, 3 when none drifted
    but some columns had no verdict (missing, all null, too few values; --allow-missing
    makes that 0).
    """
    try:
        result, ref, cur = run_drift(
            reference,
            current,
            policy=policy,
            columns=columns,
            categorical=categorical,
            numerical=numerical,
            method=method,
            threshold=threshold,
            multivariate=multivariate,
            kind_method=kind_method,
            kind_threshold=kind_threshold,
        )
        if fmt == "json":
            text = json.dumps(result.to_dict(), indent=2, allow_nan=False)
        elif fmt == "html":
            text = render_html(result, ref, cur)
        else:
            text = render_table(result)
        if output:
            try:
                Path(output).write_text(
                    text + ("" if text.endswith("\n") else "\n"), encoding="utf-8"
                )
            except OSError as exc:
                raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
        else:
            click.echo(text)
    except InputError as exc:
        click.echo(f"monitor: error: {exc}", err=True)
        sys.exit(2)
    missing = result.without_verdict
    if output and fmt != "html":
        click.echo(f"{result.n_drifted} of {result.n_columns} columns drifted", err=True)
    if missing:
        click.echo(
            f"monitor: warning: {len(missing)} column(s) without a verdict: {', '.join(missing)}",
            err=True,
        )
    # sys.exit, not ctx.exit: `monitor`'s main() runs click with standalone_mode=False, where
    # ctx.exit only returns the code (and main() discards it); SystemExit reaches the shell.
    drifted = result.n_drifted or any(m["drifted"] for m in result.multivariate)
    sys.exit(1 if drifted else (EXIT_NO_VERDICT if missing and not allow_missing else 0))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(drift())
