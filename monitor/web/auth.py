"""Authentication for API routes: bearer tokens checked against their stored hashes.

``require_scope("read" | "ingest" | "admin")`` is a FastAPI dependency; a missing or bad token
gets 401 with a ``WWW-Authenticate: Bearer`` header, a token without the scope gets 403.
Browser sessions (login page, cookie, CSRF) build on :func:`token_from_request`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request

from monitor.storage.engine import session_scope
from monitor.storage.tokens import TokenInfo, verify_token


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def token_from_request(request: Request) -> TokenInfo | None:
    """The verified token of a request's ``Authorization: Bearer`` header, if any."""
    token = bearer(request)
    if token is None:
        return None
    with session_scope(request.app.state.engine) as session:
        return verify_token(session, token)


def require_scope(scope: str) -> Callable[[Request], TokenInfo]:
    def dependency(request: Request) -> TokenInfo:
        info = token_from_request(request)
        if info is None:
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not info.allows(scope):
            raise HTTPException(status_code=403, detail=f"this token lacks the {scope!r} scope")
        return info

    return dependency
