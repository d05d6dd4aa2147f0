"""Evidently HTML report for one window: the baseline sample against the window's own rows.

The one place the web reads raw ``predictions`` rows, and only on request: at most
:data:`ROW_CAP` rows of one window, while its partition is retained. The reference is the
baseline's stored sample (numeric reservoir samples; categorical columns are expanded from their
category counts to the same size, in proportion). Evidently runs in the request's worker thread
(FastAPI runs sync routes in its thread pool), never on the event loop.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi.responses import Response

from monitor.errors import InputError, MonitorError, NotFoundError
from monitor.web.reads.common import ModelRef, get_model, parse_ts
from monitor.web.safejson import escape_json_text

log = logging.getLogger(__name__)
ROW_CAP = 20_000
REFERENCE_ROWS = 2_000


def _reference(conn: sa.Connection, model: ModelRef) -> pd.DataFrame:
    rows = conn.execute(
        sa.text(
            """
            SELECT bp.column_name, bp.kind, bp.sample_num, bp.sample_cat, bp.profile->'counts'
            FROM baseline_profiles bp JOIN baselines b ON b.id = bp.baseline_id
            WHERE b.id = (SELECT id FROM baselines WHERE model_id = :m
                          ORDER BY created_at DESC LIMIT 1)
              AND bp.column_name NOT LIKE '@%'
            """
        ),
        {"m": model.id},
    ).all()
    if not rows:
        raise NotFoundError(f"model {model.name!r} has no baseline to compare with")
    columns: dict[str, Any] = {}
    for name, kind, sample_num, sample_cat, counts in rows:
        if kind == "numeric" and sample_num:
            columns[name] = np.asarray(sample_num, dtype=float)
        elif sample_cat:
            columns[name] = np.asarray(sample_cat, dtype=object)
        elif isinstance(counts, dict) and counts:
            total = sum(int(c) for c in counts.values()) or 1
            reps = [round(int(c) * REFERENCE_ROWS / total) for c in counts.values()]
            columns[name] = np.repeat(np.asarray(list(counts), dtype=object), reps)
    if not columns:
        raise NotFoundError("the baseline keeps no sample to build a report from")
    n = min(len(c) for c in columns.values())
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {k: c[rng.permutation(len(c))[:n]] if len(c) > n else c for k, c in columns.items()}
    )


def _current(
    conn: sa.Connection, model: ModelRef, start: datetime, end: datetime, columns: list[str]
) -> pd.DataFrame:
    features = conn.execute(
        sa.text("SELECT name, kind, position FROM features WHERE model_id = :m"), {"m": model.id}
    ).all()
    rows = conn.execute(
        sa.text(
            "SELECT num, cat FROM predictions WHERE model_id = :m AND event_ts >= :s "
            "AND event_ts < :e LIMIT :cap"
        ),
        {"m": model.id, "s": start, "e": end, "cap": ROW_CAP},
    ).all()
    if not rows:
        raise NotFoundError(
            "no raw rows for this window: it is empty or its data is no longer retained"
        )
    data: dict[str, list[Any]] = {}
    for name, kind, pos in features:
        if name not in columns:
            continue
        index = 0 if kind == "numeric" else 1
        data[name] = [
            (r[index][pos] if r[index] is not None and pos < len(r[index]) else None) for r in rows
        ]
    frame = pd.DataFrame(data)
    for name, kind, _ in features:
        if name in frame and kind == "numeric":
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame


REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The report's own policy. ``sandbox`` (without ``allow-same-origin``) gives it an opaque
origin: even a script that got in could not read the dashboard's cookies or call its API, and
without ``allow-modals`` it cannot open dialogs. Evidently's bundle needs inline scripts and
styles and ``data:`` fonts and images; nothing else, not even ``eval``."""


def report_response(conn: sa.Connection, model: str, window: str) -> Response:
    """Evidently's HTML report for one window, as a download in its own sandbox."""
    ref = get_model(conn, model)
    start = parse_ts(window, "window")
    if start is None:
        raise InputError("window must be an ISO 8601 timestamp")
    html = window_report(conn, ref, start)
    stamp = start.strftime("%Y%m%dT%H%M")
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in ref.name)
    filename = f"{ascii_name[:80]}-{stamp}-evidently.html"
    full = quote(f"{ref.name[:80]}-{stamp}-evidently.html", safe="")
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{full}",
            "Content-Security-Policy": REPORT_CSP,
        },
    )


