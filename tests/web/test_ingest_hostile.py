"""The collector against hostile input, on a real server and a real Postgres: no input gives a
5xx, and a bad record costs only itself (its index and reason are in the answer, the good
records of the same request land)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sdk.records import CleanCounts, WriteResult
from monitor.storage.engine import session_scope
from monitor.storage.tokens import create_token
from monitor.web.app import create_app
from monitor.web.ingest.routes import Outcome, RejectLog
from tests.http import serve_app
from tests.pg import truncate_all

GOOD = {"features": {"x": 1.5, "c": "DE"}, "prediction": 0.5}


@pytest.fixture(scope="module")
def collector(engine: sa.Engine) -> Iterator[tuple[str, dict[str, str]]]:
    """One server for the module; each test writes to a model of its own (no truncation
    between tests: it cost a second a test)."""
    truncate_all(engine)
    with session_scope(engine) as s:
        token, _ = create_token(s, "serving", "ingest")
    app = create_app(engine)
    app.state.max_ingest_body_bytes = 2_000_000
    with serve_app(app) as base:
        yield base, {"Authorization": f"Bearer {token}"}
    truncate_all(engine)


@pytest.fixture()
def server(collector, engine: sa.Engine) -> tuple[str, dict[str, str], sa.Engine, str]:  # type: ignore[no-untyped-def]
    """The module's server, its token, the engine and a model name no other test uses."""
    return (*collector, engine, f"m-{uuid.uuid4().hex[:12]}")


def _count(engine: sa.Engine, model: str, table: str = "predictions") -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    f"SELECT count(*) FROM {table} t JOIN models m ON m.id = t.model_id "
                    "WHERE m.name = :m"
                ),
                {"m": model},
            ).scalar_one()
        )


def _models(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM models")).scalar_one())


def _post(
    base: str, auth: dict[str, str], body: str | bytes, model: str = "fraud", **headers: str
) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/models/{model}/predictions?version=v1",
        content=body,
        headers={**auth, "Content-Type": "application/json", **headers},
        timeout=60,
    )


def _sandwich(bad: str) -> str:
    """A JSON array: a good record, the bad one (raw JSON text), another good record."""
    first = json.dumps({"id": "good-0", **GOOD})
    last = json.dumps({"id": "good-2", **GOOD})
    return f"[{first}, {bad}, {last}]"


HOSTILE = {
    "nul in a feature name": '{"id": "b", "features": {"a\\u0000b": 1}, "prediction": 1}',
    "nul in a segment key": '{"id": "b", "features": {"x": 1}, "segment": {"r\\u0000": "eu"}}',
    "nul in a proba class": '{"id": "b", "features": {"x": 1}, "proba": {"\\u0000": 0.4}}',
    "nul in the id": '{"id": "b\\u0000", "features": {"x": 1}}',
    "nul in the version": '{"id": "b", "features": {"x": 1}, "version": "v\\u0000"}',
    "reserved feature name": '{"id": "b", "features": {"@prediction": 1}}',
    "empty feature name": '{"id": "b", "features": {"": 1}}',
    "lone surrogate in a feature name": '{"id": "b", "features": {"\\ud800": 1}}',
    "lone surrogate in a value": '{"id": "b", "features": {"c": "\\udfff"}}',
    "milliseconds timestamp": '{"id": "b", "features": {"x": 1}, "timestamp": 1e12}',
    "huge timestamp": '{"id": "b", "features": {"x": 1}, "timestamp": 1e20}',
    "negative timestamp": '{"id": "b", "features": {"x": 1}, "timestamp": -5}',
    "digits timestamp": '{"id": "b", "features": {"x": 1}, "timestamp": ' + "9" * 4300 + "}",
    "year 0 timestamp": '{"id": "b", "features": {"x": 1}, "timestamp": "0000-01-01T00:00:00"}',
    "control character in a segment key": '{"features": {"x": 1}, "segment": {"a\\nb": "eu"}}',
    "4300-digit id": '{"id": ' + "7" * 4300 + ', "features": {"x": 1}}',
    "5000-digit id": '{"id": -' + "7" * 5000 + ', "features": {"x": 1}}',
    "5000-digit version": '{"features": {"x": 1}, "version": ' + "7" * 5000 + "}",
    "deep features": '{"id": "b", "features": {"x": ' + "[" * 500 + "]" * 500 + "}}",
    "depth 100k": '{"id": "b", "features": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}",
    "long feature name": '{"id": "b", "features": {"' + "n" * 5000 + '": 1}}',
    "nested id": '{"id": {"x": [1, 2]}, "features": {"x": 1}}',
}


@pytest.mark.parametrize("bad", list(HOSTILE.values()), ids=list(HOSTILE))
def test_a_hostile_record_is_rejected_alone(server, bad: str) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine, model = server
    r = _post(base, auth, _sandwich(bad), model)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["received"] == 3 and body["accepted"] == 2 and body["inserted"] == 2, body
    assert [item["index"] for item in body["rejected"]] == [1]
    assert body["rejected"][0]["error"]
    assert _count(engine, model) == 2


