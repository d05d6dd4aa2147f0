"""Create and end silences.

Interim writer owned by the web until ``monitor.alerts.silences`` lands on main; the API and
pages call only these two functions, so switching is a one-line import change. Matchers follow
Alertmanager's: ``{"name": label, "op": "=" | "!=" | "=~" | "!~", "value": text}``; an alert is
silenced when every matcher matches its labels (``model``, ``rule``, ``column``, ``severity``...).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.errors import InputError, NotFoundError
from monitor.storage.tables import Silence

OPERATORS = ("=", "!=", "=~", "!~")
MAX_DURATION = timedelta(days=365)


def validate_matchers(matchers: list[dict[str, Any]]) -> list[dict[str, str]]:
    if not matchers:
        raise InputError("a silence needs at least one matcher")
    if len(matchers) > 20:
        raise InputError("a silence takes at most 20 matchers")
    out = []
    for m in matchers:
        name, op, value = str(m.get("name", "")).strip(), m.get("op", "="), m.get("value")
        if not name or len(name) > 200:
            raise InputError("every matcher needs a label name (at most 200 characters)")
        if op not in OPERATORS:
            raise InputError(f"matcher operator must be one of {' '.join(OPERATORS)}")
        if not isinstance(value, str) or len(value) > 1000:
            raise InputError("every matcher needs a text value (at most 1000 characters)")
        if "\x00" in name or "\x00" in value:
            raise InputError("matchers cannot contain NUL characters")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise InputError(f"matcher {name}: invalid regular expression: {exc}") from exc
        out.append({"name": name, "op": op, "value": value})
    return out


def create_silence(
    session: Session,
    matchers: list[dict[str, Any]],
    ends_at: datetime,
    created_by: str | None = None,
    comment: str | None = None,
    starts_at: datetime | None = None,
) -> int:
    """Store a silence; returns its id."""
    now = datetime.now(UTC)
    start = starts_at or now
    if ends_at.tzinfo is None:
        raise InputError("ends_at needs a time zone")
    if ends_at <= max(start, now):
        raise InputError("a silence must end in the future and after it starts")
    if ends_at - start > MAX_DURATION:
        raise InputError("a silence may last at most 365 days")
    if comment is not None and ("\x00" in comment or len(comment) > 2000):
        raise InputError("comment must be at most 2000 characters, without NUL")
    row = Silence(
        matchers=validate_matchers(matchers),
        starts_at=start,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment or None,
    )
    session.add(row)
    session.flush()
    return int(row.id)


def end_silence(session: Session, silence_id: int) -> None:
    """End a silence now (expired silences stay listed, as in Alertmanager)."""
    row = session.get(Silence, silence_id)
    if row is None:
        raise NotFoundError(f"no silence with id {silence_id}")
    now = datetime.now(UTC)
    if row.ends_at > now:
        session.execute(sa.update(Silence).where(Silence.id == silence_id).values(ends_at=now))
