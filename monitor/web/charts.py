"""Plotly figure specs as plain dicts: the server sends JSON, the browser draws with plotly.js.

Built as dicts rather than ``plotly.graph_objects`` because validation there costs milliseconds
per trace and the pages have a latency budget; the specs use only long-stable plotly attributes.
Names are HTML-escaped because plotly renders a small HTML subset inside SVG labels (``<b>``,
``<br>``): a feature named ``<b>x</b>`` must show its name, not bold text.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

SCORE_MAX = 3.0
NOT_FLAGGED_MAX = 0.95
COLORSCALE = [
    [0.0, "#f7fbff"],
    [0.2, "#c6dbef"],
    [0.3333, "#fdd49e"],
    [0.5, "#fc8d59"],
    [1.0, "#b30000"],
]  # score 1 (the drift threshold) sits at 1/3 of the bar: white-blue below, orange-red above
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]


def esc(text: Any) -> str:
    return html.escape(str(text), quote=False)


def _x(times: list[Any]) -> list[Any]:
    """UTC ISO strings without their offset: plotly.js has no time zones and shows them as is."""
    return [t[:19].replace("T", " ") if isinstance(t, str) else t for t in times]


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": esc(title), "x": 0.01, "font": {"size": 14}},
        "margin": {"l": 60, "r": 20, "t": 36, "b": 40},
        "height": 280,
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


TIME_AXIS = {
    "type": "date",
    "nticks": 7,  # plotly's own choice can be one weekly tick on a narrow two-week chart
    "title": {"text": "window start (UTC)", "font": {"size": 11}},
}
P_FLOOR = 1e-16
"""p-values below this are drawn at it and labelled "< 1e-16": a double's p of 0 (or 1e-300)
only says "far beyond any threshold", and a log axis cannot draw 0."""


def _seconds(t: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(t)).timestamp()
    except ValueError:
        return None


def gapped(t: list[Any], step: int | None, *columns: list[Any]) -> tuple[list[Any], ...]:
    """``t`` and ``columns`` with a null point inserted wherever consecutive points are more
    than a step apart, so a line breaks at missing windows instead of drawing a diagonal
    across them (plotly joins consecutive points whatever lies between)."""
    if not step or len(t) < 2:
        return (t, *columns)
    out_t: list[Any] = [t[0]]
    outs: list[list[Any]] = [[c[0]] for c in columns]
    prev = _seconds(t[0])
    for k in range(1, len(t)):
        now = _seconds(t[k])
        if prev is not None and now is not None and now - prev > 1.5 * step:
            out_t.append(None)
            for o in outs:
                o.append(None)
        out_t.append(t[k])
        for o, c in zip(outs, columns, strict=True):
            o.append(c[k])
        prev = now
    return (out_t, *outs)


def line_mode(ys: list[Any]) -> str:
    """``markers`` when most points have no neighbour to join (a sparse series drawn as lines
    shows long diagonals that were never measured), ``lines+markers`` for a short series,
    else ``lines``. ``ys`` has nulls at gaps (see :func:`gapped`)."""
    present = [k for k, y in enumerate(ys) if y is not None]
    if not present:
        return "markers"
    joined = sum(
        1
        for k in present
        if (k > 0 and ys[k - 1] is not None) or (k + 1 < len(ys) and ys[k + 1] is not None)
    )
    if joined < len(present) / 2:
        return "markers"
    return "lines+markers" if len(present) <= 48 else "lines"


def no_data(line: dict[str, Any], field: str = "value") -> bool:
    return not any(y is not None for y in line.get(field, []))


def heatmap(data: dict[str, Any]) -> dict[str, Any]:
    features = [f["name"] for f in data["features"]]
    # Colour shows the verdict: a window the jobs did not flag (their policy adds multiple-testing
    # control and effect sizes to the raw threshold) stays below the threshold band even when
    # its raw score crossed 1; the hover shows the raw score.
    z = [
        [
            None if c is None else min(c, SCORE_MAX) if flag else min(c, NOT_FLAGGED_MAX)
            for c, flag in zip(row, flags, strict=True)
        ]
        for row, flags in zip(data["z"], data["drifted"], strict=True)
    ]
    height = max(220, min(24 * len(features) + 90, 1400))
    return {
        "data": [
            {
                "type": "heatmap",
                "x": _x(data["times"]),
                "y": [esc(f) for f in features],
                "z": z,
                "zmin": 0,
                "zmax": SCORE_MAX,
                "colorscale": COLORSCALE,
                "colorbar": {
                    "title": {"text": "\u00d7 tolerance"},
                    "tickvals": [0, 1, 2, 3],
                    "ticktext": ["0", "1 (tolerance)", "2", "≥3"],
                },
                "customdata": data["z"],
                "hovertemplate": "%{y}<br>%{x}<br>change %{customdata:.2f} \u00d7 its tolerance"
                "<extra></extra>",
                "xgap": 0,
                "ygap": 1,
            }
        ],
        "layout": _layout(
            "Size of the change per feature, in multiples of its tolerance (red: drifted)",
            height=height,
            hovermode="closest",
            yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
            xaxis={"type": "date"},
        ),
    }


def lines(
    title: str,
    metrics: dict[str, dict[str, list[Any]]],
    *,
    field: str = "value",
    threshold: bool = False,
    percent: bool = False,
    names: dict[str, str] | None = None,
    log_y: bool = False,
    y_title: str | None = None,
    step: int | None = None,
) -> dict[str, Any]:
    """One line per metric; optionally its threshold dashed and drifted points marked.

    ``step``: the series' bucket in seconds; lines break where windows are missing, and a
    sparse series is drawn as markers.
    """
    traces: list[dict[str, Any]] = []
    for i, (metric, line) in enumerate(sorted(metrics.items())):
        color = PALETTE[i % len(PALETTE)]
        label = esc((names or {}).get(metric, metric))
        use = field
        if field == "auto":  # tests compare their p-value with alpha, distances their value
            use = "p_value" if any(p is not None for p in line.get("p_value", [])) else "value"
        ys = line[use] if use in line else line["value"]
        t, y = gapped(line["t"], step, ys)
        mode = line_mode(y)
        traces.append(
            {
                "type": "scatter",
                "mode": mode,
                "name": label,
                "x": _x(t),
                "y": y,
                "line": {"color": color, "width": 1.5},
                "marker": {"color": color, "size": 6 if mode == "markers" else 4},
            }
        )
        if threshold and any(t is not None for t in line.get("threshold", [])):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": f"{label} threshold",
                    "x": _x(line["t"]),
                    "y": line["threshold"],
                    "line": {"color": color, "dash": "dash", "width": 1},
                }
            )
        flagged = [(t, y) for t, y, d in zip(line["t"], ys, line["drifted"], strict=False) if d]
        if threshold and flagged:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{label} drifted",
                    "x": _x([t for t, _ in flagged]),
                    "y": [y for _, y in flagged],
                    "marker": {"color": "#b30000", "size": 6, "symbol": "x"},
                }
            )
    yaxis: dict[str, Any] = {"automargin": True}
    if y_title:
        yaxis["title"] = {"text": esc(y_title), "font": {"size": 11}}
    if percent:
        yaxis["tickformat"] = ".0%"
    if log_y:
        yaxis["type"] = "log"
    return {"data": traces, "layout": _layout(title, yaxis=yaxis, xaxis=TIME_AXIS)}


EFFECT_NAMES = {
    "wasserstein_sd": ("shift (baseline standard deviations)", False),
    "tvd": ("share of rows that changed category", True),
}
"""How an effect size reads: its axis title, and whether it is a share (drawn in percent)."""


def effect_axis(effect_name: str | None) -> tuple[str, bool]:
    default = (f"effect size ({effect_name or 'statistic'})", False)
    return EFFECT_NAMES.get(effect_name or "", default)


def p_text(p: Any) -> str:
    if p is None:
        return "none"
    return f"< {P_FLOOR:.0e}" if p < P_FLOOR else f"{p:.2g}"


def effect(title: str, line: dict[str, Any], *, step: int | None = None) -> dict[str, Any]:
    """The size of the change over time: the effect size with its confidence interval as a
    band, the practical tolerance it must clear as a line, drifted windows marked.

    Without effect sizes (results of a policy that has none) the method's statistic is drawn
    against its threshold instead, so the chart is never blank while the column drifts.
    """
    has_effect = any(e is not None for e in line.get("effect", []))
    y_title, share = effect_axis(line.get("effect_name"))
    fmt = ".1%" if share else ".3f"
    if not has_effect:
        stat = {
            "t": line["t"], "value": line["value"], "threshold": line["threshold"],
            "drifted": line["drifted"],
        }  # fmt: skip
        return lines(
            title, {line.get("method") or "statistic": stat}, threshold=True, step=step,
            y_title=f"{line.get('method') or 'statistic'} (statistic)",
        )  # fmt: skip
    ps = [p_text(p) for p in line["p_value"]]
    custom = [
        [w, lo, hi, p, tol]
        for w, lo, hi, p, tol in zip(
            line["window"], line["ci_low"], line["ci_high"], ps, line["tolerance"], strict=True
        )
    ]
    t, eff, lo, hi, cd, drifted = gapped(
        line["t"], step, line["effect"], line["ci_low"], line["ci_high"], custom, line["drifted"]
    )
    x = _x(t)
    mode = line_mode(eff)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter", "mode": "lines", "x": x, "y": hi, "name": "90% interval",
            "line": {"width": 0, "color": "rgba(31,119,180,0)"}, "showlegend": False,
            "hoverinfo": "skip", "legendgroup": "ci",
        },
        {
            "type": "scatter", "mode": "lines", "x": x, "y": lo, "name": "90% interval",
            "fill": "tonexty", "fillcolor": "rgba(31,119,180,0.20)",
            "line": {"width": 0, "color": "rgba(31,119,180,0)"}, "hoverinfo": "skip",
            "legendgroup": "ci",
        },
        {
            "type": "scatter", "mode": mode, "x": x, "y": eff, "name": "effect size",
            "line": {"color": "#1f77b4", "width": 1.8}, "marker": {"color": "#1f77b4", "size": 5},
            "customdata": cd,
            "hovertemplate": f"effect %{{y:{fmt}}} [%{{customdata[1]:{fmt}}}, "
            f"%{{customdata[2]:{fmt}}}]<br>tolerance %{{customdata[4]:{fmt}}}"
            "<br>p %{customdata[3]}<extra></extra>",
        },
    ]  # fmt: skip
    if any(tol is not None for tol in line["tolerance"]):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": _x(line["t"]),
                "y": line["tolerance"],
                "name": "tolerance",
                "line": {"color": "#b54708", "dash": "dash", "width": 1.5, "shape": "hv"},
                "hoverinfo": "skip",
            }
        )
    marks = [k for k, d in enumerate(drifted) if d]
    if marks:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "drifted window",
                "x": [x[k] for k in marks],
                "y": [eff[k] for k in marks],
                "customdata": [cd[k] for k in marks],
                "marker": {"color": "#b30000", "size": 7, "symbol": "circle"},
                "hoverinfo": "skip",
            }
        )
    yaxis: dict[str, Any] = {
        "automargin": True, "rangemode": "tozero",
        "title": {"text": esc(y_title), "font": {"size": 11}},
    }  # fmt: skip
    if share:
        yaxis["tickformat"] = ".0%"
    return {
        "data": traces,
        "layout": _layout(title, yaxis=yaxis, xaxis=TIME_AXIS, hovermode="x unified"),
    }


def p_values(title: str, line: dict[str, Any], *, step: int | None = None) -> dict[str, Any]:
    """The test's p-value over time, secondary to the effect size: on a log axis clamped at
    :data:`P_FLOOR` (a clamped point is labelled "< 1e-16"), with the test's alpha."""
    ps = line.get("p_value", [])
    clamped = [None if p is None else max(p, P_FLOOR) for p in ps]
    texts = [p_text(p) for p in ps]
    t, y, txt = gapped(line["t"], step, clamped, texts)
    x = _x(t)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter", "mode": line_mode(y), "x": x, "y": y, "name": "p-value",
            "text": txt, "hovertemplate": "p %{text}<extra></extra>",
            "line": {"color": "#475467", "width": 1.2}, "marker": {"size": 4, "color": "#475467"},
        }
    ]  # fmt: skip
    if any(a is not None for a in line.get("threshold", [])):
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": _x(line["t"]),
                "y": line["threshold"],
                "name": "alpha",
                "line": {"color": "#b54708", "dash": "dash", "width": 1},
                "hoverinfo": "skip",
            }
        )
    floor = [k for k, p in enumerate(ps) if p is not None and p < P_FLOOR]
    if floor:
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"p < {P_FLOOR:.0e}",
                "x": _x([line["t"][k] for k in floor]),
                "y": [P_FLOOR] * len(floor),
                "marker": {"symbol": "triangle-down", "size": 7, "color": "#b30000"},
                "hoverinfo": "skip",
            }
        )
    ticks = [1.0, 1e-4, 1e-8, 1e-12, P_FLOOR]
    yaxis = {
        "type": "log", "range": [-16.6, 0.2], "tickvals": ticks,
        "ticktext": ["1", "1e-4", "1e-8", "1e-12", f"< {P_FLOOR:.0e}"], "automargin": True,
        "title": {"text": "p-value (log)", "font": {"size": 11}},
    }  # fmt: skip
    layout = _layout(title, yaxis=yaxis, xaxis=TIME_AXIS, height=220)
    return {"data": traces, "layout": layout}


