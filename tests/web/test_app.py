"""The app factory: /healthz answers without authentication and reports the database."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from monitor.web.app import create_app
from tests.http import serve_app


def test_healthz_reports_database_ok(engine: sa.Engine) -> None:
    with serve_app(create_app(engine)) as base:
        response = httpx.get(f"{base}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_unreachable_database() -> None:
    dead = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    with serve_app(create_app(dead)) as base:
        response = httpx.get(f"{base}/healthz", timeout=10)
    assert response.status_code == 503
    assert "cannot reach the database" in response.json()["database"]
