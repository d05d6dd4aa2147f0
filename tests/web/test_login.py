"""Logging in: POST with CSRF only, one-time login codes, throttled wrong credentials, cookies
marked Secure by setting or by a trusted proxy only."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.storage.engine import session_scope
from monitor.storage.login_codes import create_login_code
from monitor.storage.tokens import create_token, revoke_token
from monitor.web.app import create_app
from monitor.web.throttle import FailureThrottle
from tests.http import free_port, serve_app
from tests.web.conftest import Site, login

ROOT = Path(__file__).resolve().parents[2]


def _code(engine: sa.Engine, token: str = "admin") -> tuple[str, int]:
    with session_scope(engine) as s:
        _, info = create_token(s, f"code owner {token}", token)
        return create_login_code(s, info.id), info.id


def _csrf(html: str) -> str:
    found = re.search(r'name="login_csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def test_a_get_never_logs_in(site: Site) -> None:
    with httpx.Client(base_url=site.base) as c:
        r = c.get("/login", params={"token": site.admin, "next": "/alerts"})
        assert r.status_code == 400 and "monitor login-link" in r.text
        assert "monitor_session" not in c.cookies
        assert site.admin not in r.text  # the token is not echoed into the page
        assert c.get("/alerts").status_code == 303  # still logged out


def test_login_needs_the_forms_csrf_token(site: Site) -> None:
    """A foreign page can post a token, but not the CSRF value of our login cookie."""
    with httpx.Client(base_url=site.base) as c:
        forged = c.post("/login", data={"token": site.reader, "login_csrf": "guess"})
        assert forged.status_code == 403 and "monitor_session" not in c.cookies
        c.get("/login")  # the browser has a login cookie, the attacker's form not its value
        forged = c.post("/login", data={"token": site.reader})
        assert forged.status_code == 403 and "monitor_session" not in c.cookies


def test_a_login_code_opens_one_session_once(site: Site, engine: sa.Engine) -> None:
    code, _ = _code(engine)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT code_hash FROM login_codes")).scalars().all()
    assert hashlib.sha256(code.encode()).hexdigest() in stored and code not in stored
    with httpx.Client(base_url=site.base) as c:
        confirm = c.get("/login", params={"code": code, "next": "/alerts"})
        assert confirm.status_code == 200 and "monitor_session" not in c.cookies
        assert confirm.headers["referrer-policy"] == "no-referrer"
        assert f'name="code" value="{code}"' in confirm.text
        r = c.post(
            "/login",
            data={"code": code, "login_csrf": _csrf(confirm.text), "next": "/alerts"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/alerts"
        assert c.get("/alerts").status_code == 200
    with httpx.Client(base_url=site.base) as c:  # a second browser with the same link
        again = login(c, code)
        assert again.status_code == 401 and "already used" in again.text
        assert "monitor_session" not in c.cookies


def test_expired_and_revoked_codes_do_not_log_in(site: Site, engine: sa.Engine) -> None:
    expired, _ = _code(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE login_codes SET expires_at = now() - interval '1 second' "),
        )
    revoked, token_id = _code(engine, "read")
    with session_scope(engine) as s:
        revoke_token(s, token_id)
    for code in (expired, revoked):
        with httpx.Client(base_url=site.base) as c:
            assert login(c, code).status_code == 401
            assert "monitor_session" not in c.cookies


def test_a_code_lives_ten_minutes_by_default(engine: sa.Engine, site: Site) -> None:
    code, _ = _code(engine)
    with engine.connect() as conn:
        ttl = conn.execute(
            sa.text("SELECT expires_at - created_at FROM login_codes WHERE code_hash = :h"),
            {"h": hashlib.sha256(code.encode()).hexdigest()},
        ).scalar_one()
    assert timedelta(minutes=9, seconds=59) < ttl <= timedelta(minutes=10, seconds=1)


def _cli_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "MONITOR_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), **extra}


def test_monitor_login_link_prints_a_working_one_time_link(site: Site, database_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "login-link", "--scope", "read"],
        env=_cli_env(database_url, MONITOR_BASE_URL=site.base),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip()
    assert link.startswith(f"{site.base}/login?code=") and "mon_" not in link
    assert "works once" in out.stderr
    code = link.split("code=", 1)[1]
    with httpx.Client(base_url=site.base) as c:
        assert login(c, code).status_code == 303
        page = c.get("/settings")
        assert "browser login (read)" in page.text  # the session's identity, read-only
        assert "csrf_token" in page.text and 'name="scope"' not in page.text


# --- throttling -------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_allows_a_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(burst=3, per_second=0.5, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("a") == 0
        throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(2.0)
    assert throttle.retry_after("b") == 0  # another client is not affected
    clock.now += 2.0
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(2.0)
    small = FailureThrottle(burst=1, per_second=1, clock=clock, max_clients=2)
    for client in ("x", "y", "z"):
        small.failed(client)
    assert small.retry_after("x") == 0  # forgotten: memory stays bounded


@pytest.fixture()
def throttled(engine: sa.Engine, site: Site) -> Iterator[tuple[str, FakeClock]]:
    clock = FakeClock()
    app = create_app(
        engine,
        trusted_proxies=["127.0.0.2"],
        throttle=FailureThrottle(burst=5, per_second=1.0, clock=clock),
    )
    with serve_app(app) as base:
        yield base, clock


def test_wrong_tokens_from_one_client_are_slowed_down(
    throttled: tuple[str, FakeClock], site: Site
) -> None:
    base, clock = throttled
    wrong = {"Authorization": "Bearer mon_wrong"}
    with httpx.Client(base_url=base) as c:
        assert [c.get("/api/v1/models", headers=wrong).status_code for _ in range(5)] == [401] * 5
        blocked = c.get("/api/v1/models", headers=wrong)
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
        # while over budget, even a right token is not checked
        assert c.get("/api/v1/models", headers=site.auth()).status_code == 429
        # the login form is throttled the same way
        form = c.get("/login")
        r = c.post("/login", data={"code": "x", "login_csrf": _csrf(form.text)})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        # X-Forwarded-For from an untrusted peer does not make another client
        spoofed = c.get("/api/v1/models", headers={**site.auth(), "X-Forwarded-For": "10.9.9.9"})
        assert spoofed.status_code == 429
        clock.now += 1.0
        assert c.get("/api/v1/models", headers=site.auth()).status_code == 200
        assert c.get("/healthz").status_code == 200  # no credential: never throttled
    # through the trusted proxy (127.0.0.2), each forwarded client has its own budget
    proxy = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=base, transport=proxy) as c:
        other = {**wrong, "X-Forwarded-For": "10.1.1.1"}
        assert c.get("/api/v1/models", headers=other).status_code == 401


def test_cookie_secure_setting(
    site: Site, monkeypatch: pytest.MonkeyPatch, engine: sa.Engine
) -> None:
    from monitor.settings import get_settings

    with httpx.Client(base_url=site.base) as c:
        r = login(c, site.reader)
        assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()
    monkeypatch.setenv("MONITOR_COOKIE_SECURE", "true")
    get_settings.cache_clear()
    try:
        with httpx.Client(base_url=site.base) as c:
            form = c.get("/login")
            assert "secure" in form.headers["set-cookie"].lower()
            csrf = _csrf(form.text)
            # httpx would not send a Secure cookie over http: hand it over as a browser would
            c.cookies.clear()
            r = c.post(
                "/login",
                data={"token": site.reader, "login_csrf": csrf},
                headers={"Cookie": f"monitor_login_csrf={csrf}"},
            )
            assert r.status_code == 303
            assert "; secure" in r.headers["set-cookie"].lower()
    finally:
        get_settings.cache_clear()


def test_monitor_serve_believes_x_forwarded_proto_from_trusted_proxies_only(
    site: Site, database_url: str, tmp_path: Path
) -> None:
    """The real server: uvicorn itself would believe any 127.0.0.1 peer; only the configured
    proxy (127.0.0.2 here) may say the request came over https."""
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    env = _cli_env(database_url, MONITOR_TRUSTED_PROXIES='["127.0.0.2"]')
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--workers", "1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)

        def login_cookie(transport: httpx.HTTPTransport | None) -> str:
            with httpx.Client(base_url=base, transport=transport) as c:
                form = c.get("/login", headers={"X-Forwarded-Proto": "https"})
                return form.headers["set-cookie"].lower()

        assert "secure" not in login_cookie(None)  # 127.0.0.1: not a trusted proxy
        assert "secure" in login_cookie(httpx.HTTPTransport(local_address="127.0.0.2"))
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "monitor serve exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("monitor serve did not start")
