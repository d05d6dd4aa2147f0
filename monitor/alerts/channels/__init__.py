"""Notification channels: a registry of kinds behind one protocol.

A kind renders an event for its target and sends it, answering with an :class:`Outcome` that
says whether a failure is worth retrying. Adding a kind (email, PagerDuty) is one module plus
one entry in :data:`KINDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from monitor.errors import InputError


@dataclass
class Outcome:
    """What one send attempt achieved."""

    ok: bool
    status_code: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    disable: bool = False
    error: str | None = None
    response: str = ""


@dataclass
class Target:
    """A channel with its secrets decrypted, for the duration of a send."""

    id: int
    name: str
    kind: str
    url: str
    secret: str | None
    options: dict[str, Any] = field(default_factory=dict)


class ChannelKind(Protocol):
    kind: str
    #: minimum seconds between two messages to one target (Slack: 1 message per second)
    min_interval: float

    def validate(self, url: str, options: dict[str, Any]) -> None:
        """Raise InputError for a URL or options this kind cannot use."""

    def new_secret(self) -> str | None:
        """A signing secret for a new channel (None if the kind signs nothing)."""

    def send(self, client: httpx.Client, target: Target, event: dict[str, Any]) -> Outcome:
        """Deliver one event; never raises for delivery failures."""


KINDS: dict[str, str] = {
    "webhook": "monitor.alerts.channels.webhook:WebhookChannel",
    "slack": "monitor.alerts.channels.slack:SlackChannel",
}


def get_kind(kind: str) -> ChannelKind:
    if kind not in KINDS:
        raise InputError(f"unknown channel kind {kind!r} (one of {', '.join(sorted(KINDS))})")
    module, attr = KINDS[kind].split(":")
    factory = getattr(importlib.import_module(module), attr)
    instance: ChannelKind = factory()
    return instance
