"""Plotly figure specs as plain dicts: the server sends JSON, the browser draws with plotly.js.

Built as dicts rather than ``plotly.graph_objects`` because validation there costs milliseconds
per trace and the pages have a latency budget; the specs use only long-stable plotly attributes.
Names are HTML-escaped because plotly renders a small HTML subset inside SVG labels (``<b>``,
``<br>``): a feature named ``<b>x</b>`` must show its name, not bold text.
"""

from __future__ import annotations

import html
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
        "legend": {"orientation": "h", "y": -0.2},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


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
                    "title": {"text": "score"},
                    "tickvals": [0, 1, 2, 3],
                    "ticktext": ["0", "1 (threshold)", "2", "≥3"],
                },
                "customdata": data["z"],
                "hovertemplate": "%{y}<br>%{x}<br>score %{customdata:.2f}<extra></extra>",
                "xgap": 0,
                "ygap": 1,
            }
        ],
        "layout": _layout(
            "Drift per feature (score = statistic / threshold; red: window flagged as drifted)",
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
) -> dict[str, Any]:
    """One line per metric; optionally its threshold dashed and drifted points marked."""
    traces: list[dict[str, Any]] = []
    for i, (metric, line) in enumerate(sorted(metrics.items())):
        color = PALETTE[i % len(PALETTE)]
        label = esc((names or {}).get(metric, metric))
        use = field
        if field == "auto":  # tests compare their p-value with alpha, distances their value
            use = "p_value" if any(p is not None for p in line.get("p_value", [])) else "value"
        ys = line[use] if use in line else line["value"]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": label,
                "x": _x(line["t"]),
                "y": ys,
                "line": {"color": color, "width": 1.5},
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
    if percent:
        yaxis["tickformat"] = ".0%"
    if log_y:
        yaxis["type"] = "log"
    return {"data": traces, "layout": _layout(title, yaxis=yaxis, xaxis={"type": "date"})}


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