def distribution(dist: dict[str, Any], feature: str) -> dict[str, Any]:
    """Reference vs current: overlaid densities on the reference bins, or category shares."""
    traces: list[dict[str, Any]] = []
    sides = (("reference", "baseline", "#1f77b4"), ("current", "current", "#d62728"))
    if dist.get("kind") == "numeric":
        for key, name, color in sides:
            side = dist.get(key)
            if not side:
                continue
            traces.append(
                {
                    "type": "bar",
                    "name": name,
                    "x": side["centers"],
                    "y": side["density"],
                    "width": side["widths"],
                    "marker": {"color": color},
                    "opacity": 0.55,
                    "hovertemplate": "%{x:.4g}: density %{y:.4g}<extra>" + name + "</extra>",
                }
            )
        layout = _layout(
            f"{feature}: reference vs current (density on the baseline's bins)",
            barmode="overlay",
            bargap=0,
            hovermode="closest",
        )
    else:
        categories = [esc(c) for c in dist.get("categories", [])]
        for key, name, color in sides:
            side = dist.get(key)
            if side is None:
                continue
            traces.append(
                {
                    "type": "bar",
                    "name": name,
                    "x": categories,
                    "y": side,
                    "marker": {"color": color},
                    "hovertemplate": "%{x}: %{y:.1%}<extra>" + name + "</extra>",
                }
            )
        layout = _layout(
            f"{feature}: category shares, reference vs current",
            barmode="group",
            hovermode="closest",
            yaxis={"tickformat": ".0%"},
            xaxis={"type": "category", "automargin": True},
        )
    layout["height"] = 320
    return {"data": traces, "layout": layout}


METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "log_loss": "log loss",
    "calibration_error": "calibration error",
    "mae": "MAE (target units)",
    "rmse": "RMSE (target units)",
    "mape": "MAPE",
    "r2": "R²",
}
LOWER_IS_BETTER = {"log_loss", "calibration_error", "mae", "rmse", "mape"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def performance(
    metric: str,
    realised: dict[str, Any] | None,
    estimated: dict[str, Any] | None,
    *,
    step: int | None = None,
) -> dict[str, Any]:
    """One metric over time: realised (from labels) and estimated (before labels arrive) on
    the same axis, the estimate's band shaded, the baseline's value dotted."""
    label = metric_label(metric)
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    traces: list[dict[str, Any]] = []
    if estimated and not no_data(estimated):
        t, y, lo, hi = gapped(
            estimated["t"], step, estimated["value"], estimated["ci_low"], estimated["ci_high"]
        )
        x = _x(t)
        if any(v is not None for v in lo):
            traces += [
                {
                    "type": "scatter", "mode": "lines", "x": x, "y": hi, "hoverinfo": "skip",
                    "line": {"width": 0, "color": "rgba(255,127,14,0)"}, "showlegend": False,
                    "name": "estimate band", "legendgroup": "band",
                },
                {
                    "type": "scatter", "mode": "lines", "x": x, "y": lo, "hoverinfo": "skip",
                    "fill": "tonexty", "fillcolor": "rgba(255,127,14,0.18)",
                    "line": {"width": 0, "color": "rgba(255,127,14,0)"},
                    "name": "estimate band", "legendgroup": "band",
                },
            ]  # fmt: skip
        traces.append(
            {
                "type": "scatter", "mode": line_mode(y), "x": x, "y": y,
                "name": "estimated",
                "line": {"color": "#d4620b", "width": 1.5, "dash": "dot"},
                "marker": {"color": "#d4620b", "size": 4},
                "hovertemplate": "estimated %{y:.3f}<extra></extra>",
            }
        )  # fmt: skip
    if realised and not no_data(realised):
        t, y = gapped(realised["t"], step, realised["value"])
        traces.append(
            {
                "type": "scatter", "mode": line_mode(y), "x": _x(t), "y": y,
                "name": "realised", "line": {"color": "#1f77b4", "width": 1.8},
                "marker": {"color": "#1f77b4", "size": 4},
                "hovertemplate": "realised %{y:.3f}<extra></extra>",
            }
        )  # fmt: skip
    base_line = next(
        (line for line in (realised, estimated) if line and any(line.get("threshold", []))),
        None,
    )
    if base_line is not None:
        traces.append(
            {
                "type": "scatter", "mode": "lines", "x": _x(base_line["t"]),
                "y": base_line["threshold"], "name": "baseline",
                "line": {"color": "#667085", "width": 1, "dash": "dash", "shape": "hv"},
                "hovertemplate": "baseline %{y:.3f}<extra></extra>",
            }
        )  # fmt: skip
    yaxis = {
        "automargin": True,
        "title": {"text": esc(f"{label} ({better} is better)"), "font": {"size": 11}},
    }
    return {
        "data": traces,
        "layout": _layout(label, yaxis=yaxis, xaxis=TIME_AXIS, height=260),
    }
