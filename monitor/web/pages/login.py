"""Login and logout: a one-time login code or an API token opens a browser session (cookie).

Logging in is always a ``POST`` carrying a CSRF token: the login form sets a fresh random value
in a ``SameSite=Strict`` cookie scoped to ``/login`` and in a hidden field, and the ``POST``
must return both (double submit). A page on another site can neither read the value nor make
the browser send the cookie, so it cannot log a browser into an account of its choosing; a
``GET`` never logs in.

Links carry one-time codes, never tokens (a URL stays in the browser's history): ``monitor
login-link`` and ``monitor demo`` print ``/login?code=...``, which shows a confirmation form
with the code; the session opens when the user submits it, and the code is dead from then on
(single use, ten minutes). ``/login?token=...`` links are refused with an explanation.

Wrong codes and tokens count against the client (:mod:`monitor.web.throttle`): past a burst,
the form answers 429 with ``Retry-After`` without checking what was sent.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.settings import get_settings
from monitor.web.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    check_form_csrf,
    check_throttle,
    close_session,
    csrf_ok,
    open_session,
    open_session_with_code,
    record_failure,
    require_page,
    safe_next,
)
from monitor.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE = Depends(require_page())
MAX_CREDENTIAL = 200


def secure_cookies(request: Request) -> bool:
    """Secure cookies on https (as a trusted proxy reports it) or when the setting forces it."""
    return get_settings().cookie_secure or request.url.scheme == "https"


def _logged_in(request: Request, cookie: str, next_url: str) -> Response:
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=get_settings().session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def _form(
    request: Request,
    next_url: str,
    error: str | None,
    status: int = 200,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    login_csrf = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {"next": safe_next(next_url), "error": error, "login_csrf": login_csrf, "code": code},
        status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        login_csrf,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/login",
    )
    response.headers["Referrer-Policy"] = "no-referrer"  # the code never leaves in a Referer
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@router.get("/login")
def login_page(
    request: Request, next: str = "/", code: str | None = None, token: str | None = None
) -> Response:
    """The login form; with ``?code=`` a confirmation form holding the code (a GET never logs
    in: the user's click posts it)."""
    if token is not None:
        return _form(
            request,
            next,
            "Login links no longer carry API tokens (a URL stays in the browser's history). "
            "Paste the token below, or open a one-time link from `monitor login-link`.",
            400,
        )
    if code is not None:
        return _form(request, next, None, code=code[:MAX_CREDENTIAL])
    return _form(request, next, None)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    values = {k: form.get(k) for k in ("code", "token", "next", "login_csrf")}
    text = {k: v if isinstance(v, str) else "" for k, v in values.items()}
    next_text = text["next"] or "/"
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), text["login_csrf"] or None):
        return _form(request, next_text, "The form expired; please try again.", 403)
    code, token = text["code"].strip(), text["token"].strip()
    if not code and token and not token.startswith("mon_"):
        code, token = token, ""  # a login code pasted into the form's one field
    if not code and not token:
        return _form(request, next_text, "Enter a login code or an API token.", 400)
    try:
        check_throttle(request)
    except HTTPException as exc:
        return _form(request, next_text, str(exc.detail), 429, headers=dict(exc.headers or {}))
    if "\x00" in code + token or len(code) > MAX_CREDENTIAL or len(token) > MAX_CREDENTIAL:
        opened = None
    elif code:
        opened = open_session_with_code(request, code)
    else:
        opened = open_session(request, token)
    if opened is None:
        record_failure(request)
        message = (
            "That login link is invalid, expired or already used: run `monitor login-link` "
            "for a new one."
            if code
            else "That token is invalid, expired or revoked."
        )
        return _form(request, next_text, message, 401)
    return _logged_in(request, opened[0], next_text)


@router.post("/logout")
async def logout(request: Request, who: Principal = PAGE) -> Response:
    await check_form_csrf(request, who)
    close_session(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
