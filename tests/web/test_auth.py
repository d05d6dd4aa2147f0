"""Bearer-token API auth: 401 without a valid token, 403 without the scope, 200 with it."""

from __future__ import annotations

from typing import Annotated

import httpx
import sqlalchemy as sa
from fastapi import Depends, FastAPI

from monitor.storage.engine import session_scope
from monitor.storage.tokens import TokenInfo, create_token
from monitor.web.auth import require_scope
from tests.http import serve_app


def _app(engine: sa.Engine) -> FastAPI:
    app = FastAPI()
    app.state.engine = engine

    @app.get("/admin-only")
    def admin_only(token: Annotated[TokenInfo, Depends(require_scope("admin"))]) -> dict[str, str]:
        return {"name": token.name}

    return app


def test_scopes_are_enforced(clean_db: sa.Engine) -> None:
    with session_scope(clean_db) as s:
        admin, _ = create_token(s, "admin", "admin")
        reader, _ = create_token(s, "reader", "read")
    with serve_app(_app(clean_db)) as base:
        missing = httpx.get(f"{base}/admin-only")
        wrong = httpx.get(f"{base}/admin-only", headers={"Authorization": "Bearer mon_nope"})
        weak = httpx.get(f"{base}/admin-only", headers={"Authorization": f"Bearer {reader}"})
        ok = httpx.get(f"{base}/admin-only", headers={"Authorization": f"Bearer {admin}"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert weak.status_code == 403
    assert ok.status_code == 200 and ok.json() == {"name": "admin"}
