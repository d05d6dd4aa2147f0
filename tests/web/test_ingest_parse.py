"""Reading records out of a body one at a time (monitor.web.ingest.parse), checked against
``json.loads`` of the whole body: same records, in order, with the window sliding many times."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.web.ingest import parse
from monitor.web.ingest.parse import BodyError, iter_records

SMALL_WINDOW = 256  # so that short bodies slide the window many times

storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(storable, max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(storable, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
records = st.dictionaries(st.text(storable, max_size=6), values, max_size=4)
blanks = st.sampled_from(["", " ", "\n", " \t\r\n  "])


@pytest.fixture()
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "WINDOW", SMALL_WINDOW)
    monkeypatch.setattr(parse, "MAX_RECORD_BYTES", SMALL_WINDOW // 4)


@settings(max_examples=150, deadline=None)
@given(items=st.lists(records, max_size=12), gap=blanks, ascii_only=st.booleans())
def test_an_array_reads_as_json_loads_does(
    items: list[dict[str, object]], gap: str, ascii_only: bool
) -> None:
    """Every record within the size limit comes out equal to json.loads' reading, a larger one
    is refused alone, and the window slides across multi-byte characters without a seam."""
    texts = [json.dumps(r, ensure_ascii=ascii_only) for r in items]
    body = "[" + gap + ("," + gap).join(texts) + gap + "]"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parse, "WINDOW", SMALL_WINDOW)
        mp.setattr(parse, "MAX_RECORD_BYTES", SMALL_WINDOW // 4)
        got = list(iter_records(body.encode(), ndjson=False))
    assert [g.index for g in got] == list(range(len(items)))
    for item, record, text in zip(got, items, texts, strict=True):
        if len(text.encode()) <= SMALL_WINDOW // 4:
            assert item.error is None and item.value == record
        else:
            assert item.error is not None and "exceeds" in item.error


def test_ndjson_lines(small_window: None) -> None:
    body = b'{"a": 1}\n\n  {"b": [1, 2]}  \r\n{broken\n{"c": 3} x\n"\\udc00"\n'
    got = list(iter_records(body, ndjson=True))
    assert [(g.index, g.value) for g in got if g.error is None] == [
        (0, {"a": 1}),
        (1, {"b": [1, 2]}),
    ]
    errors = {g.index: g.error for g in got if g.error}
    assert "line 4 is not valid JSON" in errors[2]
    assert "line 5 has text after" in errors[3]
    assert "lone surrogate" in errors[4]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"a": tru}', "not valid JSON"),
        ('{"a": "x\tz"}', "not valid JSON"),  # a raw control character in a string
        ("[" * 5000 + "]" * 5000, "nested deeper"),
        ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nested deeper"),
        ('{"k\\ud800": 1}', "lone surrogate"),
        ('{"k": "\\udc00"}', "lone surrogate"),
        ('{"k": "' + "x" * 300_000 + '"}', "exceeds"),
        ('{"k": "' + "\u00e9" * 150_000 + '"}', "exceeds"),
        ("[" * 1_000_000 + "]" * 1_000_000, "exceeds"),
    ],
)
def test_a_bad_record_costs_only_itself(bad: str, reason: str) -> None:
    body = f'[{{"a": 1}}, {bad}, {{"b": "\\ud83d\\ude00 ok"}}]'.encode()
    got = list(iter_records(body, ndjson=False))
    assert [g.index for g in got] == [0, 1, 2]
    assert got[0].value == {"a": 1} and got[2].value == {"b": "\U0001f600 ok"}
    assert got[1].error is not None and reason in got[1].error


def test_invalid_utf8_is_refused_as_a_lone_surrogate() -> None:
    body = b'[{"a": "\xff"}, {"a": "\xc3\xa9"}]'
    got = list(iter_records(body, ndjson=False))
    assert got[0].error is not None and "invalid UTF-8" in got[0].error
    assert got[1].value == {"a": "\u00e9"}


def test_huge_integers_become_floats() -> None:
    body = ("[" + "9" * 5000 + ", " + "1" * 200 + ", -" + "2" * 201 + "]").encode()
    values = [g.value for g in iter_records(body, ndjson=False)]
    assert values == [float("inf"), int("1" * 200), -float("2" * 201)]


@pytest.mark.parametrize("body", [b"[", b"[1 2]", b"[1,", b"[tru", b"[] x", b'["abc', b"[{]"])
def test_a_broken_array_start_is_a_body_error_or_a_rejected_rest(body: bytes) -> None:
    try:
        got = list(iter_records(body, ndjson=False))
    except BodyError:
        return
    assert got and got[-1].error is not None and "rest of the body" in got[-1].error


def test_a_break_after_good_records_keeps_them() -> None:
    got = list(iter_records(b'[{"a": 1}, {"b": 2} {"c": 3}]', ndjson=False))
    assert [g.value for g in got[:2]] == [{"a": 1}, {"b": 2}]
    assert got[2].error is not None and "rest of the body was not read" in got[2].error


def test_empty_and_bom() -> None:
    assert list(iter_records(b"", ndjson=False)) == []
    assert list(iter_records(b" \n ", ndjson=True)) == []
    assert list(iter_records(b"[]", ndjson=False)) == []
    got = list(iter_records(b'\xef\xbb\xbf[{"a": 1}]', ndjson=False))
    assert got[0].value == {"a": 1}
