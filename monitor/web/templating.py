"""Jinja2 rendering for pages: autoescaped templates, the caller and its CSRF token in context.

Autoescaping is on for every template, so model, feature and label names render as text (a
feature named ``<script>`` shows as ``&lt;script&gt;``). JSON goes into pages through
``tojson`` (:func:`monitor.web.safejson.script_json`), which escapes ``<``, ``>``, ``&``, ``'``
and U+2028/9 so no name can close a ``<script>`` block. Security headers are set for every
response by :mod:`monitor.web.headers`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from monitor.web.safejson import script_json

DASH = "\u2013"  # shown for a missing value
TEMPLATES_DIR = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship with the package: no stat() per render
)


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return f"{100 * value:.1f}%"


def _when(value: str | None) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM`` UTC."""
    if not value:
        return DASH
    try:
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def _effect(value: Any, effect_name: str | None = None) -> str:
    """An effect size in its own terms: a share of rows in percent, a shift in sd as a number."""
    from monitor.web.charts import effect_axis

    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return f"{100 * value:.1f}%" if effect_axis(effect_name)[1] else f"{value:.3f}"


def _pvalue(value: Any) -> str:
    """A p-value, clamped where a double says nothing more (``< 1e-16``)."""
    from monitor.web.charts import p_text

    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return p_text(value)


def _signed(value: Any, digits: int = 3) -> str:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return DASH
    return ("+" if value > 0 else "") + _num(float(value), digits)


def _duration(seconds: Any) -> str:
    """Seconds as a short human duration: ``45 s``, ``12 min``, ``5 h``, ``3 d 4 h``."""
    if seconds is None or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return DASH
    s = abs(float(seconds))
    if s < 90:
        text = f"{s:.0f} s" if s >= 1 else f"{s * 1000:.0f} ms"
    elif s < 5400:
        text = f"{s / 60:.0f} min"
    elif s < 86400 * 2:
        text = f"{s / 3600:.0f} h" if s >= 3600 * 10 else f"{s / 3600:.1f} h"
    else:
        d, h = divmod(round(s / 3600), 24)
        text = f"{d} d {h} h" if h else f"{d} d"
    return ("-" if seconds < 0 else "") + text


def _urlpart(value: Any) -> str:
    return quote(str(value), safe="")


def _matcher(m: Any) -> str:
    """A stored silence matcher as text (``name=value``, ``!=``, ``=~``, ``!~``)."""
    if not isinstance(m, dict):
        return str(m)
    op = m.get("op") or {
        (True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"
    }[(bool(m.get("isEqual", True)), bool(m.get("isRegex", False)))]  # fmt: skip
    return f"{m.get('name', '')}{op}{m.get('value', '')}"


def _qs(base: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
    """``?k=v&...`` of ``base`` overridden by ``extra`` (None values dropped), values quoted.

    A Python global, not a template macro: the model page builds one per feature row, and the
    macro's namespace loop cost more than the rest of the page.
    """
    extra = extra or {}
    parts = [f"{k}={_urlpart(v)}" for k, v in base.items() if k not in extra]
    parts += [f"{k}={_urlpart(v)}" for k, v in extra.items() if v is not None]
    return "?" + "&".join(parts) if parts else ""


_env.filters.update(
    num=_num,
    pct=_pct,
    when=_when,
    urlpart=_urlpart,
    matcher=_matcher,
    effect=_effect,
    pvalue=_pvalue,
    signed=_signed,
    duration=_duration,
    tojson=script_json,
)
_env.globals["qs"] = _qs


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    who = getattr(request.state, "principal", None)
    ctx = {
        "request": request,
        "user": who.token if who else None,
        "csrf_token": who.csrf_token if who and who.csrf_token else "",
        "path": request.url.path,
        **context,
    }
    html = _env.get_template(name).render(ctx)
    return HTMLResponse(html, status_code=status_code)


def render_fragment(name: str, context: dict[str, Any]) -> Markup:
    """A template rendered to markup for insertion into a page (its values were escaped while
    rendering it, so inserting it does not escape again)."""
    return Markup(_env.get_template(name).render(context))


def render_error(request: Request, status: int, message: str, headers: Any = None) -> HTMLResponse:
    response = render(request, "error.html", {"status": status, "message": message}, status)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response