def test_a_4300_digit_feature_value_lands_as_a_counted_null(server) -> None:  # type: ignore[no-untyped-def]
    """A number beyond a double's range is a value that cannot be stored as meant: the record
    lands with a null in its place, counted as non-finite (as the SDK counts inf)."""
    base, auth, engine, model = server
    bad = '{"id": "b", "features": {"x": ' + "9" * 4300 + ', "c": "DE"}, "prediction": 1}'
    r = _post(base, auth, _sandwich(bad), model)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 3 and r.json()["cleaned"]["nonfinite"] == 1
    with engine.connect() as conn:
        num = conn.execute(
            sa.text(
                "SELECT num FROM predictions p JOIN models m ON m.id = p.model_id "
                "WHERE record_id = 'b' AND m.name = :m"
            ),
            {"m": model},
        ).scalar()
    assert num == [None]


def test_timestamps_follow_one_rule_seconds(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine, model = server
    records = [
        {"id": "s", "timestamp": 1_765_000_000, **GOOD},
        {"id": "f", "timestamp": 1_765_000_000.25, **GOOD},
        {"id": "ms", "timestamp": 1_765_000_000_000, **GOOD},
        {"id": "ns", "timestamp": 1_765_000_000_000_000_000, **GOOD},
        {"id": "b", "timestamp": True, **GOOD},
    ]
    r = _post(base, auth, json.dumps(records), model)
    assert r.status_code == 200, r.text
    reasons = {item["index"]: item["error"] for item in r.json()["rejected"]}
    assert set(reasons) == {2, 3, 4}
    assert "milliseconds" in reasons[2] and "nanoseconds" in reasons[3]
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.text(
                    "SELECT record_id, extract(epoch FROM event_ts) FROM predictions p "
                    "JOIN models m ON m.id = p.model_id WHERE m.name = :m"
                ),
                {"m": model},
            ).all()
        )
    assert {k: float(v) for k, v in rows.items()} == {"s": 1_765_000_000.0, "f": 1_765_000_000.25}


@pytest.mark.parametrize("name", ["%00", "a%00b", "%ED%A0%80", "%01x"])
def test_hostile_model_names_are_a_4xx(server, name: str) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine, _ = server
    models = _models(engine)
    r = httpx.post(
        f"{base}/v1/models/{name}/predictions?version=v1", json=[GOOD], headers=auth, timeout=30
    )
    assert 400 <= r.status_code < 500, r.text
    a = httpx.post(
        f"{base}/v1/models/{name}/actuals", json=[{"id": "a", "actual": 1}], headers=auth
    )
    assert 400 <= a.status_code < 500, a.text
    report = {"model": "a\x00", "instance": "i", "stats": {}}
    assert httpx.post(f"{base}/v1/sdk/report", json=report, headers=auth).status_code == 400
    assert _models(engine) == models


