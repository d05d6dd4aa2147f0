"""The API against its own OpenAPI document: ``schemathesis run --checks all`` on the live server.

Every check schemathesis has: no 5xx, every status and content type documented, every body
(errors included) matching its schema, schema-valid requests accepted and schema-violating ones
refused, 405s with a correct ``Allow``, authentication not ignored. Bounded and reproducible: a
fixed seed and a fixed number of examples per operation (``SCHEMATHESIS_EXAMPLES`` explores
further by hand). ``schemathesis.toml`` beside this file states the few API rules no schema can
express and the names that exist in the test database.

The fuzzer's own admin token gets an id no generator picks (the run includes ``DELETE
/api/v1/tokens/{token_id}``, which must not revoke the credentials of the run itself); the server
has a throttle that never trips (the ``ignored_auth`` check sends wrong tokens on purpose; the
throttle is tested in test_login.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from monitor.web.throttle import FailureThrottle
from tests.http import serve_app
from tests.web.conftest import Site

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "20"))
FUZZER_TOKEN_ID = 918_273_645
EXCLUDED: list[str] = []  # path regexes left out of the run (none: the collector is in)


def _fuzzer_token(engine: sa.Engine) -> str:
    with session_scope(engine) as s:
        token, info = create_token(s, "schemathesis", "admin")
        s.execute(
            sa.text("UPDATE api_tokens SET id = :new WHERE id = :old"),
            {"new": FUZZER_TOKEN_ID, "old": info.id},
        )
    return token


def test_the_api_matches_its_openapi_document(site: Site, engine: sa.Engine) -> None:
    token = _fuzzer_token(engine)
    app = create_app(engine, throttle=FailureThrottle(burst=10**9, per_second=1.0))
    with serve_app(app) as base:
        args = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {token}",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "1",
            "--workers",
            "1",
            "--generation-allow-x00",
            "true",
            "--generation-database",
            "none",  # no examples remembered from earlier runs: the same cases every time
            "--request-timeout",
            "60",
            "--no-color",
        ]
        for pattern in EXCLUDED:
            args += ["--exclude-path-regex", pattern]
        run = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=HERE)
        report = run.stdout[-6000:] + run.stderr[-2000:]
        assert run.returncode == 0, report
        # the run itself kept its credentials
        r = httpx.get(f"{base}/api/v1/models", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated, report
    assert int(generated.group(1)) >= 500, report  # it really exercised the API
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert tested and int(tested.group(1)) >= 20, report
