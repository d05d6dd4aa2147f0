"""One-time login codes: what ``monitor login-link`` and ``monitor demo`` print instead of a token.

A link that carries an API token leaks a long-lived credential into browser history, proxy logs
and screenshots. A login code opens one browser session for a token and is then dead: it is
random (128 bits), stored only as its SHA-256, expires after ``login_code_ttl_seconds`` (10
minutes) and is marked used by the same statement that accepts it, so two concurrent redemptions
cannot both succeed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.storage.tables import ApiToken, LoginCode
from monitor.storage.tokens import SCOPES, TokenInfo, create_token, list_tokens

DEFAULT_TTL = timedelta(minutes=10)
BROWSER_LOGIN = "browser login"
"""Name of the token that ``monitor login-link`` sessions belong to by default (per scope):
revoking it ends every session opened through such links."""


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_login_code(session: Session, token_id: int, ttl: timedelta = DEFAULT_TTL) -> str:
    """A new code for ``token_id``; the plaintext is returned once and never stored."""
    if ttl <= timedelta(0):
        raise InputError("a login code needs a positive lifetime")
    code = secrets.token_urlsafe(16)
    session.add(
        LoginCode(code_hash=_hash(code), token_id=token_id, expires_at=datetime.now(UTC) + ttl)
    )
    # codes that can no longer be used are kept a day (to tell "used" from "unknown"), then go
    session.execute(
        sa.delete(LoginCode).where(LoginCode.expires_at < sa.func.now() - timedelta(days=1))
    )
    session.flush()
    return code


_REDEEM = sa.text(
    "UPDATE login_codes c SET used_at = now() FROM api_tokens t "
    "WHERE c.code_hash = :h AND c.used_at IS NULL AND c.expires_at > now() "
    "AND t.id = c.token_id AND t.revoked_at IS NULL "
    "AND (t.expires_at IS NULL OR t.expires_at > now()) "
    "RETURNING t.id, t.name, t.scope, t.prefix, t.created_at, t.last_used_at, t.revoked_at, "
    "t.models"
)


def redeem_login_code(conn: sa.Connection, code: str) -> TokenInfo | None:
    """The code's token if the code is known, unused, unexpired and its token active; the
    code is used up by this call (in the caller's transaction)."""
    if not code or len(code) > 200:
        return None
    row = conn.execute(_REDEEM, {"h": _hash(code)}).first()
    if row is None:
        return None
    models = tuple(row[7]) if row[7] is not None else None  # an ingest token's models
    return TokenInfo(row[0], row[1], row[2], row[3], row[4], row[5], row[6], models)


def login_token(session: Session, scope: str, name: str = BROWSER_LOGIN) -> TokenInfo:
    """The active token named ``name`` with ``scope``, created if there is none (its value is
    never shown: it exists to own the sessions that login links open)."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    label = f"{name} ({scope})"
    for info in list_tokens(session):
        if info.name == label and info.scope == scope and info.revoked_at is None:
            return info
    _, info = create_token(session, label, scope)
    return info


def token_exists(session: Session, token_id: int) -> bool:
    row = session.get(ApiToken, token_id)
    return row is not None and row.revoked_at is None
