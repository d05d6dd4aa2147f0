"""The alerts page: open and resolved alerts, silences (create and end), deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.alerts import silences
from monitor.errors import InputError
from monitor.storage.engine import session_scope
from monitor.web.auth import Principal, check_form_csrf, require_page
from monitor.web.cache import view_cache
from monitor.web.deps import read_conn
from monitor.web.reads import alerting, incidents
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())
ADMIN_PAGE = Depends(require_page("admin"))


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    state: str | None = Query(None, pattern="^(open|pending|firing|resolved)$"),
    model: str | None = Query(None, max_length=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    error: str | None = Query(None, max_length=300),
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    open_alerts, _ = alerting.list_alerts(conn, "open", model, 200, 0)
    resolved, more = alerting.list_alerts(conn, "resolved", model, 50, offset)
    active, _ = alerting.list_silences(conn, True, 100, 0)
    expired = [s for s in alerting.list_silences(conn, False, 30, 0)[0] if not s["active"]]
    deliveries, _ = alerting.list_deliveries(conn, 50, 0)
    rule_errors = alerting.rule_errors(conn, model)
    return render(
        request,
        "alerts.html",
        {
            "incidents": incidents.list_incidents(
                conn, model, days=30, limit=30, cache=view_cache(request.app.state)
            ),
            "delivery_problems": alerting.delivery_problems(conn),
            "model": model,
            "open_alerts": open_alerts,
            "resolved": resolved,
            "more": more,
            "offset": offset,
            "silences": active,
            "expired": expired,
            "deliveries": deliveries,
            "rule_errors": rule_errors,
            "error": error,
            "prefill": {k: request.query_params.get(k, "") for k in ("model", "column", "rule")},
            "can_admin": who.allows("admin"),
        },
    )


def _back(error: str | None = None) -> RedirectResponse:
    from urllib.parse import quote

    target = "/alerts" + (f"?error={quote(error[:300])}" if error else "")
    return RedirectResponse(target + "#silences", status_code=303)


@router.post("/alerts/silences")
async def create_silence_form(request: Request, who: Principal = ADMIN_PAGE) -> Response:
    await check_form_csrf(request, who)
    form = await request.form()
    matchers = []
    for name in ("model", "column", "rule", "severity"):
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            matchers.append({"name": name, "value": value.strip()[:1000]})
    hours_raw = form.get("hours")
    comment = form.get("comment")
    try:
        hours = float(hours_raw) if isinstance(hours_raw, str) else 0.0
        if not 0 < hours <= 24 * 365:
            raise InputError("duration must be between 0 and 8760 hours")
        with session_scope(request.app.state.engine) as session:
            silences.create_silence(
                session,
                matchers=matchers,
                ends_at=datetime.now(UTC) + timedelta(hours=hours),
                created_by=who.token.name,
                comment=comment[:2000] if isinstance(comment, str) else None,
            )
    except (InputError, ValueError) as exc:
        return _back(str(exc) if isinstance(exc, InputError) else "duration must be a number")
    return _back()


@router.post("/alerts/silences/{silence_id}/end")
async def end_silence_form(
    request: Request,
    silence_id: int = Path(..., ge=1, le=2**31 - 1),
    who: Principal = ADMIN_PAGE,
) -> Response:
    await check_form_csrf(request, who)
    with session_scope(request.app.state.engine) as session:
        silences.end_silence(session, silence_id)
    return _back()
