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


@dataclass
class DemoSite:
    """The demo (both models, small traffic, the newest days computed) served on 127.0.0.1."""

    base: str
    token: str
    engine: sa.Engine


DEMO_DAYS_COMPUTED = 3
"""Windows computed for the browser tests: the open incident (the last 36 h) and calm days."""


@pytest.fixture(scope="session")
def demo_site(pg_admin_url: str, session_tmp: Path) -> Iterator[DemoSite]:
    """One demo for every browser test of the dashboard, in a database of its own (the other
    web fixtures truncate theirs): seeded through the SDK's write path, computed by the
    worker's tick, alerts evaluated by the default rules, served by the real app."""
    from monitor.demo import jobs as demo_jobs
    from monitor.demo import seed as demo_seed
    from monitor.demo.data import (
        HEALTHY_MODEL,
        HEALTHY_VERSION,
        MODEL,
        VERSION_1,
        generate,
        generate_healthy,
    )
    from monitor.settings import get_settings
    from monitor.storage import migrate
    from tests.pg import fresh_database

    home = session_tmp / "demo"
    with pytest.MonkeyPatch.context() as mp, fresh_database(pg_admin_url, "monitor_demo") as url:
        mp.setenv("MONITOR_CATCHUP_MAX_AGE_DAYS", str(DEMO_DAYS_COMPUTED))
        mp.setenv("MONITOR_MULTIVARIATE_METHODS", "[]")
        get_settings.cache_clear()
        engine = sa.create_engine(url, pool_size=5, max_overflow=10)
        migrate.upgrade(engine)
        demo_seed.seed(engine, generate(baseline_rows=5_000, rows_per_hour=120), home)
        healthy = generate_healthy(baseline_rows=5_000, rows_per_hour=60)
        demo_seed.seed(engine, healthy, home)
        for name, version in ((MODEL, VERSION_1), (HEALTHY_MODEL, HEALTHY_VERSION)):
            demo_jobs.register_demo_baseline(engine, home, model=name, version=version)
            demo_jobs.default_rules(engine, name)
        demo_jobs.compute_due_windows(engine)
        with session_scope(engine) as s:
            token, _ = create_token(s, "demo-browser", "admin")
        get_settings.cache_clear()
        try:
            with serve_app(create_app(engine, max_stale_seconds=0)) as base:
                yield DemoSite(base, token, engine)
        finally:
            engine.dispose()
    get_settings.cache_clear()
