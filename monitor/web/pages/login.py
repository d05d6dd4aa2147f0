"""Login and logout: a token opens a browser session (cookie), by link or by form.

``/login?token=...`` (the link the demo prints) and the login form both verify the token and set
an HttpOnly, SameSite=Lax session cookie. The form itself is protected by a double-submit CSRF
cookie, so another site cannot log a browser into an account of its choosing.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.settings import get_settings
from monitor.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    check_form_csrf,
    close_session,
    csrf_ok,
    open_session,
    require_page,
    safe_next,
)
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())
ADMIN_PAGE = Depends(require_page("admin"))


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _logged_in(request: Request, cookie: str, next_url: str) -> Response:
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=get_settings().session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _form(request: Request, next_url: str, error: str | None, status: int = 200) -> HTMLResponse:
    login_csrf = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"next": safe_next(next_url), "error": error, "login_csrf": login_csrf},
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        login_csrf,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/", token: str | None = None) -> Response:
    if token:
        opened = open_session(request, token[:200])
        if opened is None:
            return _form(request, next, "That login link is invalid, expired or revoked.", 401)
        return _logged_in(request, opened[0], next)
    return _form(request, next, None)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    token, next_url, supplied = form.get("token"), form.get("next"), form.get("login_csrf")
    next_text = next_url if isinstance(next_url, str) else "/"
    if not csrf_ok(
        request.cookies.get(LOGIN_CSRF_COOKIE), supplied if isinstance(supplied, str) else None
    ):
        return _form(request, next_text, "The form expired; please try again.", 403)
    if not isinstance(token, str) or not token.strip():
        return _form(request, next_text, "Enter an API token.", 400)
    opened = open_session(request, token.strip()[:200])
    if opened is None:
        return _form(request, next_text, "That token is invalid, expired or revoked.", 401)
    return _logged_in(request, opened[0], next_text)


@router.post("/logout")
async def logout(request: Request, who: Principal = PAGE) -> Response:
    await check_form_csrf(request, who)
    close_session(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
