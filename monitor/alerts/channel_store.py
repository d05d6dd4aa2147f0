"""Channels in the database: add, list, remove, and decrypt one for sending.

The target URL (Slack webhook URLs are credentials) and the signing secret are stored
encrypted with :mod:`monitor.storage.secrets`; ``target_display`` keeps only scheme, host and
a masked path for lists and the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.alerts.channels import Target, get_kind
from monitor.errors import InputError, NotFoundError
from monitor.storage.secrets import decrypt, encrypt
from monitor.storage.tables import Channel


@dataclass
class ChannelInfo:
    id: int
    name: str
    kind: str
    target_display: str
    enabled: bool
    disabled_reason: str | None
    options: dict[str, Any]
    is_default: bool = False


def display_url(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path if len(parts.path) <= 8 else parts.path[:6] + "..."
    return f"{parts.scheme}://{parts.netloc}{path}"


def _info(channel: Channel) -> ChannelInfo:
    return ChannelInfo(
        channel.id,
        channel.name,
        channel.kind,
        channel.target_display,
        channel.enabled,
        channel.disabled_reason,
        dict(channel.options or {}),
        bool(channel.is_default),
    )


def add_channel(
    session: Session,
    name: str,
    kind: str,
    url: str,
    *,
    secret: str | None = None,
    options: dict[str, Any] | None = None,
    is_default: bool = False,
) -> tuple[ChannelInfo, str | None]:
    """Store a channel; returns it and its signing secret (generated if not given: shown once).
    ``is_default``: rules routed to ``@default`` (the default rules) notify it."""
    if not name.strip() or name == "*" or name.startswith("@"):
        raise InputError("a channel needs a name (not '*', not starting with '@')")
    impl = get_kind(kind)
    opts = dict(options or {})
    impl.validate(url, opts)
    if secret is not None and not secret.startswith("whsec_"):
        raise InputError("webhook secrets look like whsec_<base64>")
    if session.scalar(sa.select(Channel.id).where(Channel.name == name)) is not None:
        raise InputError(f"a channel named {name!r} exists already")
    secret = secret or impl.new_secret()
    channel = Channel(
        name=name,
        kind=kind,
        target_encrypted=encrypt(url),
        target_display=display_url(url),
        secret_encrypted=encrypt(secret) if secret else None,
        options=opts,
        enabled=True,
        is_default=is_default,
    )
    session.add(channel)
    session.flush()
    return _info(channel), secret


def get_channel(session: Session, name_or_id: str | int) -> Channel:
    stmt = sa.select(Channel)
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        stmt = stmt.where(sa.or_(Channel.id == int(name_or_id), Channel.name == str(name_or_id)))
    else:
        stmt = stmt.where(Channel.name == name_or_id)
    channel = session.scalars(stmt).first()
    if channel is None:
        raise NotFoundError(f"no channel {name_or_id!r}")
    return channel


def list_channels(session: Session) -> list[ChannelInfo]:
    return [_info(c) for c in session.scalars(sa.select(Channel).order_by(Channel.name))]


def remove_channel(session: Session, name_or_id: str | int) -> None:
    session.delete(get_channel(session, name_or_id))
    session.flush()


def set_enabled(session: Session, name_or_id: str | int, enabled: bool) -> ChannelInfo:
    channel = get_channel(session, name_or_id)
    channel.enabled = enabled
    channel.disabled_reason = None if enabled else "disabled by a user"
    session.flush()
    return _info(channel)


def set_default(session: Session, name_or_id: str | int, is_default: bool) -> ChannelInfo:
    """Mark (or unmark) a channel default: the default rules and rules naming no channel
    notify the channels marked default."""
    channel = get_channel(session, name_or_id)
    channel.is_default = is_default
    session.flush()
    return _info(channel)


def set_target(session: Session, name_or_id: str | int, url: str) -> ChannelInfo:
    """Point an existing channel at a new URL (validated like a new one); keeps its secret."""
    channel = get_channel(session, name_or_id)
    get_kind(channel.kind).validate(url, dict(channel.options or {}))
    channel.target_encrypted = encrypt(url)
    channel.target_display = display_url(url)
    session.flush()
    return _info(channel)


def secret_of(channel: Channel) -> str | None:
    return decrypt(channel.secret_encrypted) if channel.secret_encrypted else None


def target_of(channel: Channel) -> Target:
    """Decrypt a channel for one send (the plaintext never leaves memory)."""
    return Target(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url=decrypt(channel.target_encrypted),
        secret=decrypt(channel.secret_encrypted) if channel.secret_encrypted else None,
        options=dict(channel.options or {}),
    )
