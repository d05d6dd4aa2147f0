"""Authentication: API bearer tokens and browser sessions opened with a token.

Two ways in, one identity (:class:`Principal`, the token that authenticated the request):

* ``Authorization: Bearer <token>``: scripts, Prometheus, the API.
* a session cookie, set by ``POST /login`` (with a one-time login code from
  ``monitor login-link``, or an API token pasted into the form; never from a URL). Only the
  cookie value's SHA-256 is stored (``web_sessions``), next to the session's CSRF token. A
  request authenticated by cookie that changes state (POST/PUT/PATCH/DELETE) must carry that
  CSRF token (form field ``csrf_token`` or ``X-CSRF-Token`` header): a cookie alone, which a
  foreign site can make the browser send, never suffices.

``require_scope(scope)`` guards API routes and ``/metrics``: 401 (``WWW-Authenticate: Bearer``)
when unauthenticated, 403 without the scope. ``require_page(scope)`` guards HTML pages: an
unauthenticated request raises :class:`LoginRequired`, which the app turns into a redirect to
``/login?next=...``.

A client that keeps presenting wrong tokens is slowed down (:mod:`monitor.web.throttle`): past
a burst, its attempts get 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from monitor.settings import get_settings
from monitor.storage.engine import session_scope
from monitor.storage.login_codes import redeem_login_code
from monitor.storage.tables import WebSession
from monitor.storage.tokens import TokenInfo, hash_token
from monitor.web.deps import SAFE_METHODS, RequestConn, read_engine, shared_conn
from monitor.web.throttle import FailureThrottle

SESSION_COOKIE = "monitor_session"
LOGIN_CSRF_COOKIE = "monitor_login_csrf"
CSRF_HEADER = "x-csrf-token"
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token, and the session's CSRF token when authenticated by cookie."""

    token: TokenInfo
    via: str  # "bearer" | "session"
    csrf_token: str | None = None

    def allows(self, scope: str) -> bool:
        return self.token.allows(scope)


