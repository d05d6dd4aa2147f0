"""Real Chromium (Debian's, via Playwright) over the dashboard: log in, read the charts, silence.

Screenshots go to ``test-artifacts/`` (gitignored) so a reviewer can see what was asserted.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.web.conftest import ARTIFACTS, Site

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Page]:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        pg.set_default_timeout(30_000)
        yield pg
        context.close()
        browser.close()
        assert errors == [], errors


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_login_form_then_models_page(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/models/fraud")
    expect(page).to_have_url(f"{site.base}/login?next=%2Fmodels%2Ffraud")
    page.fill("input[name=token]", site.admin)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{site.base}/models/fraud")
    page.goto(f"{site.base}/")
    expect(page.locator("a.model-link")).to_have_text("fraud")
    expect(page.locator("a.alerts-firing")).to_have_text("1 firing")
    _shot(page, "01-models")


def test_model_page_renders_heatmap_and_charts(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/models/fraud")
    heat = page.locator("#heatmap[data-rendered='1']")
    expect(heat).to_be_visible()
    # plotly drew the heatmap image and one y tick per feature, the hostile name as text
    expect(heat.locator("g.hm image")).to_have_count(1)
    ticks = heat.locator("g.ytick text")
    expect(ticks).to_have_count(12)
    assert "<script>alert(1)</script>" in ticks.all_text_contents()
    tops = ticks.evaluate_all("els => els.map(e => [e.textContent, e.getBoundingClientRect().top])")
    ranked = [name for name, _ in sorted(tops, key=lambda t: t[1])]
    assert sorted(ranked[:3]) == sorted(site.data.drifted)  # most drifted at the top
    for fig in ("output-score", "dataset", "quality", "perf-roc_auc", "volume", "latency"):
        chart = page.locator(f"#{fig}[data-rendered='1']")
        expect(chart).to_be_visible()
        assert chart.locator("path.js-line").count() >= 1, fig
    _shot(page, "02-model")


def test_heatmap_click_opens_feature_window(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/models/fraud")
    heat = page.locator("#heatmap[data-rendered='1']")
    expect(heat).to_be_visible()
    box = heat.locator("g.hm").bounding_box() or heat.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    # the first row is the most drifted feature; the drift days sit at 6-10 of 14
    page.mouse.click(box["x"] + box["width"] * 8 / 14, box["y"] + 3)
    page.wait_for_url("**/features/**window=**")
    assert any(f in page.url for f in site.data.drifted)
    expect(page.locator("#distribution[data-rendered='1']")).to_be_visible()
    expect(page.locator("#drift[data-rendered='1']")).to_be_visible()
    bars = page.locator("#distribution g.point")
    assert bars.count() >= 8  # baseline and current bars
    _shot(page, "03-feature")


def test_feature_page_of_a_categorical_feature(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/models/fraud")
    page.locator("a.feature-link", has_text="f03_cat").click()
    expect(page.locator("#distribution[data-rendered='1']")).to_be_visible()
    expect(page.locator("#drift[data-rendered='1'] path.js-line").first).to_be_attached()
    page.locator("a.window-link").first.click()
    expect(page.locator("#distribution[data-rendered='1']")).to_be_visible()
    expect(page.locator("#distribution g.xtick text", has_text="zz_new")).to_have_count(1)
    _shot(page, "04-feature-categorical")


def test_create_and_end_a_silence(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/alerts")
    expect(page.locator("tr.state-firing a.alert-link")).to_have_count(1)
    form = page.locator("form.silence-form")
    form.locator("input[name=model]").fill("fraud")
    form.locator("input[name=column]").fill(site.data.drifted[0])
    form.locator("input[name=comment]").fill("retraining, back tomorrow")
    form.locator("button[type=submit]").click()
    row = page.locator("tr.silence", has_text="retraining, back tomorrow")
    expect(row).to_have_count(1)
    _shot(page, "05-silence-created")
    row.locator("button.end-silence").click()
    expect(page.locator("tr.silence", has_text="retraining, back tomorrow")).to_have_count(0)
    expect(page.locator("details", has_text="Ended silences")).to_have_count(1)
    _shot(page, "06-silence-ended")


def test_alert_link_leads_to_window_and_feature(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/alerts")
    page.locator("tr.state-firing a.alert-link").click()
    page.wait_for_url(f"**/features/{site.data.drifted[0]}?window=**")
    expect(page.locator("#distribution[data-rendered='1']")).to_be_visible()
    _shot(page, "07-alert-to-feature")
