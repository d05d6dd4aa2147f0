"""Server-rendered pages: what they show, escaping of user-supplied names, links, forms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.web.conftest import Site, login
from tests.web.fixtures import HOSTILE


@pytest.fixture()
def browser(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base, timeout=30) as c:
        r = login(c, site.admin)
        assert r.status_code == 303
        yield c


def _figure(html: str, figure_id: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{figure_id}-spec">(.*?)</script>', html)
    assert m, figure_id
    return json.loads(m.group(1))


def test_models_page(browser: httpx.Client) -> None:
    html = browser.get("/").text
    assert 'href="/models/fraud"' in html
    assert "3</b> / 12 features drifted" in html or "0</b> / 12 features drifted" in html
    assert "1 firing" in html
    assert "roc_auc" in html


def test_model_page_heatmap_and_charts(browser: httpx.Client, site: Site) -> None:
    r = browser.get("/models/fraud")
    assert r.status_code == 200
    html = r.text
    heat = _figure(html, "heatmap")
    trace = heat["data"][0]
    assert trace["type"] == "heatmap" and len(trace["z"]) == 12
    assert trace["y"][0] in site.data.drifted
    # a hostile feature name is HTML-escaped both in the figure and in the page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in trace["y"]
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for fig in ("prediction", "dataset", "quality", "performance", "volume", "latency"):
        assert _figure(html, fig)["data"], fig
    assert '<script src="/static/vendor/plotly.min.js">' in html
    assert "Open alerts" in html and "feature drift" in html


def test_model_page_range_segment_and_sort(browser: httpx.Client) -> None:
    r = browser.get("/models/fraud", params={"range": "7d", "segment": "region=eu", "sort": "name"})
    assert r.status_code == 200
    heat = _figure(r.text, "heatmap")["data"][0]
    assert heat["y"] == sorted(heat["y"])
    assert len(heat["x"]) == 7 * 24
    bad = browser.get("/models/fraud", params={"start": "not a date"})
    assert bad.status_code == 400 and "ISO 8601" in bad.text


def test_feature_page_with_hostile_name(browser: httpx.Client) -> None:
    r = browser.get("/models/fraud/features/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code == 200
    assert HOSTILE not in r.text
    assert _figure(r.text, "drift")["data"]


def test_feature_page_distribution_and_window_links(browser: httpx.Client, site: Site) -> None:
    f = site.data.drifted[0]
    html = browser.get(f"/models/fraud/features/{f}").text
    dist = _figure(html, "distribution")
    assert [t["name"] for t in dist["data"]] == ["baseline", "current"]
    assert "Drifted windows, worst first" in html
    link = re.search(r'class="window-link" href="([^"]+)"', html)
    assert link
    again = browser.get(link.group(1).replace("&amp;", "&"))
    assert again.status_code == 200
    cat = browser.get("/models/fraud/features/f03_cat?window=range").text
    assert _figure(cat, "distribution")["data"][0]["type"] == "bar"
    assert "zz_new" in cat


def test_alerts_page_links_to_window_and_feature(browser: httpx.Client, site: Site) -> None:
    html = browser.get("/alerts").text
    column = site.data.drifted[0]
    assert re.search(rf'class="alert-link" href="/models/fraud/features/{column}\?window=', html)
    assert "ops-webhook" in html and ": 503 (120 ms)" in html


def test_silence_form_needs_csrf_then_creates_and_ends(browser: httpx.Client) -> None:
    page = browser.get("/alerts").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    forged = browser.post("/alerts/silences", data={"model": "fraud", "hours": "1"})
    assert forged.status_code == 403
    made = browser.post(
        "/alerts/silences",
        data={"csrf_token": token.group(1), "model": "fraud", "column": "<b>x</b>", "hours": "1"},
    )
    assert made.status_code == 303
    page = browser.get("/alerts").text
    assert "column=&lt;b&gt;x&lt;/b&gt;" in page
    sid = re.search(r'data-silence="(\d+)"', page)
    assert sid
    ended = browser.post(
        f"/alerts/silences/{sid.group(1)}/end", data={"csrf_token": token.group(1)}
    )
    assert ended.status_code == 303
    assert f'data-silence="{sid.group(1)}"' not in browser.get("/alerts").text
    bad = browser.post("/alerts/silences", data={"csrf_token": token.group(1), "hours": "1"})
    assert "at least one matcher" in browser.get(bad.headers["location"]).text


def test_settings_baselines_docs(browser: httpx.Client) -> None:
    settings = browser.get("/settings").text
    assert "feature drift" in settings and "ops-webhook" in settings and "admin-user" in settings
    token = re.search(r'name="csrf_token" value="([^"]+)"', settings)
    assert token
    made = browser.post(
        "/settings/tokens", data={"csrf_token": token.group(1), "name": "grafana", "scope": "read"}
    )
    assert made.status_code == 200
    assert re.search(r'class="new-token">mon_', made.text)
    assert "50,000" in browser.get("/baselines").text
    docs = browser.get("/docs").text
    assert "/api/v1/models/{model}/heatmap" in docs
    assert browser.get("/openapi.json").json()["info"]["title"] == "monitor"


def test_static_plotly_is_served_locally(browser: httpx.Client) -> None:
    r = browser.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert "javascript" in r.headers["content-type"]
