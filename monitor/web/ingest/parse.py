"""Records out of an ingest body, one at a time, each with its own verdict.

A body is a JSON array of records or NDJSON (one record a line). It is read record by record
(``json.JSONDecoder.raw_decode`` over a window of the body's text) rather than by one
``json.loads``, for two reasons:

* memory: a request holds its body's bytes, one window of text (``WINDOW`` bytes) and the
  records of the chunk being written, never the whole body as Python objects (which cost
  about six times the body's size);
* isolation: a record the parser refuses inside a well-formed array (nesting deeper than the
  interpreter's recursion limit, a malformed value) is rejected alone, found by a bracket
  scanner; its neighbours still land.

The checks that need a record's text are made here, on its span, at C speed: its size, its
nesting depth (only a span with more than ``MAX_DEPTH`` brackets is walked) and lone
surrogates, which no UTF-8 text can hold (from ``\\ud800`` escapes or invalid UTF-8: only a
span where a regex finds one is walked). NUL is Postgres' other refused character: the writer
removes it from values and counts it (``cleaned.nul_removed``), as it does for the SDK, and
:mod:`.validate` refuses names that hold one. Integers of more than ``MAX_INT_DIGITS`` digits
are read as floats (Python refuses to parse ints of over 4,300 digits, and no id needs more
than 200): beyond a double's range they are infinite, which the writer stores as a counted
null.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from monitor.sdk.records import MAX_RECORD_BYTES

WINDOW = 1 << 20  # bytes of body decoded to text at a time
MAX_DEPTH = 32  # levels of nesting a record may have (a record and its features are two)
MAX_INT_DIGITS = 200  # an integer id may have up to 200 digits
BOM = b"\xef\xbb\xbf"

_WS = re.compile(r"[ \t\n\r]*")
_SEPARATOR = re.compile(r"[ \t\n\r]*([,\]])")
# Escapes or characters that become (lone) surrogates, which no UTF-8 text can hold. (NUL is
# left to the writer, which removes it from values and counts it, as for the SDK; names with
# NUL are refused by the validation.)
_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NUL_OR_SURROGATE = re.compile(r"[\x00\ud800-\udfff]")
_BYTES_WS = re.compile(rb"[ \t\n\r]*")


class BodyError(ValueError):
    """The body as a whole is unreadable (not JSON or NDJSON at all): a 400."""


@dataclass(slots=True)
class Item:
    """One record of the body: its value, or why it was refused before validation."""

    index: int
    value: Any = None
    error: str | None = None
    size: int = 0  # characters of its JSON text


def _parse_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float(digits)


DECODER = json.JSONDecoder(parse_int=_parse_int)


def iter_records(body: bytes | bytearray, ndjson: bool) -> Iterator[Item]:
    """The records of ``body``: a JSON array unless ``ndjson`` or the body does not start with
    ``[`` (then one record per non-blank line)."""
    start = len(BOM) if body.startswith(BOM) else 0
    while start < len(body) and body[start] in b" \t\r\n":
        start += 1
    if start == len(body):
        return
    if not ndjson and body[start] == ord("["):
        yield from _array(body, start + 1)
    else:
        yield from _lines(body, start)


# --- NDJSON ----------------------------------------------------------------------------------


def _lines(body: bytes | bytearray, pos: int) -> Iterator[Item]:
    index = 0
    number = body.count(b"\n", 0, pos)
    view = memoryview(body)
    while pos < len(body):
        end = body.find(b"\n", pos)
        if end < 0:
            end = len(body)
        number += 1
        if end - pos > MAX_RECORD_BYTES:
            yield Item(index, error=f"line {number}: record exceeds {MAX_RECORD_BYTES} bytes")
            index += 1
        else:
            text = str(view[pos:end], "utf-8", "surrogateescape")
            begin = _WS.match(text).end()  # type: ignore[union-attr]
            if begin < len(text):
                yield _line(text, begin, index, number)
                index += 1
        pos = end + 1


def _line(text: str, begin: int, index: int, number: int) -> Item:
    try:
        value, end = DECODER.raw_decode(text, begin)
    except json.JSONDecodeError as exc:
        return Item(index, error=f"line {number} is not valid JSON: {exc.msg}")
    except RecursionError:
        return Item(index, error=f"line {number}: nested deeper than {MAX_DEPTH} levels")
    if text[end:].strip(" \t\r"):
        return Item(index, error=f"line {number} has text after its record")
    problem = _inspect(text, begin, end, value)
    if problem is not None:
        return Item(index, error=f"line {number}: {problem}")
    return Item(index, value, size=end - begin)


# --- JSON array ------------------------------------------------------------------------------


class _Window:
    """A window of the body decoded to text: ``text`` begins at byte ``offset`` of the body.

    ``WINDOW`` is four times a record's largest size, and the window slides before less than
    half of it is left: a record that fits the size limit always lies within the window."""

    def __init__(self, body: bytes | bytearray) -> None:
        self.body = body
        self.view = memoryview(body)
        self.offset = 0
        self.text = ""
        self.final = False

    def load(self, offset: int) -> None:
        end = min(len(self.body), offset + WINDOW)
        while end < len(self.body) and end > offset and self.body[end] & 0xC0 == 0x80:
            end -= 1  # never cut a UTF-8 sequence in two
        self.offset = offset
        self.final = end == len(self.body)
        self.text = str(self.view[offset:end], "utf-8", "surrogateescape")

    def byte_at(self, i: int) -> int:
        """The body offset of text index ``i``."""
        if self.text.isascii():
            return self.offset + i
        return self.offset + len(self.text[:i].encode("utf-8", "surrogateescape"))


def _array(body: bytes | bytearray, pos: int) -> Iterator[Item]:
    window = _Window(body)
    window.load(pos)
    i = 0
    index = 0
    while True:
        if not window.final and len(window.text) - i < WINDOW // 2:
            window.load(window.byte_at(i))  # slide: the next record starts the window
            i = 0
        i = _WS.match(window.text, i).end()  # type: ignore[union-attr]
        if i == len(window.text) and not window.final:  # a long run of blanks
            window.load(_BYTES_WS.match(body, window.byte_at(i)).end())  # type: ignore[union-attr]
            i = 0
            continue
        if index == 0 and window.text.startswith("]", i):
            _trailing(window, i + 1)
            return
        item, end = _element(window, i, index)
        if end is None:
            window.load(_skip(body, window.byte_at(i), _BYTE_TOKENS) or len(body))
            end = 0
        sep = _SEPARATOR.match(window.text, end)
        if sep is None and not window.final:  # a long run of blanks after the record
            window.load(_BYTES_WS.match(body, window.byte_at(end)).end())  # type: ignore[union-attr]
            end = 0
            sep = _SEPARATOR.match(window.text, end)
        if sep is None:  # the array is broken here: nothing after it can be read
            if index == 0 and item.error is not None:
                raise BodyError(f"body is not a valid JSON array: {item.error}")
            broken = (
                f"expected ',' or ']' at byte {window.byte_at(end)}; "
                "the rest of the body was not read"
            )
            if item.error is None:
                yield item
                yield Item(index + 1, error=broken)
            else:
                yield Item(index, error=f"{item.error}; {broken}")
            return
        yield item
        index += 1
        if sep.group(1) == "]":
            _trailing(window, sep.end())
            return
        i = sep.end()


def _trailing(window: _Window, i: int) -> None:
    pos = window.byte_at(i)
    if _BYTES_WS.match(window.body, pos).end() != len(window.body):  # type: ignore[union-attr]
        raise BodyError("body has text after its JSON array")


def _element(window: _Window, i: int, index: int) -> tuple[Item, int | None]:
    """The record at text index ``i`` and the text index where it ends; None when it ends
    past the window (too large: the caller finds its end in the body's bytes)."""
    text = window.text
    try:
        value, end = DECODER.raw_decode(text, i)
    except json.JSONDecodeError as exc:
        item = Item(index, error=f"not valid JSON: {exc.msg}")
    except RecursionError:
        item = Item(index, error=f"nested deeper than {MAX_DEPTH} levels")
    else:
        # A record that reaches the window's edge is too large (or cut: ``12`` of ``123``).
        if end < len(text) - 1 or window.final:
            problem = _inspect(text, i, end, value)
            if problem is not None:
                return Item(index, error=problem), end
            return Item(index, value, size=end - i), end
        return Item(index, error=f"record exceeds {MAX_RECORD_BYTES} bytes"), None
    found = _skip(text, i, _TEXT_TOKENS)
    if found is not None and (found < len(text) or window.final):
        return item, found
    if not window.final:  # it runs past the window: longer than any record may be
        item.error = f"record exceeds {MAX_RECORD_BYTES} bytes"
    return item, None


_TEXT_TOKENS = (
    re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[{]+|[\]}]+'),
    re.compile(r"[,\]\s]"),
)
_BYTE_TOKENS = (
    re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[{]+|[\]}]+'),
    re.compile(rb"[,\]\s]"),
)


