"""Server-rendered pages: what they show, escaping of user-supplied names, links, forms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

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
    assert '1 of 1 model needs attention</b>: <a href="/models/fraud">fraud</a>' in html
    assert "baseline 0.810" in html  # performance is read against the baseline's value


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
    for fig in ("output-score", "perf-roc_auc", "dataset", "quality", "volume", "latency"):
        assert _figure(html, fig)["data"], fig
    assert '<script src="/static/vendor/plotly.min.js">' in html
    assert "Open alerts" in html and "feature drift" in html
    assert "Effect now" in html and "Drifting since" in html


def _trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t["name"] == name)


def test_output_drift_is_drawn_as_effect_with_band_and_tolerance(
    browser: httpx.Client, site: Site
) -> None:
    fig = _figure(browser.get("/models/fraud").text, "output-score")
    effect = _trace(fig, "effect size")
    band = [t for t in fig["data"] if t["name"] == "90% interval"]
    assert len(band) == 2 and band[1]["fill"] == "tonexty"
    assert set(_trace(fig, "tolerance")["y"]) == {0.1}
    drifted = _trace(fig, "drifted window")
    assert len(drifted["x"]) == 4 * 24  # every window of the drift period
    inside = [
        y for x, y in zip(effect["x"], effect["y"], strict=True)
        if x and site.data.drift_start.isoformat()[:19].replace("T", " ") <= x
        < site.data.drift_end.isoformat()[:19].replace("T", " ")
    ]  # fmt: skip
    assert len(inside) == 4 * 24 and min(inside) >= 0.3  # the chart has data while it drifts
    assert "shift" in fig["layout"]["yaxis"]["title"]["text"]


def test_performance_is_one_labelled_chart_per_metric(browser: httpx.Client) -> None:
    fig = _figure(browser.get("/models/fraud").text, "perf-roc_auc")
    names = [t["name"] for t in fig["data"]]
    assert "realised" in names and "estimated" in names
    assert "baseline" in names and "estimate band" in names
    assert fig["layout"]["yaxis"]["title"]["text"] == "ROC AUC (higher is better)"
    assert fig["layout"]["xaxis"]["title"]["text"] == "window start (UTC)"


def test_ninety_days_name_their_bucket(browser: httpx.Client) -> None:
    html = browser.get("/models/fraud", params={"range": "90d"}).text
    # the fixture holds 14 days: 90 days of hourly windows are drawn in 6 h buckets
    assert "one point per 6 h bucket" in html
    assert _figure(html, "volume")["layout"]["title"]["text"] == "Predictions per 6 h bucket"
    assert "per window" not in html
    html = browser.get("/models/fraud", params={"range": "7d"}).text
    assert "one point per window (1 h)" in html


def test_an_empty_segment_says_so(browser: httpx.Client) -> None:
    html = browser.get("/models/fraud", params={"segment": "region=nowhere"}).text
    assert "No drift results for segment region=nowhere in this range." in html
    assert 'id="heatmap-spec"' not in html
    assert "all traffic" in html


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
    assert "Drifted windows, largest change first" in html
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


def test_baselines_page_is_a_formatted_summary(browser: httpx.Client, site: Site) -> None:
    html = browser.get("/baselines").text
    assert "{&#39;" not in html and "{'" not in html  # no Python dict anywhere
    assert "CBPE, isotonic calibration, decision threshold 0.500, fitted on 50,000 rows." in html
    assert "<td>roc_auc</td><td class=\"n\">0.8100</td><td class=\"n\">0.8050</td>" in html
    assert "Columns in training (13)" in html  # 12 features and the score
    assert "4 categories: a, b, c, …" in html  # the three most frequent
    docs = browser.get("/docs").text
    assert "/api/v1/models/{model}/heatmap" in docs
    assert browser.get("/openapi.json").json()["info"]["title"] == "monitor"


def test_static_plotly_is_served_locally(browser: httpx.Client) -> None:
    r = browser.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert "javascript" in r.headers["content-type"]


def test_feature_page_leads_with_the_effect_and_clamps_p_values(
    browser: httpx.Client, site: Site
) -> None:
    """A categorical feature whose every drifted p-value is 0: its charts are not blank."""
    html = browser.get("/models/fraud/features/f03_cat").text
    drift = _figure(html, "drift")
    effect = _trace(drift, "effect size")
    assert sum(1 for y in effect["y"] if y is not None and y >= 0.08) == 4 * 24
    assert drift["layout"]["yaxis"]["tickformat"] == ".0%"  # a share of rows, in percent
    pvalue = _figure(html, "pvalue")
    ys = [y for y in _trace(pvalue, "p-value")["y"] if y is not None]
    assert min(ys) == 1e-16  # p = 0 drawn at the floor, not dropped from a log axis
    assert pvalue["layout"]["yaxis"]["ticktext"][-1] == "< 1e-16"
    assert len(_trace(pvalue, "p < 1e-16")["x"]) == 4 * 24
    # the table: effect first, p-values clamped in text too
    table = html[html.index("Drifted windows, largest change first") :]
    assert "&lt; 1e-16" in table and "0.0000" not in table
    # the verdict of the window it opens on (the one that moved most, in the drift period)
    assert "drifted</span> from <b>" in html and "96 drifted windows" in html


def test_what_changed_numeric_and_categorical(browser: httpx.Client, site: Site) -> None:
    num = browser.get(f"/models/fraud/features/{site.data.drifted[0]}").text
    assert "What changed: baseline vs window" in num
    for stat in ("mean", "median", "95th percentile", "missing"):
        assert f"<td>{stat}</td>" in num, stat
    cat = browser.get("/models/fraud/features/f03_cat").text
    movers = cat[cat.index('class="changes movers"') :]
    assert 'zz_new <span class="badge drift">new</span>' in movers
    assert "pts</td>" in movers


def test_alerts_page_says_when_notifications_fail(
    browser: httpx.Client, site: Site, engine: sa.Engine
) -> None:
    assert "notification" not in browser.get("/alerts").text.split("<h2>Incidents")[0]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO deliveries (channel_id, event_id, event_type, payload, status, "
                "attempts, last_status_code, last_error) SELECT channel_id, 'evt-x', "
                "'alert.firing', payload, 'failed', 8, 502, 'Bad Gateway' FROM deliveries "
                "WHERE id = :d"
            ),
            {"d": site.data.extra["delivery"]},
        )
    try:
        html = browser.get("/alerts").text
        assert "1 notification failed and 0 are being retried in the last 7 days" in html
        assert "(latest: ops-webhook: Bad Gateway)" in html
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM deliveries WHERE event_id = 'evt-x'"))
