"""The collector's body handling on a real server: gzip (bounded decompression), unsupported
encodings, the worker's in-flight byte budget (429 + Retry-After), and 503 + Retry-After when
the database is unreachable."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from monitor.web.ingest.body import _Gunzip
from monitor.web.ingest.writers import WriterPool
from tests.http import free_port, serve_app

LIMIT = 2_000_000
RECORDS = [{"id": f"g{i}", "features": {"x": float(i)}, "prediction": 1} for i in range(3)]


@pytest.fixture()
def app_and_token(clean_db: sa.Engine) -> tuple[object, str]:
    with session_scope(clean_db) as s:
        token, _ = create_token(s, "serving", "ingest")
    app = create_app(clean_db)
    app.state.max_ingest_body_bytes = LIMIT
    return app, token


@pytest.fixture()
def server(app_and_token, clean_db: sa.Engine) -> Iterator[tuple[str, dict[str, str], sa.Engine]]:  # type: ignore[no-untyped-def]
    app, token = app_and_token
    with serve_app(app) as base:
        yield base, {"Authorization": f"Bearer {token}"}, clean_db


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar_one())


def _bomb(gigabytes: float = 1.0) -> bytes:
    """A gzip body of ~1 MB that expands to ``gigabytes`` GiB (concatenated members)."""
    member = gzip.compress(b"[" + b" " * (2**20 - 1), compresslevel=9)
    return member * int(1024 * gigabytes)


def _post(base: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/models/fraud/predictions?version=v1", content=body, headers=headers, timeout=60
    )


def test_gzip_body_lands(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    headers = {**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = _post(base, headers, gzip.compress(json.dumps(RECORDS).encode()))
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 3 and _count(engine) == 3
    ndjson = "\n".join(json.dumps({**rec, "id": rec["id"] + "n"}) for rec in RECORDS).encode()
    two_members = gzip.compress(ndjson[:20]) + gzip.compress(ndjson[20:])
    headers["Content-Type"] = "application/x-ndjson"
    r = _post(base, headers, two_members)
    assert r.status_code == 200 and r.json()["inserted"] == 3, r.text


def test_a_gzip_bomb_is_a_413_and_broken_gzip_a_400(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine = server
    headers = {**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = _post(base, headers, _bomb())
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]
    whole = gzip.compress(json.dumps(RECORDS).encode())
    for broken in (whole[: len(whole) // 2], b"not gzip at all", whole + b"junk"):
        r = _post(base, headers, broken)
        assert r.status_code == 400 and "gzip" in r.json()["detail"], r.text
    r = _post(base, {**auth, "Content-Encoding": "br"}, b"[]")
    assert r.status_code == 415
    assert _count(engine) == 0


def test_decompression_never_holds_more_than_the_limit() -> None:
    """A 1 GiB bomb through the decompressor with a 16 MiB limit: it stops at the limit, and
    Python's peak allocation stays within twice the limit."""
    limit = 16 * 2**20
    bomb = _bomb(1.0)
    gunzip = _Gunzip()
    held = bytearray()
    tracemalloc.start()
    try:
        with pytest.raises(OverflowError):
            for start in range(0, len(bomb), 65_536):
                held += gunzip.feed(bomb[start : start + 65_536], limit - len(held))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) <= limit
    assert peak < 2 * limit, peak


