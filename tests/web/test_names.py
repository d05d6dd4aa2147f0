"""Names holding ``/``, markup or NUL bytes: routed, escaped, refused with a 4xx, never a 5xx."""

from __future__ import annotations

import importlib
import re
from urllib.parse import quote

import httpx

from monitor.web.app import ROUTERS
from tests.web.conftest import Site
from tests.web.hostile import NUM, Hostile


def _q(name: str) -> str:
    return quote(name, safe="")


def test_every_route_parameter_holding_a_name_uses_the_name_convertor() -> None:
    checked = 0
    for spec in ROUTERS:
        module, attr = spec.split(":")
        for route in getattr(importlib.import_module(module), attr).routes:
            for param in re.findall(r"{(model|feature)(:[a-z]+)?}", route.path):
                assert param[1] == ":name", route.path
                checked += 1
    assert checked >= 12


def test_a_model_named_with_a_slash_works_in_the_api(site: Site, hostile: Hostile) -> None:
    with httpx.Client(base_url=site.base, headers=site.auth(site.reader), timeout=30) as c:
        listed = [m["name"] for m in c.get("/api/v1/models").json()["items"]]
        assert hostile.model in listed and "/" in hostile.model
        detail = c.get(f"/api/v1/models/{_q(hostile.model)}")
        assert detail.status_code == 200, detail.text
        assert detail.json()["name"] == hostile.model
        feature = c.get(f"/api/v1/models/{_q(hostile.model)}/features/{_q(NUM)}")
        assert feature.status_code == 200, feature.text
        assert feature.json()["feature"] == NUM
        runs = c.get(f"/api/v1/models/{_q(hostile.model)}/runs")
        assert runs.status_code == 200
        # the same name, unencoded, is another path: a clear 404, not someone else's model
        assert c.get(f"/api/v1/models/{hostile.model}").status_code == 404


def test_a_model_named_with_a_slash_works_in_pages(site: Site, hostile: Hostile) -> None:
    with httpx.Client(base_url=site.base, headers=site.auth(), timeout=30) as c:
        overview = c.get("/")
        link = f'href="/models/{_q(hostile.model)}"'
        assert link in overview.text
        page = c.get(f"/models/{_q(hostile.model)}")
        assert page.status_code == 200, page.text[:300]
        assert hostile.model not in page.text  # shown escaped
        feature = c.get(f"/models/{_q(hostile.model)}/features/{_q(NUM)}")
        assert feature.status_code == 200, feature.text[:300]
        assert NUM not in feature.text


def test_nul_bytes_in_urls_are_a_400(site: Site) -> None:
    with httpx.Client(base_url=site.base, headers=site.auth(), timeout=30) as c:
        for path in ("/api/v1/models/a%00b", "/models/a%00b", "/api/v1/alerts?model=%00"):
            r = c.get(path)
            assert r.status_code == 400, path
            assert "NUL" in r.json()["detail"]
