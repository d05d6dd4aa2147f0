"""Web fixtures: a database filled with synthetic results once per module, a live server, tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from tests.http import serve_app
from tests.pg import truncate_all
from tests.web.fixtures import Seeded, seed_results
from tests.web.hostile import Hostile, seed_hostile

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
"""Screenshots and reports for reviewers (gitignored)."""


@dataclass
class Site:
    base: str
    data: Seeded
    admin: str
    reader: str

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}


@pytest.fixture(scope="module")
def site(engine: sa.Engine) -> Iterator[Site]:
    truncate_all(engine)
    data = seed_results(engine)
    with session_scope(engine) as s:
        admin, _ = create_token(s, "admin-user", "admin")
        reader, _ = create_token(s, "reader", "read")
    with serve_app(create_app(engine)) as base:
        yield Site(base, data, admin, reader)
    truncate_all(engine)


@pytest.fixture(scope="module")
def hostile(
    site: Site, engine: sa.Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Hostile:
    """A model named with ``/`` and markup, with hostile feature names, in ``site``'s database."""
    return seed_hostile(engine, database_url, tmp_path_factory.mktemp("spool"))


def login(client: httpx.Client, secret: str, next_url: str = "/") -> httpx.Response:
    """Log ``client`` in as a browser does: GET the form (its CSRF cookie and field), POST it.

    ``secret`` is an API token or a one-time login code; returns the POST's answer.
    """
    form = client.get("/login", params={"next": next_url})
    found = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert found, form.text[:500]
    field = "token" if secret.startswith("mon_") else "code"
    data = {field: secret, "login_csrf": found.group(1), "next": next_url}
    return client.post("/login", data=data)
