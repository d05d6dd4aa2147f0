"""API: baselines and API tokens (tokens need the admin scope; values are shown once)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from monitor.errors import NotFoundError
from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token, list_tokens, revoke_token
from monitor.web.auth import Principal, require_scope
from monitor.web.deps import FastJSON, Page, ok, page, read_conn
from monitor.web.reads import alerting
from monitor.web.reads.common import iso

router = APIRouter(prefix="/api/v1", tags=["admin"])
ADMIN = require_scope("admin")


@router.get(
    "/baselines",
    summary="Baselines per model and version",
    dependencies=[Depends(require_scope("read"))],
)
def list_baselines(
    model: str | None = Query(None, max_length=200),
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    items, more = alerting.list_baselines(conn, model, p.limit, p.offset)
    return ok(p.envelope(items, more))


@router.get("/tokens", summary="API tokens (never their values)")
def tokens(request: Request, who: Principal = Depends(ADMIN)) -> FastJSON:
    with session_scope(request.app.state.engine) as session:
        items = [
            {
                "id": t.id,
                "name": t.name,
                "scope": t.scope,
                "models": list(t.models) if t.models is not None else None,
                "prefix": t.prefix,
                "created_at": iso(t.created_at),
                "last_used_at": iso(t.last_used_at),
                "revoked_at": iso(t.revoked_at),
            }
            for t in list_tokens(session)
        ]
    return ok({"items": items, "limit": len(items), "offset": 0, "next_offset": None})


class TokenIn(BaseModel):
    # some character that is neither space nor NUL, and no NUL anywhere
    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
    scope: str = Field("read", pattern="^(read|ingest|admin)$")
    models: list[str] | None = Field(
        None, min_length=1, max_length=1000, description="ingest only: the models it may write"
    )


@router.post("/tokens", status_code=201, summary="Create a token (its value is shown only now)")
def new_token(request: Request, body: TokenIn, who: Principal = Depends(ADMIN)) -> FastJSON:
    with session_scope(request.app.state.engine) as session:
        value, info = create_token(session, body.name, body.scope, body.models)
    models = list(info.models) if info.models is not None else None
    return ok(
        {"id": info.id, "name": info.name, "scope": info.scope, "models": models, "token": value},
        201,
    )


@router.delete("/tokens/{token_id}", summary="Revoke a token")
def revoke(
    request: Request,
    token_id: int = Path(..., ge=1, le=2**31 - 1),
    who: Principal = Depends(ADMIN),
) -> FastJSON:
    with session_scope(request.app.state.engine) as session:
        if not revoke_token(session, token_id):
            raise NotFoundError(f"no active token with id {token_id}")
    return ok({"id": token_id, "revoked": True})
