"""Property-based API run (schemathesis) over the OpenAPI spec: no input makes the server 500.

Bounded: a few examples per operation, no example database, against a live server on
127.0.0.1 with an admin token. Token revocation is left out so the run keeps its credentials.
"""

from __future__ import annotations

import os

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.web.conftest import Site

# CI runs a fixed set of examples (derandomized, so a red run is reproducible); raise
# SCHEMATHESIS_EXAMPLES to explore further by hand.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
SKIP = {("DELETE", "/api/v1/tokens/{token_id}")}


def test_no_input_makes_the_api_fail_with_a_server_error(site: Site) -> None:
    spec = httpx.get(f"{site.base}/openapi.json", headers=site.auth()).json()
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    statuses: list[int] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=site.base, headers=site.auth(), timeout=30)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> "
                    f"{response.status_code} {response.text[:200]}"
                )

        run()
    assert operations >= 20
    assert len(statuses) >= 2 * operations  # the run really exercised every operation
    assert failures == []
