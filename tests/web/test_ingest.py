"""The HTTP collector on a real server and a real Postgres: per-record validation, NDJSON,
auth, idempotent resends, 413, actuals, SDK reports, and the SDK's HTTP exporter end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request, Response

from monitor import Monitor
from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from tests.http import serve_app


@pytest.fixture()
def server(clean_db: sa.Engine) -> Iterator[tuple[str, dict[str, str], sa.Engine]]:
    with session_scope(clean_db) as s:
        token, _ = create_token(s, "serving", "ingest")
    app = create_app(clean_db)
    app.state.max_ingest_body_bytes = 200_000
    with serve_app(app) as base:
        yield base, {"Authorization": f"Bearer {token}"}, clean_db


def _scalar(engine: sa.Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


def test_json_array_rejects_bad_records_and_keeps_good_neighbours(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    records = [
        {"id": "a", "features": {"x": 1.5, "c": "DE"}, "prediction": 0.9, "latency_ms": 2},
        {"id": "b", "features": "not an object", "prediction": 1},
        {"id": "c", "features": {"x": 2.0}, "prediction": 0.1, "timestamp": "yesterday"},
        {"id": "d", "features": {"x": None}, "prediction": 1, "timestamp": "2026-11-20T10:00Z"},
        ["not", "a", "record"],
        {"id": "e", "features": {"x": 1.0}, "prediction": {"nested": 1}},
    ]
    r = httpx.post(f"{base}/v1/models/fraud/predictions?version=v1", json=records, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["received"] == 6 and body["accepted"] == 2 and body["inserted"] == 2
    reasons = {item["index"]: item["error"] for item in body["rejected"]}
    assert set(reasons) == {1, 2, 4, 5}
    assert "features" in reasons[1] and "timestamp" in reasons[2]
    assert "object" in reasons[4] and "prediction" in reasons[5]
    assert body["rejected"][0]["id"] == "b"
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 2
    assert _scalar(engine, "SELECT latency_ms FROM predictions WHERE record_id = 'a'") == 2.0


def test_ndjson_with_a_broken_line_and_idempotent_resend(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    # Resends are idempotent for records carrying id and timestamp (the SDK always sends both).
    lines = [
        json.dumps({"id": f"n{i}", "timestamp": 1.8e9 + i, "features": {"x": i}, "prediction": i})
        for i in range(5)
    ]
    lines.insert(2, "{broken json")
    body = "\n".join(lines) + "\n"
    headers = {**auth, "Content-Type": "application/x-ndjson"}
    url = f"{base}/v1/models/fraud/predictions?version=v1"
    first = httpx.post(url, content=body, headers=headers).json()
    again = httpx.post(url, content=body, headers=headers).json()
    assert first["inserted"] == 5 and first["rejected"][0]["index"] == 2
    assert "line 3" in first["rejected"][0]["error"]
    assert again["inserted"] == 0 and again["duplicates"] == 5
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 5


def test_auth_and_scope(server) -> None:  # type: ignore[no-untyped-def]
    base, _, engine = server
    with session_scope(engine) as s:
        reader, _ = create_token(s, "reader", "read")
    url = f"{base}/v1/models/fraud/predictions?version=v1"
    assert httpx.post(url, json=[]).status_code == 401
    weak = httpx.post(url, json=[], headers={"Authorization": f"Bearer {reader}"})
    assert weak.status_code == 403


def test_payload_limits_give_a_clear_413(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    big = [{"id": f"r{i}", "features": {"x": "y" * 1000}, "prediction": 1} for i in range(300)]
    r = httpx.post(f"{base}/v1/models/fraud/predictions?version=v1", json=big, headers=auth)
    assert r.status_code == 413
    assert "exceeds the limit of 200000 bytes" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for rec in big:
            yield (json.dumps(rec) + "\n").encode()

    headers = {**auth, "Content-Type": "application/x-ndjson"}
    r = httpx.post(
        f"{base}/v1/models/fraud/predictions?version=v1", content=chunks(), headers=headers
    )
    assert r.status_code == 413
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 0


def test_missing_version_and_all_rejected_is_400(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, _ = server
    r = httpx.post(
        f"{base}/v1/models/fraud/predictions",
        json=[{"id": "x", "features": {"a": 1}, "prediction": 1}],
        headers=auth,
    )
    assert r.status_code == 400
    assert "version" in r.json()["rejected"][0]["error"]


def test_actuals_and_sdk_report(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    r = httpx.post(
        f"{base}/v1/models/fraud/actuals",
        json=[{"id": "a", "actual": 1}, {"actual": 0}, {"id": "b", "actual": "yes"}],
        headers=auth,
    )
    assert r.status_code == 200
    assert r.json()["inserted"] == 2 and r.json()["rejected"][0]["error"] == "id is required"
    report = {"model": "fraud", "instance": "host:1:abc", "stats": {"dropped_total": 3}}
    assert httpx.post(f"{base}/v1/sdk/report", json=report, headers=auth).status_code == 200
    assert httpx.post(f"{base}/v1/sdk/report", json={"x": 1}, headers=auth).status_code == 400
    assert _scalar(engine, "SELECT stats->>'dropped_total' FROM sdk_reports") == "3"
    assert _scalar(engine, "SELECT actual_cat FROM actuals WHERE record_id = 'b'") == "yes"


def test_sdk_http_exporter_end_to_end(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    token = auth["Authorization"].split()[1]
    client = Monitor("fraud", "2026-11", url=base, token=token, spool_dir=tmp_path)
    for i in range(300):
        client.log({"x": float(i), "c": "DE"}, 0.5, id=f"h{i}", segment={"region": "eu"})
    client.log({"x": float("nan")}, 1, id="nan")
    client.log_actual("h1", 1)
    assert client.flush(20)
    assert client.shutdown(10)
    stats = client.stats()
    assert stats["exported"] == 302 and stats["dropped_total"] == 0
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 301
    assert _scalar(engine, "SELECT count(*) FROM actuals") == 1
    assert _scalar(engine, "SELECT stats->>'exported' FROM sdk_reports") == "302"


def test_sdk_http_bad_token_keeps_records_spooled_and_says_why(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A refused token is an operator's problem, not the records': they wait in the spool
    (retried every minute) and stats() says why, instead of being thrown away."""
    base, _, engine = server
    client = Monitor("fraud", "2026-11", url=base, token="mon_wrong", spool_dir=tmp_path)
    client.log({"x": 1.0}, 1)
    assert client.flush(1) is False
    assert client.shutdown(1) is False  # held in memory until then, now spooled
    stats = client.stats()
    assert stats["spooled_records"] == 1 and stats["dropped_total"] == 0
    assert stats["export_failures"] >= 1 and "HTTP 401" in stats["last_error"]
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 0


