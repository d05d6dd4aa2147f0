"""The Evidently report of a model whose names are hostile: escaped data, sandboxed download.

The browser test opens the downloaded file as a user would (from disk, where no response header
protects it) in real Chromium and listens for dialogs while the report renders every name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from monitor.web.report import ReportLayoutError, escape_inline_data
from monitor.web.safejson import escape_json_text, script_json
from tests.web.conftest import ARTIFACTS, Site
from tests.web.hostile import CAT, NUM, VALUES, Hostile

CHROMIUM = "/usr/bin/chromium"
HOSTILE_TEXT = ["</script>", "<!--", "<img src=x>", "a & b", "it's", "\u2028", "\u2029"]


def test_inline_json_escapes_what_html_could_act_on() -> None:
    value = {"names": HOSTILE_TEXT, "nested": {"</script>": [1.5, None, True]}}
    text = str(script_json(value))
    assert json.loads(text) == value  # the same value when read back
    for raw in ("<", ">", "&", "'", "\u2028", "\u2029"):
        assert raw not in text
    assert escape_json_text('"\u2028"') == '"\\u2028"'


def test_report_data_is_escaped_and_an_unknown_layout_is_refused() -> None:
    data = json.dumps({"widgets": [{"title": "</script><script>alert(1)</script>"}]})
    graphs = json.dumps({"g": "<img src=x onerror=alert(2)>"})
    html = (
        f"<head><script>\n    var metric_ab12 = {data};\n"
        f"    var additional_graphs_metric_ab12 = {graphs};\n</script></head>"
        "<body><script>window.drawDashboard(metric_ab12,\n new Map())</script></body>"
    )
    safe = escape_inline_data(html)
    assert "</script><script>" not in safe and "<img" not in safe
    assert safe.count("</script>") == 2  # only the file's own script ends remain
    start = safe.index("var metric_ab12 = ") + len("var metric_ab12 = ")
    parsed, _ = json.JSONDecoder().raw_decode(safe, start)
    assert parsed == json.loads(data)
    with pytest.raises(ReportLayoutError):
        escape_inline_data("<html><script>var x = 1;</script></html>")
    with pytest.raises(ReportLayoutError):
        escape_inline_data(html.replace("var additional_graphs_metric_ab12", "var other"))


def _report(site: Site, hostile: Hostile) -> httpx.Response:
    r = httpx.get(
        f"{site.base}/api/v1/models/{quote(hostile.model, safe='')}/report",
        params={"window": hostile.window_start.isoformat()},
        headers=site.auth(site.reader),
        timeout=120,
    )
    assert r.status_code == 200, r.text[:300]
    return r


@pytest.fixture(scope="module")
def report_file(site: Site, hostile: Hostile) -> Iterator[tuple[httpx.Response, Path]]:
    r = _report(site, hostile)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "hostile-report.html"
    path.write_bytes(r.content)
    yield r, path


def test_report_is_a_sandboxed_download(report_file: tuple[httpx.Response, Path]) -> None:
    r, _ = report_file
    assert r.headers["content-type"].startswith("text/html")
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "<" not in disposition and "filename*=UTF-8''" in disposition
    csp = [d.strip() for d in r.headers["content-security-policy"].split(";")]
    assert "sandbox allow-scripts" in csp  # opaque origin, no dialogs, no same-origin access
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    # no hostile name can end the report's data block
    for name in (NUM, CAT, *VALUES[:2]):
        assert name not in r.text


@pytest.mark.browser
def test_hostile_report_opens_in_chromium_without_running_script(
    report_file: tuple[httpx.Response, Path],
) -> None:
    _, path = report_file
    dialogs: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.set_default_timeout(30_000)
            page.goto(path.as_uri())  # returns at "load": inline scripts and images are done
            assert dialogs == [], f"the report ran injected script: {dialogs}"
            # the report rendered, every hostile name as text in its table
            expect(page.get_by_text("Drift is detected for")).to_be_visible()
            for name in (NUM, CAT):
                expect(page.get_by_text(name, exact=True)).to_be_visible()
            # open the hostile categorical column's details (its values on the chart axis)
            page.get_by_text(CAT, exact=True).click()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(ARTIFACTS / "hostile-report.png"), full_page=False)
        finally:
            browser.close()
    assert dialogs == []
    assert errors == []
