"""Auth: bearer scopes, the login link and form, sessions, CSRF, redirects and 401s."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa
from fastapi import Depends, FastAPI

from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token, revoke_token
from monitor.web.auth import Principal, require_scope
from tests.http import serve_app
from tests.web.conftest import Site, login

ADMIN = Depends(require_scope("admin"))


def _app(engine: sa.Engine) -> FastAPI:
    app = FastAPI()
    app.state.engine = engine

    @app.get("/admin-only")
    def admin_only(who: Principal = ADMIN) -> dict[str, str]:
        return {"name": who.token.name}

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


PAGES = ["/", "/models/fraud", "/models/fraud/features/f00_num", "/alerts", "/baselines",
         "/settings", "/docs"]  # fmt: skip
API = ["/api/v1/models", "/api/v1/models/fraud", "/api/v1/alerts", "/api/v1/silences",
       "/api/v1/baselines", "/openapi.json", "/metrics"]  # fmt: skip


def test_every_route_but_healthz_needs_auth(site: Site) -> None:
    with httpx.Client(base_url=site.base) as c:
        assert c.get("/healthz").status_code == 200
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next=%2F"), path
        for path in API:
            r = c.get(path)
            assert r.status_code == 401, path
            assert r.json()["detail"] == "missing or invalid bearer token"
        assert c.get("/login").status_code == 200


def test_every_route_in_the_app_is_covered() -> None:
    """No route of any router in ROUTERS slips through without an auth dependency."""
    import importlib

    from monitor.web.app import ROUTERS

    checked = 0
    for spec in ROUTERS:
        module, attr = spec.split(":")
        router = getattr(importlib.import_module(module), attr)
        for route in router.routes:
            if route.path == "/login":
                continue
            names = _flatten(route.dependant) | {
                getattr(d.dependency, "__qualname__", "") for d in route.dependencies
            }
            assert any("require_scope" in n or "require_page" in n for n in names), route.path
            checked += 1
    assert checked > 30


def _flatten(dependant: object) -> set[str]:
    out: set[str] = set()
    for d in getattr(dependant, "dependencies", []):
        out.add(getattr(d.call, "__qualname__", ""))
        out |= _flatten(d)
    return out


def _login(c: httpx.Client, token: str) -> None:
    r = login(c, token, "/alerts")
    assert r.status_code == 303 and r.headers["location"] == "/alerts"
    assert "monitor_session" in c.cookies


def test_login_opens_a_session_and_logout_needs_csrf(site: Site, engine: sa.Engine) -> None:
    with httpx.Client(base_url=site.base) as c:
        _login(c, site.admin)
        page = c.get("/alerts")
        assert page.status_code == 200 and "Firing and pending" in page.text
        stored = {
            r[0] for r in engine.connect().execute(sa.text("SELECT id_hash FROM web_sessions"))
        }
        assert c.cookies["monitor_session"] not in stored  # only the hash is stored
        # the API accepts the cookie for reads, but not for writes without the CSRF header
        assert c.get("/api/v1/models").status_code == 200
        body = {"matchers": [{"name": "model", "value": "fraud"}], "duration_hours": 1}
        assert c.post("/api/v1/silences", json=body).status_code == 403
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        made = c.post("/api/v1/silences", json=body, headers={"X-CSRF-Token": csrf.group(1)})
        assert made.status_code == 201
        assert c.delete(f"/api/v1/silences/{made.json()['id']}").status_code == 403
        assert c.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        out = c.post("/logout", data={"csrf_token": csrf.group(1)})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert c.get("/alerts").status_code == 303


def test_login_form_bad_token_revoked_token_and_open_redirect(
    site: Site, engine: sa.Engine
) -> None:
    with httpx.Client(base_url=site.base) as c:
        form = c.get("/login?next=/baselines")
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert login_csrf is not None
        bad = c.post("/login", data={"token": "mon_wrong", "login_csrf": login_csrf.group(1)})
        assert bad.status_code == 401 and "invalid" in bad.text
        no_csrf = c.post("/login", data={"token": site.reader, "login_csrf": "x"})
        assert no_csrf.status_code == 403
        form = c.get("/login?next=/baselines")  # each form answer sets a fresh login cookie
        login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert login_csrf is not None
        ok = c.post(
            "/login",
            data={"token": site.reader, "login_csrf": login_csrf.group(1), "next": "/baselines"},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/baselines"
        assert c.get("/baselines").status_code == 200
        # a read token's session cannot use admin pages
        assert c.post("/settings/tokens", data={"name": "x", "scope": "admin"}).status_code == 403
    with httpx.Client(base_url=site.base) as c:
        r = login(c, site.reader, "//evil.example.com/")
        assert r.headers["location"] == "/"
    with httpx.Client(base_url=site.base) as c:
        assert login(c, "mon_bogus").status_code == 401
    # revoking the token ends its sessions
    with session_scope(engine) as s, httpx.Client(base_url=site.base) as c:
        new, info = create_token(s, "temp", "read")
        s.commit()
        _login(c, new)
        assert c.get("/").status_code == 200
        revoke_token(s, info.id)
        s.commit()
        assert c.get("/").status_code == 303
