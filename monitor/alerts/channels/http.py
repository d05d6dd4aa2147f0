"""One HTTP POST with the delivery policy, per the Standard Webhooks spec: SSRF check at
connect time, no redirects, bounded time, and a verdict on the response: 2xx is delivered;
410 Gone disables the channel (no more attempts); every other answer (3xx, 4xx, 5xx) and every
network error or timeout is a failed attempt retried on the schedule, honouring Retry-After.
A target the SSRF policy refuses fails at once (retrying cannot make it allowed)."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime

import httpx

from monitor.alerts.channels import Outcome
from monitor.alerts.ssrf import BlockedTarget, GuardedTransport, check_url
from monitor.errors import InputError
from monitor.settings import get_settings

MAX_RESPONSE_BYTES = 4096
USER_AGENT = "monitor-alerts/0.1"


def make_client() -> httpx.Client:
    """The client every send uses: connect timeout, per-phase timeout, redirects off, and a
    transport that checks the address it connects to (SSRF, see :mod:`monitor.alerts.ssrf`)."""
    settings = get_settings()
    total = settings.delivery_total_timeout
    return httpx.Client(
        transport=GuardedTransport(),
        timeout=httpx.Timeout(total, connect=settings.delivery_connect_timeout),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else datetime.now(UTC).timestamp()))


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST ``body``; the whole exchange (connect to last byte) is bounded by the total timeout.
    The client's transport refuses, at connect time, an address the SSRF policy blocks."""
    try:
        check_url(url)
    except InputError as exc:
        return Outcome(ok=False, error=str(exc))
    deadline = time.monotonic() + get_settings().delivery_total_timeout
    try:
        with client.stream("POST", url, content=body, headers=headers) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                if time.monotonic() > deadline:
                    return Outcome(
                        ok=False,
                        status_code=response.status_code,
                        retryable=True,
                        error="total timeout reading the response",
                    )
                if size < MAX_RESPONSE_BYTES:
                    chunks.append(chunk)
                size += len(chunk)
            text = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
    except BlockedTarget as exc:  # refused at connect time: the address is not allowed
        return Outcome(ok=False, error=str(exc))
    except InputError as exc:  # the name does not resolve (now): retried
        return Outcome(ok=False, retryable=True, error=str(exc))
    except httpx.TimeoutException as exc:
        return Outcome(ok=False, retryable=True, error=f"timeout: {type(exc).__name__}")
    except httpx.HTTPError as exc:
        return Outcome(ok=False, retryable=True, error=f"network error: {exc}")
    return verdict(response.status_code, text, response.headers.get("retry-after"))


def verdict(status: int, text: str, retry_after: str | None) -> Outcome:
    """The outcome of an answer: 2xx ok, 410 disables, anything else is retried."""
    if 200 <= status < 300:
        return Outcome(ok=True, status_code=status, response=text)
    error = f"HTTP {status}"
    if status == 410:
        return Outcome(
            ok=False,
            status_code=status,
            disable=True,
            error=f"{error}: the receiver is gone; channel disabled",
            response=text,
        )
    if 300 <= status < 400:
        error += ": redirects are not followed"
    return Outcome(
        ok=False,
        status_code=status,
        retryable=True,
        retry_after=parse_retry_after(retry_after),
        error=error,
        response=text,
    )