def test_hostile_version_parameter_is_a_4xx(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine, model = server
    url = f"{base}/v1/models/{model}/predictions?version=v%00"
    r = httpx.post(url, json=[GOOD], headers=auth)
    assert 400 <= r.status_code < 500, r.text
    assert _count(engine, model) == 0


def test_hostile_actuals_are_rejected_alone(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, engine, model = server
    body = (
        '[{"id": "a", "actual": 1}, {"id": "b\\u0000", "actual": 1},'
        ' {"id": "c", "actual": "x\\u0000"}, {"id": "d", "actual": 1, "timestamp": 1e20},'
        ' {"id": ' + "1" * 4300 + ', "actual": 0}, {"id": "e", "actual": 0}]'
    )  # c: a NUL in a value is removed and counted (as the SDK does), not a rejection
    r = httpx.post(
        f"{base}/v1/models/{model}/actuals",
        content=body,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert [item["index"] for item in r.json()["rejected"]] == [1, 3, 4]
    assert r.json()["inserted"] == 3 and r.json()["cleaned"]["nul_removed"] == 1
    assert _count(engine, model, "actuals") == 3


def test_a_top_level_depth_bomb_is_a_4xx(server) -> None:  # type: ignore[no-untyped-def]
    base, auth, _, model = server
    for body in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, "{" * 100_000, '"\\u0000"'):
        r = _post(base, auth, body, model)
        assert 400 <= r.status_code < 500, (body[:10], r.status_code, r.text)
        ndjson = _post(base, auth, body, model, **{"Content-Type": "application/x-ndjson"})
        assert 400 <= ndjson.status_code < 500, (body[:10], ndjson.status_code, ndjson.text)


# --- property: arbitrary bodies never get a 5xx -------------------------------------------------

anything = st.characters(exclude_categories=())  # NUL, controls and lone surrogates included
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**400), 10**400)
    | st.floats()
    | st.text(anything, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(anything, max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = [
    "id",
    "timestamp",
    "features",
    "prediction",
    "proba",
    "latency_ms",
    "segment",
    "version",
    "actual",
]
field_values = json_values | st.sampled_from(
    [
        1.8e9,
        1e12,
        1e20,
        -1,
        "2026-11-20T10:00:00Z",
        "0001-01-01",
        "9999-12-31T23:59:59-01:00",
        10**4000,
    ]
)
recordish = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(anything, max_size=4),
    field_values
    | st.dictionaries(st.text(anything, max_size=8), json_values | field_values, max_size=4),
    max_size=6,
)


def _render(items: list[object], style: str, cut: int) -> bytes:
    if style == "ndjson":
        text = "\n".join(json.dumps(item) for item in items)
    else:
        text = json.dumps(items, ensure_ascii=style == "ascii")
    data = text.encode("utf-8", "surrogatepass")
    return data[: len(data) - cut] if cut else data


@settings(
    max_examples=int(os.environ.get("INGEST_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    items=st.lists(recordish | json_values, max_size=6),
    style=st.sampled_from(["ascii", "utf8", "ndjson"]),
    cut=st.sampled_from([0, 0, 0, 1, 7]),
    raw=st.none() | st.binary(max_size=64),
    gzipped=st.booleans(),
    model=st.sampled_from(["fraud", "credit/eu"]) | st.text(anything, min_size=1, max_size=8),
    version=st.none() | st.sampled_from(["v1"]) | st.text(anything, max_size=5),
    route=st.sampled_from(["predictions", "actuals"]),
)
def test_no_body_gets_a_5xx(  # type: ignore[no-untyped-def]
    server, items, style, cut, raw, gzipped, model, version, route
) -> None:
    """Arbitrary JSON (and not quite JSON) at the collector, the database up: never a 5xx, and
    every record is accounted for (accepted + rejected = received)."""
    base, auth, _, _ = server
    body = raw if raw is not None else _render(items, style, cut)
    headers = {
        **auth,
        "Content-Type": "application/x-ndjson" if style == "ndjson" else "application/json",
    }
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    params = {"version": version} if version is not None and route == "predictions" else {}
    url = f"{base}/v1/models/{quote(model.encode('utf-8', 'surrogatepass'), safe='')}/{route}"
    r = httpx.post(url, content=body, headers=headers, params=params, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text)
    answer = r.json()
    if "received" in answer:
        assert answer["accepted"] + answer["rejected_count"] == answer["received"]
        assert len(answer["rejected"]) == answer["rejected_count"]


def test_the_answer_reports_every_writer_counter(server) -> None:  # type: ignore[no-untyped-def]
    """Whatever the writer counts (WriteResult's fields, CleanCounts' too) is in the answer,
    so that a counter added to the writer reaches HTTP clients without a change here."""
    base, auth, _, model = server
    records = [{"id": "a", **GOOD}, {"id": "b", "features": {"x": float("nan")}}]
    body = json.dumps(records)  # NaN: the writer cleans it to null and counts it
    answer = _post(base, auth, body, model).json()
    for f in dataclasses.fields(WriteResult):
        if f.name == "counts":
            assert set(answer["cleaned"]) == set(CleanCounts().as_dict())
        elif f.name == "rejected":  # the SDK's count of a collector's rejections
            assert answer["rejected"] == [] and answer["rejected_count"] == 0
        else:
            assert isinstance(answer[f.name], int), f.name
    assert answer["cleaned"]["nonfinite"] == 1 and answer["inserted"] == 2


def test_rejections_reach_the_log_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    rejects = RejectLog(interval=10.0, clock=lambda: now[0])
    outcome = Outcome(received=3)
    outcome.reject(1, "b", "features must be an object")
    with caplog.at_level(logging.WARNING, logger="monitor.web.ingest.routes"):
        rejects.note("fraud", outcome)  # logged: the first
        rejects.note("fraud", outcome)  # within 10 s: counted, not logged
        now[0] += 11
        rejects.note("credit", outcome)  # logged with both held back
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "ingest: 1 records rejected (e.g. model 'fraud': features must be an object)",
        "ingest: 2 records rejected (e.g. model 'fraud': features must be an object)",
    ]


def test_nul_in_values_is_removed_and_counted_extreme_iso_times_land(server) -> None:  # type: ignore[no-untyped-def]
    """As in the SDK: a NUL in a value is removed and counted (Postgres text cannot hold it);
    ISO 8601 times are taken as given, whatever the year Python can represent."""
    base, auth, engine, model = server
    records = [
        {"id": "nul", "features": {"c": "D\x00E", "x": 1.0}, "segment": {"r": "e\x00u"}},
        {"id": "old", "timestamp": "0001-01-01T00:00:00+05:00", **GOOD},
        {"id": "late", "timestamp": "9999-12-31T23:59:59-01:00", **GOOD},
    ]
    r = _post(base, auth, json.dumps(records), model)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 3 and r.json()["cleaned"]["nul_removed"] == 2, r.json()
    assert _count(engine, model) == 3


def test_features_over_the_models_cap_are_reported(server) -> None:  # type: ignore[no-untyped-def]
    """The writer caps a model's features (2,000 by default): a record of 2,010 features lands
    with 2,000, and the answer says how many values were left out."""
    base, auth, _, model = server
    record = {"id": "wide", "features": {f"f{i:04d}": float(i) for i in range(2_010)}}
    r = _post(base, auth, json.dumps([record]), model)
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 1 and r.json()["cleaned"]["features_over_cap"] == 10
