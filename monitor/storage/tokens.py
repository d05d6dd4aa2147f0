"""API tokens: created once and shown once; only their SHA-256 is stored.

Tokens are 32 random bytes (URL-safe base64) prefixed ``mon_`` so they are recognisable in logs
and secret scanners. A high-entropy token needs no slow KDF: a plain SHA-256 cannot be reversed
and makes each request's lookup one indexed equality.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.storage.tables import ApiToken

SCOPES = ("read", "ingest", "admin")
# What each scope may do: admin includes everything, ingest may also read.
SCOPE_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "ingest": frozenset({"read", "ingest"}),
    "admin": frozenset({"read", "ingest", "admin"}),
}
PREFIX = "mon_"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, needed: str) -> bool:
        return needed in SCOPE_GRANTS[self.scope]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id, row.name, row.scope, row.prefix, row.created_at, row.last_used_at, row.revoked_at
    )


def create_token(session: Session, name: str, scope: str) -> tuple[str, TokenInfo]:
    """Create a token; the plaintext is returned once and never stored."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if not name.strip():
        raise InputError("a token needs a name")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name.strip(), token_hash=hash_token(token), prefix=token[:10], scope=scope)
    session.add(row)
    session.flush()
    return token, _info(row)


def verify_token(session: Session, token: str) -> TokenInfo | None:
    """The token's info if it exists and is not revoked or expired; records its last use."""
    row = session.execute(
        sa.select(ApiToken).where(
            ApiToken.token_hash == hash_token(token),
            ApiToken.revoked_at.is_(None),
            sa.or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > sa.func.now()),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    row.last_used_at = sa.func.now()
    return _info(row)


def list_tokens(session: Session) -> list[TokenInfo]:
    rows = session.execute(sa.select(ApiToken).order_by(ApiToken.id)).scalars()
    return [_info(r) for r in rows]


def revoke_token(session: Session, token_id: int) -> bool:
    result = session.execute(
        sa.update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
