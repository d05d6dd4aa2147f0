"""API tokens: created once and shown once; only their SHA-256 is stored.

Tokens are 32 random bytes (URL-safe base64) prefixed ``mon_`` so they are recognisable in logs
and secret scanners. A high-entropy token needs no slow KDF: a plain SHA-256 cannot be reversed
and makes each request's lookup one indexed equality.

Least privilege: a scope grants only what it names (``SCOPE_GRANTS``): ``read`` reads,
``ingest`` writes data and cannot read any (a token in every serving process must not expose
every model's data), ``admin`` does everything. An ingest token may be limited to named models
(``models``); whether ingest tokens may create models at all is the
``MONITOR_INGEST_TOKENS_CREATE_MODELS`` setting, checked by the collector.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import InputError
from monitor.storage.tables import ApiToken

SCOPES = ("read", "ingest", "admin")
# What each scope may do: admin includes everything; ingest only writes.
SCOPE_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "ingest": frozenset({"ingest"}),
    "admin": frozenset({"read", "ingest", "admin"}),
}
MAX_MODEL_NAME = 200
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
    models: tuple[str, ...] | None = None  # ingest tokens: the models it may write (None: any)

    def allows(self, needed: str) -> bool:
        return needed in SCOPE_GRANTS[self.scope]

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.name,
        row.scope,
        row.prefix,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
        tuple(row.models) if row.models is not None else None,
    )


def model_list(models: Iterable[str] | None) -> list[str] | None:
    """Model names a token is limited to, checked and deduplicated (None: no limit)."""
    if models is None:
        return None
    names: list[str] = []
    for raw in models:
        name = raw.strip()
        if not name:  # "fraud,,credit," from a command line
            continue
        if len(name) > MAX_MODEL_NAME:
            raise InputError(f"model names must be at most {MAX_MODEL_NAME} characters")
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in name):
            raise InputError("model names must not contain control characters")
        if name not in names:
            names.append(name)
    if not names:
        raise InputError("--models needs at least one model name")
    return names


def create_token(
    session: Session, name: str, scope: str, models: Iterable[str] | None = None
) -> tuple[str, TokenInfo]:
    """Create a token; the plaintext is returned once and never stored. ``models`` limits an
    ingest token to those models."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if not name.strip():
        raise InputError("a token needs a name")
    allowed = model_list(models)
    if allowed is not None and scope != "ingest":
        raise InputError("only ingest tokens can be limited to models")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name.strip(),
        token_hash=hash_token(token),
        prefix=token[:10],
        scope=scope,
        models=allowed,
    )
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
