"""Silences: mute alerts whose labels match every matcher, from ``starts_at`` until ``ends_at``.

Matchers follow Alertmanager's API shape ``{"name", "value", "isRegex", "isEqual"}``; the CLI
and UI may pass the text forms ``name=value``, ``name!=value``, ``name=~regex``,
``name!~regex``. Regexes are anchored, as in Alertmanager. A silenced alert still moves through
its states (and they are recorded); it is only left out of notifications.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import InputError, NotFoundError
from monitor.storage.tables import Silence

_TEXT_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def matches(self, labels: Mapping[str, Any]) -> bool:
        actual = str(labels.get(self.name, ""))
        if self.is_regex:
            hit = re.fullmatch(self.value, actual) is not None
        else:
            hit = actual == self.value
        return hit if self.is_equal else not hit

    def __str__(self) -> str:
        ops = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}
        op = ops[(self.is_equal, self.is_regex)]
        return f"{self.name}{op}{self.value}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def parse_matcher(raw: str | Mapping[str, Any]) -> Matcher:
    if isinstance(raw, Mapping):
        if "name" not in raw or "value" not in raw:
            raise InputError(f"matcher {dict(raw)!r}: needs 'name' and 'value'")
        matcher = Matcher(
            str(raw["name"]),
            str(raw["value"]),
            bool(raw.get("isRegex", False)),
            bool(raw.get("isEqual", True)),
        )
    else:
        match = _TEXT_MATCHER.match(raw)
        if not match:
            raise InputError(
                f"matcher {raw!r}: expected name=value, name!=value, name=~re, name!~re"
            )
        name, op, value = match.groups()
        value = value.strip("\"'")
        matcher = Matcher(name, value, is_regex="~" in op, is_equal=not op.startswith("!"))
    if matcher.is_regex:
        try:
            re.compile(matcher.value)
        except re.error as exc:
            raise InputError(f"matcher {matcher.name}: bad regex {matcher.value!r}: {exc}") from exc
    return matcher


def matchers_of(raw: Sequence[Any]) -> list[Matcher]:
    return [parse_matcher(m) for m in raw]


def create_silence(
    session: Session,
    *,
    matchers: Sequence[str | Mapping[str, Any]],
    ends_at: datetime,
    starts_at: datetime | None = None,
    created_by: str | None = None,
    comment: str | None = None,
) -> Silence:
    """Store a silence; at least one matcher, ``ends_at`` after the start. Returns the row."""
    parsed = matchers_of(matchers)
    if not parsed:
        raise InputError("a silence needs at least one matcher")
    start = starts_at or datetime.now(UTC)
    if ends_at.tzinfo is None or start.tzinfo is None:
        raise InputError("silence times must be timezone-aware")
    if ends_at <= start:
        raise InputError("a silence must end after it starts")
    silence = Silence(
        matchers=[m.as_dict() for m in parsed],
        starts_at=start,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
    )
    session.add(silence)
    session.flush()
    return silence


def end_silence(session: Session, silence_id: int, *, now: datetime | None = None) -> Silence:
    """End a silence now (a no-op for one that has already ended). Returns the row."""
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFoundError(f"no silence with id {silence_id}")
    moment = now or datetime.now(UTC)
    if silence.ends_at > moment:
        silence.ends_at = moment
        if silence.starts_at > moment:
            silence.starts_at = moment
        session.flush()
    return silence


def list_silences(
    session: Session, *, active_only: bool = False, now: datetime | None = None
) -> list[Silence]:
    stmt = sa.select(Silence).order_by(Silence.ends_at.desc())
    if active_only:
        moment = now or datetime.now(UTC)
        stmt = stmt.where(Silence.starts_at <= moment, Silence.ends_at > moment)
    return list(session.scalars(stmt))


def active_matchers(session: Session, now: datetime) -> list[tuple[int, list[Matcher]]]:
    """Matchers of the silences in force at ``now``."""
    rows = session.execute(
        sa.select(Silence.id, Silence.matchers).where(
            Silence.starts_at <= now, Silence.ends_at > now
        )
    )
    return [(int(sid), matchers_of(raw)) for sid, raw in rows]


def silenced_by(labels: Mapping[str, Any], silences: list[tuple[int, list[Matcher]]]) -> int | None:
    """Id of the first silence whose matchers all match ``labels``, else None."""
    for silence_id, matchers in silences:
        if matchers and all(m.matches(labels) for m in matchers):
            return silence_id
    return None
