"""Security headers on every response (pages, API, errors, redirects, static, a 500), and a
dashboard that draws its charts under a CSP without ``unsafe-eval``."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect, sync_playwright

from monitor.web.app import create_app
from tests.http import serve_app
from tests.web.conftest import Site, login

CHROMIUM = "/usr/bin/chromium"


def _check(r: httpx.Response, what: str) -> None:
    h = r.headers
    assert h.get("x-content-type-options") == "nosniff", what
    assert h.get("x-frame-options") == "DENY", what
    csp = h.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, what
    assert "unsafe-eval" not in csp, what
    assert "referrer-policy" in h, what


def test_every_kind_of_response_carries_the_headers(site: Site) -> None:
    auth = site.auth(site.reader)
    requests = [
        ("GET", "/healthz", {}, 200),
        ("GET", "/login", {}, 200),
        ("GET", "/", {}, 303),
        ("GET", "/", auth, 200),
        ("GET", "/models/nope", auth, 404),
        ("GET", "/api/v1/models", auth, 200),
        ("GET", "/api/v1/models", {}, 401),
        ("GET", "/api/v1/models/nope", auth, 404),
        ("GET", "/api/v1/models?limit=0", auth, 422),
        ("GET", "/api/v1/models/a%00b", auth, 400),
        ("POST", "/api/v1/models", auth, 405),
        ("GET", "/metrics", auth, 200),
        ("GET", "/openapi.json", auth, 200),
        ("POST", "/v1/models/fraud/predictions", {}, 401),
    ]
    with httpx.Client(base_url=site.base, timeout=30) as c:
        for method, path, headers, status in requests:
            r = c.request(method, path, headers=headers)
            what = f"{method} {path}"
            assert r.status_code == status, (what, r.text[:200])
            _check(r, what)
            # nothing behind (or about) authentication is stored by caches
            assert r.headers["cache-control"] == "no-store", what
        css = c.get("/static/app.css")
        _check(css, "static")
        assert css.headers["cache-control"] == "no-cache" and css.headers.get("etag")
        plotly = c.get("/static/vendor/plotly.min.js", headers=auth)
        assert plotly.headers["cache-control"] == "public, max-age=86400"
        _check(plotly, "plotly")
        assert "strict-transport-security" not in css.headers  # plain http here


def test_an_unhandled_error_and_https_get_them_too(engine: sa.Engine) -> None:
    app = create_app(engine, trusted_proxies=["127.0.0.1"])

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("a bug")

    with serve_app(app) as base:
        r = httpx.get(f"{base}/boom")
        assert r.status_code == 500
        _check(r, "500")
        https = httpx.get(f"{base}/healthz", headers={"X-Forwarded-Proto": "https"})
        assert https.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.browser
def test_the_dashboard_draws_under_a_csp_without_unsafe_eval(site: Site) -> None:
    violations: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation',"
                " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.set_default_timeout(30_000)
            page.goto(f"{site.base}/login")
            page.fill("input[name=token]", site.reader)
            page.click("button[type=submit]")
            for path, figures in (
                ("/models/fraud", ("heatmap", "output-score", "quality", "latency")),
                (f"/models/fraud/features/{site.data.drifted[0]}", ("drift", "distribution")),
            ):
                page.goto(f"{site.base}{path}")
                for fig in figures:
                    expect(page.locator(f"#{fig}[data-rendered='1']")).to_be_visible()
                page.hover(f"#{figures[0]} .nsewdrag")  # hover labels exercise more of plotly
                violations += page.evaluate("window.__csp")
        finally:
            browser.close()
    assert violations == []
    assert errors == []


def test_login_helper_sets_no_store_on_the_form(site: Site) -> None:
    with httpx.Client(base_url=site.base) as c:
        r = login(c, site.reader)
        assert r.status_code == 303 and r.headers["cache-control"] == "no-store"
        _check(r, "login POST")
