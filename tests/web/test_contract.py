"""The OpenAPI document and the answers it describes, one rule at a time (schemathesis explores
the rest in test_schemathesis.py): error bodies, documented statuses, 405 ``Allow``, NUL bytes,
``/metrics`` as text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import Site


@pytest.fixture(scope="module")
def spec(site: Site) -> dict[str, Any]:
    return httpx.get(f"{site.base}/openapi.json", headers=site.auth()).json()


def test_every_operation_documents_its_errors_as_problems(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["required"] == ["detail"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    operations = 0
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if path == "/healthz":
                assert op["security"] == []
                continue
            operations += 1
            assert op["security"] == [{"bearerAuth": []}], (method, path)
            responses = op["responses"]
            for status in ("400", "401", "403", "422", "429", "503"):
                assert status in responses, (method, path, status)
            schema = responses["401"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
            if "{" in path:
                assert "404" in responses, (method, path)
    assert operations >= 25


def test_metrics_and_the_report_are_documented_as_what_they_are(spec: dict[str, Any]) -> None:
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    report = spec["paths"]["/api/v1/models/{model}/report"]["get"]["responses"]["200"]
    assert list(report["content"]) == ["text/html"]


def test_a_422_body_is_the_documented_problem(site: Site) -> None:
    r = httpx.get(f"{site.base}/api/v1/models", params={"limit": 0}, headers=site.auth())
    assert r.status_code == 422
    body = r.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["detail"], str)
    assert body["errors"] == [{"loc": ["query", "limit"], "msg": body["errors"][0]["msg"]}]


def test_405_names_every_method_of_the_path(site: Site) -> None:
    with httpx.Client(base_url=site.base, headers=site.auth()) as c:
        r = c.get("/api/v1/rules/1")  # PATCH and DELETE live on two routes
        assert r.status_code == 405
        assert r.headers["allow"] == "DELETE, PATCH"
        assert r.json() == {"detail": "Method Not Allowed"}
        r = c.put("/api/v1/silences")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/rules", {"model": "fr\x00aud", "name": "n", "metric": "drift.drifted"}),
        ("/api/v1/tokens", {"name": "a\x00b", "scope": "read"}),
        (
            "/api/v1/silences",
            {"matchers": [{"name": "model", "value": "a\x00"}], "duration_hours": 1},
        ),
        (
            "/api/v1/silences",
            {"matchers": [{"name": "model", "value": "a"}], "duration_hours": 1, "comment": "\x00"},
        ),
    ],
)
def test_a_nul_byte_in_any_string_field_is_a_4xx(site: Site, path: str, body: Any) -> None:
    r = httpx.post(f"{site.base}{path}", json=body, headers=site.auth())
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert isinstance(r.json()["detail"], str)


def test_strict_json_types(site: Site) -> None:
    """A JSON body says what it means: 0 is not false, "2" is not 2."""
    with httpx.Client(base_url=site.base, headers=site.auth()) as c:
        assert c.patch("/api/v1/rules/1", json={"enabled": 0}).status_code == 422
        silence = {"matchers": [{"name": "model", "value": "a"}], "duration_hours": "2"}
        assert c.post("/api/v1/silences", json=silence).status_code == 422