def test_the_inflight_budget_gives_429_with_retry_after(app_and_token, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    """Two requests of 0.6x the budget: while the first is held (its body not yet complete),
    the second is refused with 429 and Retry-After; once the first is done, it is admitted."""
    app, token = app_and_token
    app.state.ingest_max_inflight_bytes = LIMIT
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    line = (json.dumps({"id": "r", "features": {"x": 1.0}, "prediction": 1}) + "\n").encode()
    body = line * (int(LIMIT * 0.6) // len(line))

    async def scenario(base: str) -> tuple[int, str | None, int, int]:
        release = asyncio.Event()

        async def slow_body():  # type: ignore[no-untyped-def]
            yield body[: len(body) // 2]
            await release.wait()
            yield body[len(body) // 2 :]

        url = f"{base}/v1/models/fraud/predictions?version=v1"
        async with httpx.AsyncClient(timeout=30) as http:
            first = asyncio.create_task(
                http.post(
                    url, content=slow_body(), headers={**auth, "Content-Length": str(len(body))}
                )
            )
            await asyncio.sleep(0)  # the first request's headers go out before the second's
            for _ in range(200):  # bounded: until the server holds the first body's bytes
                limits = getattr(app.state, "ingest_limits", None)
                if limits is not None and limits.budget.used:
                    break
                await asyncio.sleep(0.02)
            second = await http.post(url, content=body, headers=auth)
            release.set()
            done = await first
            third = await http.post(url, content=body, headers=auth)
        return (
            second.status_code,
            second.headers.get("retry-after"),
            done.status_code,
            third.status_code,
        )

    with serve_app(app) as base:
        code, retry_after, first_code, third_code = asyncio.run(scenario(base))
    assert code == 429 and retry_after is not None and float(retry_after) > 0
    assert first_code == 200 and third_code == 200
    assert app.state.ingest_limits.budget.used == 0


def test_503_carries_retry_after_when_the_writer_cannot_connect(app_and_token) -> None:  # type: ignore[no-untyped-def]
    app, token = app_and_token
    app.state.ingest_pool = WriterPool(f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with serve_app(app) as base:
        r = _post(base, {"Authorization": f"Bearer {token}"}, json.dumps(RECORDS).encode())
    assert r.status_code == 503 and float(r.headers["retry-after"]) > 0


def test_503_carries_retry_after_when_the_database_is_down() -> None:
    engine = sa.create_engine(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none",
        connect_args={"connect_timeout": 2},
    )
    with serve_app(create_app(engine)) as base:
        r = _post(base, {"Authorization": "Bearer mon_x"}, json.dumps(RECORDS).encode())
    engine.dispose()
    assert r.status_code == 503 and float(r.headers["retry-after"]) > 0


def test_inflate_helper_rejects_trailing_garbage() -> None:
    gunzip = _Gunzip()
    data = gzip.compress(b"[]") + b"xx"
    with pytest.raises(zlib.error):
        gunzip.feed(data, 100)


def test_writers_per_worker_are_bounded(app_and_token, clean_db: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    """With every writer slot taken, a request waits its turn, then gets 503 + Retry-After;
    once a slot is free it is served. (Bounded so that workers cannot exhaust Postgres.)"""
    app, token = app_and_token
    pool = WriterPool(clean_db.url.render_as_string(hide_password=False), idle=1, size=1)
    pool.WAIT_SECONDS = 0.2
    app.state.ingest_pool = pool
    held = pool.acquire()
    auth = {"Authorization": f"Bearer {token}"}
    with serve_app(app) as base:
        busy = _post(base, auth, json.dumps(RECORDS).encode())
        pool.release(held, healthy=True)
        served = _post(base, auth, json.dumps(RECORDS).encode())
    assert busy.status_code == 503 and float(busy.headers["retry-after"]) > 0
    assert "busy" in busy.json()["detail"]
    assert served.status_code == 200 and served.json()["inserted"] == 3


def test_a_client_gone_mid_body_gives_its_bytes_back(app_and_token) -> None:  # type: ignore[no-untyped-def]
    app, token = app_and_token
    with serve_app(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/models/fraud/predictions?version=v1 HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {token}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{"
            )
            for _ in range(200):  # bounded: until the server holds the declared bytes
                limits = getattr(app.state, "ingest_limits", None)
                if limits is not None and limits.budget.used:
                    break
                time.sleep(0.02)
            assert app.state.ingest_limits.budget.used == 100_000
        for _ in range(500):  # bounded: until the server has noticed the disconnect
            if app.state.ingest_limits.budget.used == 0:
                break
            time.sleep(0.02)
        assert app.state.ingest_limits.budget.used == 0
        r = _post(base, {"Authorization": f"Bearer {token}"}, json.dumps(RECORDS).encode())
    assert r.status_code == 200