class LoginRequired(Exception):
    """A page request without a session: answered with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_from_request(request: Request, conn: sa.Connection) -> TokenInfo | None:
    """The verified token of a request's ``Authorization: Bearer`` header, if any.

    ``conn`` is the request's autocommit read connection: one SELECT (and, once a minute, one
    UPDATE) without BEGIN/COMMIT round trips.
    """
    token = bearer(request)
    if token is None:
        return None
    return _verify(conn, token)


_TOKEN = sa.text(
    "SELECT id, name, scope, prefix, created_at, last_used_at, revoked_at, models "
    "FROM api_tokens "
    "WHERE token_hash = :h AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())"
)


def _verify(conn: sa.Connection, token: str) -> TokenInfo | None:
    """Like ``verify_token``, but records ``last_used_at`` at most once a minute.

    Writing it on every request would make every API read a write transaction (a WAL flush
    per request); a minute's resolution is all the token list shows. Core SQL, no ORM
    session: this runs on every request.
    """
    row = conn.execute(_TOKEN, {"h": hash_token(token)}).first()
    if row is None:
        return None
    info = _token_info(row)
    if info.last_used_at is None or datetime.now(UTC) - info.last_used_at > LAST_USED_RESOLUTION:
        conn.execute(
            sa.text("UPDATE api_tokens SET last_used_at = now() WHERE id = :i"), {"i": info.id}
        )
    return info


_SESSION = sa.text(
    "SELECT t.id, t.name, t.scope, t.prefix, t.created_at, t.last_used_at, t.revoked_at, "
    "t.models, s.csrf_token FROM web_sessions s JOIN api_tokens t ON t.id = s.token_id "
    "WHERE s.id_hash = :h AND s.expires_at > now() AND t.revoked_at IS NULL "
    "AND (t.expires_at IS NULL OR t.expires_at > now())"
)


def _session_principal(request: Request, conn: sa.Connection) -> Principal | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    row = conn.execute(_SESSION, {"h": _sha256(cookie)}).first()
    if row is None:
        return None
    return Principal(_token_info(row[:8]), "session", row[8])


def _token_info(row: Any) -> TokenInfo:
    """A TokenInfo from the columns of ``_TOKEN`` (``models`` last, an array or NULL)."""
    id_, name, scope, prefix, created_at, last_used_at, revoked_at, models = row
    limited = tuple(models) if models is not None else None
    return TokenInfo(id_, name, scope, prefix, created_at, last_used_at, revoked_at, limited)


def principal(request: Request, conn: sa.Connection | None = None) -> Principal | None:
    """The caller's identity (bearer token first, then session cookie), cached per request.

    Read on ``conn`` (a GET's shared read connection) when given, else on a short-lived
    connection of its own.
    """
    if hasattr(request.state, "principal"):
        return request.state.principal
    if conn is None:
        with read_engine(request).connect() as own:
            return principal(request, own)
    found: Principal | None = None
    info = token_from_request(request, conn)
    if info is not None:
        found = Principal(info, "bearer")
    elif bearer(request) is None:
        found = _session_principal(request, conn)
    request.state.principal = found
    return found


def _auth_conn(request: Request, shared: RequestConn) -> sa.Connection | None:
    """The connection to authenticate on: a read's shared one (the route reads on it next).

    Requests that change state (ingest, forms) authenticate on a short-lived connection of
    their own: their handlers open write connections, and holding the shared one alongside
    would need two per request from the pool (enough concurrent ingest requests would each
    hold one and wait for a second).
    """
    return shared.get() if request.method in SAFE_METHODS else None


def client_address(request: Request) -> str:
    """The caller's address: the TCP peer, or what a trusted proxy says (see app middleware)."""
    return request.client.host if request.client else "unknown"


def _throttle(request: Request) -> FailureThrottle | None:
    return getattr(request.app.state, "auth_throttle", None)


def check_throttle(request: Request) -> None:
    """429 with ``Retry-After`` while this client is over its budget of wrong credentials."""
    throttle = _throttle(request)
    if throttle is None:
        return
    wait = throttle.retry_after(client_address(request))
    if wait > 0:
        seconds = max(1, int(wait + 0.999))
        raise HTTPException(
            status_code=429,
            detail=f"too many wrong tokens from this client; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def record_failure(request: Request) -> None:
    throttle = _throttle(request)
    if throttle is not None:
        throttle.failed(client_address(request))


def _authenticate(request: Request, shared: RequestConn) -> Principal | None:
    """The caller, with wrong bearer tokens counted against the client (and refused, 429,
    while it is over budget, before the token is even looked up)."""
    presented = bearer(request) is not None and not hasattr(request.state, "principal")
    if presented:
        check_throttle(request)
    who = principal(request, _auth_conn(request, shared))
    if who is None and presented:
        record_failure(request)
    return who


def csrf_ok(expected: str | None, supplied: str | None) -> bool:
    return bool(expected and supplied and hmac.compare_digest(expected, supplied))


def require_scope(scope: str) -> Callable[[Request], Principal]:
    """Dependency for API routes and /metrics: 401 unauthenticated, 403 without ``scope``.

    Cookie-authenticated state changes need the session's CSRF token in ``X-CSRF-Token``.
    """

    def dependency(request: Request, shared: RequestConn = Depends(shared_conn)) -> Principal:
        who = _authenticate(request, shared)
        if who is None:
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not who.allows(scope):
            raise HTTPException(status_code=403, detail=f"this token lacks the {scope!r} scope")
        if (
            who.via == "session"
            and request.method not in SAFE_METHODS
            and not csrf_ok(who.csrf_token, request.headers.get(CSRF_HEADER))
        ):
            raise HTTPException(status_code=403, detail="missing or invalid CSRF token")
        return who

    return dependency


def require_page(scope: str = "read") -> Callable[[Request], Principal]:
    """Dependency for HTML pages: no session redirects to /login; a weak token gets 403."""

    def dependency(request: Request, shared: RequestConn = Depends(shared_conn)) -> Principal:
        who = _authenticate(request, shared)
        if who is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target)
        if not who.allows(scope):
            raise HTTPException(status_code=403, detail=f"this token lacks the {scope!r} scope")
        return who

    return dependency


async def check_form_csrf(request: Request, who: Principal) -> None:
    """Forms posted by the browser carry ``csrf_token``; bearer callers need none."""
    if who.via != "session":
        return
    form = await request.form()
    supplied = form.get("csrf_token")
    if not csrf_ok(who.csrf_token, supplied if isinstance(supplied, str) else None):
        raise HTTPException(status_code=403, detail="missing or invalid CSRF token")


def _new_session(session: Session, info: TokenInfo) -> str:
    cookie = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=get_settings().session_max_age_seconds)
    session.add(
        WebSession(
            id_hash=_sha256(cookie),
            token_id=info.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=expires,
        )
    )
    session.execute(sa.delete(WebSession).where(WebSession.expires_at < sa.func.now()))
    return cookie


def open_session(request: Request, token: str) -> tuple[str, TokenInfo] | None:
    """Verify ``token`` and open a session for it; returns (cookie value, token info)."""
    with session_scope(request.app.state.engine) as session:
        info = _verify(session.connection(), token)
        if info is None:
            return None
        return _new_session(session, info), info


def open_session_with_code(request: Request, code: str) -> tuple[str, TokenInfo] | None:
    """Redeem a one-time login code (it is used up even if the session is never shown) and
    open a session for its token; returns (cookie value, token info)."""
    with session_scope(request.app.state.engine) as session:
        info = redeem_login_code(session.connection(), code)
        if info is None:
            return None
        return _new_session(session, info), info


def close_session(request: Request) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return
    with session_scope(request.app.state.engine) as session:
        session.execute(sa.delete(WebSession).where(WebSession.id_hash == _sha256(cookie)))


def safe_next(value: str | None) -> str:
    """A local path to go to after login (never another site: no scheme, no ``//``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
