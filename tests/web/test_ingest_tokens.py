"""Least privilege for ingest tokens, on a real server and a real Postgres: an ingest token
writes and never reads, may be limited to named models, and creates models only when the
setting allows it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from monitor.errors import InputError
from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token, list_tokens, verify_token
from monitor.web.app import create_app
from tests.http import serve_app

RECORD = [{"id": "a", "features": {"x": 1.0}, "prediction": 1}]


@pytest.fixture()
def app(clean_db: sa.Engine):  # type: ignore[no-untyped-def]
    return create_app(clean_db)


def _token(engine: sa.Engine, scope: str, models: list[str] | None = None) -> dict[str, str]:
    with session_scope(engine) as s:
        value, _ = create_token(s, f"{scope}-token", scope, models)
    return {"Authorization": f"Bearer {value}"}


def _models(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT name FROM models ORDER BY name")).scalars())


@pytest.fixture()
def server(app, clean_db: sa.Engine) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with serve_app(app) as base:
        yield base


def test_an_ingest_token_writes_but_cannot_read(server, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    ingest, reader = _token(clean_db, "ingest"), _token(clean_db, "read")
    r = httpx.post(f"{server}/v1/models/fraud/predictions?version=v1", json=RECORD, headers=ingest)
    assert r.status_code == 200, r.text
    for path in ("/api/v1/models", "/api/v1/models/fraud", "/api/v1/alerts", "/metrics"):
        assert httpx.get(f"{server}{path}", headers=ingest).status_code == 403, path
        assert httpx.get(f"{server}{path}", headers=reader).status_code == 200, path
    assert httpx.get(f"{server}/", headers=ingest).status_code == 403
    write = httpx.post(f"{server}/v1/models/fraud/predictions", json=RECORD, headers=reader)
    assert write.status_code == 403


def test_an_ingest_token_limited_to_models(server, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    limited = _token(clean_db, "ingest", ["fraud", "credit/eu"])
    for model in ("fraud", "credit%2Feu"):
        ok = httpx.post(
            f"{server}/v1/models/{model}/predictions?version=v1", json=RECORD, headers=limited
        )
        assert ok.status_code == 200, ok.text
        labels = httpx.post(
            f"{server}/v1/models/{model}/actuals", json=[{"id": "a", "actual": 1}], headers=limited
        )
        assert labels.status_code == 200, labels.text
    other = httpx.post(
        f"{server}/v1/models/churn/predictions?version=v1", json=RECORD, headers=limited
    )
    assert other.status_code == 403 and "churn" in other.json()["detail"]
    labels = httpx.post(
        f"{server}/v1/models/churn/actuals", json=[{"id": "a", "actual": 1}], headers=limited
    )
    assert labels.status_code == 403
    report = {"model": "churn", "instance": "i", "stats": {"exported": 1}}
    assert httpx.post(f"{server}/v1/sdk/report", json=report, headers=limited).status_code == 403
    report["model"] = "fraud"
    assert httpx.post(f"{server}/v1/sdk/report", json=report, headers=limited).status_code == 200
    assert _models(clean_db) == ["credit/eu", "fraud"]


def test_ingest_tokens_may_be_kept_from_creating_models(app, server, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    app.state.ingest_tokens_create_models = False
    ingest, admin = _token(clean_db, "ingest"), _token(clean_db, "admin")
    url = f"{server}/v1/models/fraud/predictions?version=v1"
    refused = httpx.post(url, json=RECORD, headers=ingest)
    assert refused.status_code == 403 and "may not create models" in refused.json()["detail"]
    report = {"model": "fraud", "instance": "i", "stats": {}}
    assert httpx.post(f"{server}/v1/sdk/report", json=report, headers=ingest).status_code == 403
    assert _models(clean_db) == []
    assert httpx.post(url, json=RECORD, headers=admin).status_code == 200  # admin creates it
    again = httpx.post(url, json=[{**RECORD[0], "id": "b"}], headers=ingest)
    assert again.status_code == 200 and again.json()["inserted"] == 1  # it exists now
    new_version = httpx.post(
        f"{server}/v1/models/fraud/predictions?version=v2", json=RECORD, headers=ingest
    )
    assert new_version.status_code == 200  # versions of an existing model are not models


def test_tokens_store_their_models_hashed_as_ever(clean_db: sa.Engine) -> None:
    with session_scope(clean_db) as s:
        value, info = create_token(s, "serving", "ingest", [" fraud", "credit", "fraud"])
        assert info.models == ("fraud", "credit")
        with pytest.raises(InputError, match="only ingest tokens"):
            create_token(s, "reader", "read", ["fraud"])
        with pytest.raises(InputError, match="control characters"):
            create_token(s, "bad", "ingest", ["a\x00b"])
        with pytest.raises(InputError, match="at least one"):
            create_token(s, "bad", "ingest", [" ", ""])
    with session_scope(clean_db) as s:
        got = verify_token(s, value)
        assert got is not None and got.models == ("fraud", "credit") and not got.allows("read")
        assert got.allows_model("fraud") and not got.allows_model("churn")
        assert [t.models for t in list_tokens(s)] == [("fraud", "credit")]
    with clean_db.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalar_one()
    assert value not in stored and len(stored) == 64


def test_admin_api_creates_a_limited_ingest_token(server, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    admin = _token(clean_db, "admin")
    made = httpx.post(
        f"{server}/api/v1/tokens",
        json={"name": "serving", "scope": "ingest", "models": ["fraud"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["models"] == ["fraud"]
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    url = f"{server}/v1/models/other/predictions?version=v1"
    assert httpx.post(url, json=RECORD, headers=token).status_code == 403
    listed = httpx.get(f"{server}/api/v1/tokens", headers=admin).json()["items"]
    assert [t["models"] for t in listed] == [None, ["fraud"]]
    refused = httpx.post(
        f"{server}/api/v1/tokens",
        json={"name": "r", "scope": "read", "models": ["fraud"]},
        headers=admin,
    )
    assert refused.status_code == 400
