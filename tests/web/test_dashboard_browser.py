"""The demo's dashboard in real headless Chromium, at a phone's and a laptop's width.

One demo (``demo_site``: both models, the open incident computed) and one browser serve every
test here. Each page must fit its width (tables scroll inside their own container, never the
page), draw its charts without a script error, and pass axe-core (from the npm registry,
installed by ``.ci/run``) with no serious or critical violation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from monitor.demo.data import HEALTHY_MODEL, MODEL
from tests.web.conftest import ARTIFACTS, DemoSite

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
AXE = Path(
    os.environ.get("MONITOR_AXE_JS", ROOT / ".cache/axe/node_modules/axe-core/axe.min.js")
)
WIDTHS = {"phone": (390, 844), "laptop": (1440, 900)}
PAGES = {
    "overview": "/",
    "model": f"/models/{MODEL}",
    "model-90d": f"/models/{MODEL}?range=90d",
    "feature-cat": f"/models/{MODEL}/features/channel",
    "feature-num": f"/models/{MODEL}/features/income",
    "healthy": f"/models/{HEALTHY_MODEL}",
    "alerts": "/alerts",
    "runs": "/runs",
    "baselines": "/baselines",
    "settings": "/settings",
    "api": "/docs",
}
DRIFTING = {"channel", "credit_utilization", "income"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module", params=list(WIDTHS))
def page(request: pytest.FixtureRequest, browser: Browser, demo_site: DemoSite) -> Iterator[Page]:
    """A logged-in page at one width; script errors anywhere fail the module."""
    width, height = WIDTHS[request.param]
    # axe is injected as a script: the pages' CSP (script-src 'self') would refuse it
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.set_default_timeout(30_000)
    _log_in(pg, demo_site)
    pg.width = width  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert errors == [], errors


def _log_in(pg: Page, site: DemoSite) -> None:
    """As a person does: the login form, the token pasted, submitted (a POST with its CSRF)."""
    pg.goto(f"{site.base}/login")
    pg.fill("input[name=token]", site.token)
    with pg.expect_navigation():
        pg.click("form.login-token button[type=submit]")


def _open(page: Page, base: str, path: str) -> None:
    page.goto(base + path)
    figures = page.locator("[data-figure]")
    expect(page.locator("[data-figure]:not([data-rendered='1'])")).to_have_count(0)
    assert figures.count() == page.locator("[data-rendered='1']").count()


def _axe(page: Page) -> list[dict[str, Any]]:
    assert AXE.exists(), f"axe-core missing at {AXE}: run `bash .ci/run` (npm install axe-core)"
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("name", list(PAGES))
def test_page_fits_its_width_and_passes_axe(page: Page, demo_site: DemoSite, name: str) -> None:
    _open(page, demo_site.base, PAGES[name])
    width = page.width  # type: ignore[attr-defined]
    scroll = page.evaluate("document.documentElement.scrollWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-{name}-{width}.png"), full_page=True)
    assert scroll <= width, f"{name} is {scroll} px wide at {width} px"
    assert _axe(page) == []


def test_login_page_fits_and_passes_axe(browser: Browser, demo_site: DemoSite) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    pg = context.new_page()
    pg.goto(f"{demo_site.base}/login")
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    assert _axe(pg) == []
    context.close()


def test_overview_says_which_model_needs_attention(page: Page, demo_site: DemoSite) -> None:
    _open(page, demo_site.base, "/")
    expect(page.locator("p.summary")).to_contain_text(f"1 of 2 models needs attention: {MODEL}")
    expect(page.locator("tr.status-alert a.model-link")).to_have_text(MODEL)
    expect(page.locator("tr.status-ok a.model-link")).to_have_text(HEALTHY_MODEL)


def test_an_open_incident_groups_the_drifting_features(page: Page, demo_site: DemoSite) -> None:
    _open(page, demo_site.base, f"/models/{MODEL}")
    incident = page.locator("article.incident.open")
    expect(incident).to_have_count(1)
    columns = set(incident.locator("a.incident-feature").all_text_contents())
    # one incident, not one alert row per feature
    assert columns >= DRIFTING, (columns, incident.inner_text()[:3000])
    expect(incident.locator("p.impact")).to_contain_text("estimated")
    incident.locator("a.incident-feature", has_text="channel").click()
    page.wait_for_url("**/features/channel?**window=**")
    expect(page.locator("section.verdict")).to_contain_text("drifting")
    expect(page.locator("#distribution[data-rendered='1']")).to_be_visible()


def test_effect_chart_has_visible_data_while_drifting(page: Page, demo_site: DemoSite) -> None:
    _open(page, demo_site.base, f"/models/{MODEL}/features/channel")
    chart = page.locator("#drift[data-rendered='1']")
    expect(chart).to_be_visible()
    traces = chart.evaluate(
        "el => el.data.map(t => ({name: t.name, y: t.y, x: t.x}))"
    )  # what plotly drew
    effect = next(t for t in traces if t["name"] == "effect size")
    tolerance = next(t for t in traces if t["name"] == "tolerance")
    drifted = next(t for t in traces if t["name"] == "drifted window")
    assert len(drifted["x"]) >= 6
    tol = max(v for v in tolerance["y"] if v is not None)
    newest = [y for y in effect["y"] if y is not None][-6:]
    assert min(newest) > tol  # the newest windows sit above the tolerance line
    # and the line is on screen: its SVG path spans the plot, not a blank chart
    box = chart.locator("g.scatterlayer .trace").nth(2).locator("path.js-line").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 5
    pvalue = page.locator("#pvalue[data-rendered='1']")
    expect(pvalue.locator("g.ytick text").last).to_have_text("< 1e-16")


@pytest.mark.parametrize("width", [360, 1920])
def test_the_extreme_widths(browser: Browser, demo_site: DemoSite, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    _log_in(pg, demo_site)
    for path in (PAGES["overview"], PAGES["model"], PAGES["feature-cat"], PAGES["alerts"]):
        _open(pg, demo_site.base, path)
        assert pg.evaluate("document.documentElement.scrollWidth") <= width, path
    context.close()