def _skip(data: Any, pos: int, patterns: tuple[re.Pattern[Any], re.Pattern[Any]]) -> int | None:
    """Where the JSON value at ``pos`` of ``data`` (text, or the body's bytes: UTF-8 keeps every
    delimiter ASCII) ends, by brackets and strings alone (no recursion, so any depth), or None
    when it does not end (an unterminated string or bracket)."""
    tokens, scalar_end = patterns
    if pos >= len(data):
        return None
    first = data[pos : pos + 1]
    if first not in ("[", "{", b"[", b"{"):
        if first in ('"', b'"'):
            match = tokens.match(data, pos)
            return match.end() if match and len(match.group()) > 1 else None
        found = scalar_end.search(data, pos)
        return found.start() if found else len(data)
    depth = 0
    for match in tokens.finditer(data, pos):
        token = match.group()
        opener = token[:1]
        if opener in ("[", "{", b"[", b"{"):
            depth += len(token)
        elif opener in ("]", "}", b"]", b"}"):
            if len(token) >= depth:
                return match.start() + depth
            depth -= len(token)
        elif len(token) == 1:
            return None  # an unterminated string
    return None


# --- checks on a record's text ---------------------------------------------------------------


def _inspect(text: str, begin: int, end: int, value: Any) -> str | None:
    """Why the record at ``text[begin:end]`` cannot be stored, or None."""
    chars = end - begin
    if chars > MAX_RECORD_BYTES or (
        chars * 4 > MAX_RECORD_BYTES
        and not text.isascii()
        and len(text[begin:end].encode("utf-8", "surrogateescape")) > MAX_RECORD_BYTES
    ):
        return f"record exceeds {MAX_RECORD_BYTES} bytes"
    deep = text.count("[", begin, end) + text.count("{", begin, end) > MAX_DEPTH
    risky = _SURROGATE_TEXT.search(text, begin, end) is not None
    if deep or risky:
        return inspect_value(value, surrogates=risky)
    return None


def inspect_value(
    value: Any, *, surrogates: bool = True, nul: bool = False, finite: bool = False
) -> str | None:
    """Why a parsed JSON value cannot be stored: nested deeper than ``MAX_DEPTH``, a key or
    string with a lone surrogate (``surrogates``) or a NUL (``nul``), a non-finite number
    (``finite``)."""
    bad = _NUL_OR_SURROGATE if nul else _SURROGATE if surrogates else None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            for key, inner in item.items():
                if bad is not None and bad.search(key):
                    return string_problem(key, "a key")
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            if bad is not None and bad.search(item):
                return string_problem(item, "a string")
        elif finite and isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite"
    return None


def string_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be stored in Postgres (NUL, lone surrogate), or None."""
    found = _NUL_OR_SURROGATE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"{what} contains U+0000 (NUL), which Postgres text cannot store"
    return f"{what} contains a lone surrogate or invalid UTF-8 ({found.group()!a})"
