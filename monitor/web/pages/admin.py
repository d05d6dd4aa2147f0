"""Pages: baselines, settings (channels, rules, tokens), and the API reference at /docs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.storage.engine import session_scope
from monitor.storage.tokens import SCOPES, create_token, list_tokens, revoke_token
from monitor.web.auth import Principal, check_form_csrf, require_page, require_scope
from monitor.web.deps import read_conn
from monitor.web.reads import alerting
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())
ADMIN_PAGE = Depends(require_page("admin"))
READ_API = Depends(require_scope("read"))


@router.get("/baselines", response_class=HTMLResponse)
def baselines_page(
    request: Request,
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    baselines, _ = alerting.list_baselines(conn, None, 500, 0)
    columns = alerting.baseline_columns(conn, [b["id"] for b in baselines])
    for b in baselines:
        b["summary"] = alerting.baseline_summary(b["performance"])
        b["column_profiles"] = columns.get(b["id"], [])
    return render(request, "baselines.html", {"baselines": baselines})


@router.get("/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    who: Principal = PAGE,
    conn: sa.Connection = Depends(read_conn),
) -> HTMLResponse:
    rules, _ = alerting.list_rules(conn, None, 500, 0)
    tokens: list[Any] = []
    if who.allows("admin"):
        with Session(conn) as session:  # the request's read connection: no second checkout
            tokens = list_tokens(session)
    return render(
        request,
        "settings.html",
        {
            "channels": alerting.list_channels(conn),
            "rules": rules,
            "tokens": tokens,
            "scopes": SCOPES,
            "can_admin": who.allows("admin"),
            "new_token": None,
            "error": request.query_params.get("error"),
        },
    )


@router.post("/settings/tokens", response_class=HTMLResponse)
async def create_token_form(request: Request, who: Principal = ADMIN_PAGE) -> Response:
    await check_form_csrf(request, who)
    form = await request.form()
    name, scope = form.get("name"), form.get("scope")
    try:
        with session_scope(request.app.state.engine) as session:
            value, info = create_token(
                session,
                str(name or "").replace("\x00", "")[:200],
                str(scope or ""),
            )
    except InputError as exc:
        return RedirectResponse(f"/settings?error={quote(str(exc))}#tokens", status_code=303)
    with request.app.state.engine.connect() as conn:
        rules, _ = alerting.list_rules(conn, None, 500, 0)
        channels = alerting.list_channels(conn)
    with session_scope(request.app.state.engine) as session:
        tokens = list_tokens(session)
    return render(
        request,
        "settings.html",
        {
            "channels": channels,
            "rules": rules,
            "tokens": tokens,
            "scopes": SCOPES,
            "can_admin": True,
            "new_token": {"value": value, "name": info.name, "scope": info.scope},
            "error": None,
        },
    )


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token_form(
    request: Request,
    token_id: int = Path(..., ge=1, le=2**31 - 1),
    who: Principal = ADMIN_PAGE,
) -> Response:
    await check_form_csrf(request, who)
    with session_scope(request.app.state.engine) as session:
        revoke_token(session, token_id)
    return RedirectResponse("/settings#tokens", status_code=303)


@router.get("/openapi.json")
def openapi_json(request: Request, who: Principal = READ_API) -> Response:
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request, who: Principal = PAGE) -> HTMLResponse:
    """The API reference, rendered from the OpenAPI document (no CDN-hosted Swagger UI)."""
    spec = request.app.openapi()
    ops = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "tag": (op.get("tags") or [""])[0],
                    "params": [
                        {
                            "name": p.get("name"),
                            "in": p.get("in"),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": "requestBody" in op,
                }
            )
    return render(request, "docs.html", {"ops": ops, "info": spec.get("info", {})})