def test_sdk_http_exporter_spools_on_503_and_429_then_replays(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real proxy in front of the collector answers 503, then 429 with Retry-After, then
    forwards: the SDK spools, backs off, replays, and every record lands once."""
    base, auth, engine = server
    answers = ["503", "429"]
    seen: list[str] = []
    proxy = FastAPI()

    @proxy.post("/{path:path}")
    async def forward(path: str, request: Request) -> Response:
        body = await request.body()
        if answers:
            code = answers.pop(0)
            seen.append(code)
            headers = {"Retry-After": "1"} if code == "429" else {}
            return Response(status_code=int(code), headers=headers)
        seen.append("forwarded")
        async with httpx.AsyncClient() as http:
            upstream = await http.post(
                f"{base}/{path}",
                params=request.query_params,
                content=body,
                headers={
                    "Authorization": request.headers["authorization"],
                    "Content-Type": "application/json",
                },
            )
        return Response(upstream.content, upstream.status_code, media_type="application/json")

    token = auth["Authorization"].split()[1]
    with serve_app(proxy) as proxy_url:
        client = Monitor(
            "fraud", "2026-11", url=proxy_url, token=token, spool_dir=tmp_path, interval=0.2
        )
        for i in range(50):
            client.log({"x": float(i)}, 1, id=f"retry{i}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not client.flush(2):
            time.sleep(0.2)
        stats = client.stats()
        client.shutdown(5)
    assert seen[:2] == ["503", "429"] and "forwarded" in seen
    assert stats["export_failures"] == 2 and stats["replayed_records"] == 50
    assert stats["spooled_records"] == 0 and stats["dropped_total"] == 0
    assert _scalar(engine, "SELECT count(DISTINCT record_id) FROM predictions") == 50
    assert _scalar(engine, "SELECT count(*) FROM predictions") == 50