REPORT_SLOTS = threading.BoundedSemaphore(2)
"""At most two reports compute at once: each takes seconds of CPU; the dashboard must stay fast."""


def window_report(conn: sa.Connection, model: ModelRef, window_start: datetime) -> str:
    """The HTML of Evidently's data drift report, baseline sample vs the window's rows."""
    if not REPORT_SLOTS.acquire(timeout=30):
        raise BusyError("two reports are being computed; try again in a few seconds")
    try:
        return _report(conn, model, window_start)
    finally:
        REPORT_SLOTS.release()


class BusyError(MonitorError):
    """Too many reports at once."""


def _report(conn: sa.Connection, model: ModelRef, window_start: datetime) -> str:
    end = window_start + timedelta(seconds=model.window_seconds)
    reference = _reference(conn, model)
    current = _current(conn, model, window_start, end, list(reference.columns))
    # a column with no value on either side has no distribution to compare (Evidently
    # refuses the whole report for one)
    shared = [
        c
        for c in reference.columns
        if c in current.columns and reference[c].notna().any() and current[c].notna().any()
    ]
    if not shared:
        raise NotFoundError("the window's rows share no non-empty column with the baseline")
    log.info(
        "evidently report: model=%s window=%s reference=%d current=%d columns=%d",
        model.name, window_start.isoformat(), len(reference), len(current), len(shared),
    )  # fmt: skip
    # imported only now: the first import takes seconds, and a window without rows is a 404
    from evidently import Report
    from evidently.presets import DataDriftPreset

    try:
        snapshot = Report([DataDriftPreset()]).run(
            current_data=current[shared], reference_data=reference[shared]
        )
    except ValueError as exc:  # Evidently's word on data it cannot compare
        raise InputError(f"Evidently cannot build this window's report: {exc}") from exc
    return escape_inline_data(str(snapshot.get_html_str(as_iframe=False)))


class ReportLayoutError(MonitorError):
    """Evidently's HTML is not laid out as expected: refuse it rather than serve it unescaped."""


_DRAW = re.compile(r"window\.drawDashboard\((metric_[0-9a-f]+),")
_DECODER = json.JSONDecoder()


def escape_inline_data(html: str) -> str:
    """Evidently's report with its two inline JSON documents made safe for HTML.

    Evidently writes ``var <id> = <json>; var additional_graphs_<id> = <json>;`` into a
    ``<script>`` block with plain ``json.dumps``: a feature name or category value holding
    ``</script>`` ends the block, and the rest runs as markup (a hostile name fired 25
    ``alert()`` dialogs). Each document is found by parsing it (``raw_decode`` reads exactly
    the JSON value, however hostile its strings) and its ``<``, ``>``, ``&`` are escaped, which
    leaves the values the page reads unchanged. The dashboard id comes from the
    ``drawDashboard`` call that ends the file (after the data, so no data can imitate it).
    """
    calls = _DRAW.findall(html)
    if not calls:
        raise ReportLayoutError("unexpected Evidently report layout: no drawDashboard call")
    dashboard = calls[-1]
    parts: list[str] = []
    pos = 0
    for i, name in enumerate((dashboard, f"additional_graphs_{dashboard}")):
        declaration = f"var {name} = "
        at = html.find(declaration, pos)
        if at < 0 or (i > 0 and html[pos:at].strip() != ";"):
            raise ReportLayoutError(f"unexpected Evidently report layout: no {declaration!r}")
        start = at + len(declaration)
        try:
            _, end = _DECODER.raw_decode(html, start)
        except ValueError as exc:
            raise ReportLayoutError(f"unexpected Evidently report layout: {exc}") from exc
        parts += [html[pos:start], escape_json_text(html[start:end])]
        pos = end
    parts.append(html[pos:])
    return "".join(parts)
