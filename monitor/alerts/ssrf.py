"""SSRF guard: notification targets may only reach globally routable addresses, checked on the
address actually connected to.

Every address a host resolves to must be globally routable: loopback, private (RFC 1918, ULA),
link-local (incl. the 169.254.169.254 metadata service), shared (100.64/10), multicast,
reserved and unspecified addresses are refused, as are IPv4 addresses embedded in IPv6 (mapped
``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``). An explicit allow-list
(``MONITOR_WEBHOOK_ALLOW_PRIVATE``: host names, addresses or CIDRs, IPv4 or IPv6, e.g.
``127.0.0.1``, ``::1``, ``10.0.0.0/8``) permits them; the tests allow 127.0.0.1.

Checking a name and then letting the HTTP client resolve it again to connect is open to DNS
rebinding (the second answer can differ). So the check happens where the connection is made:
:class:`GuardedTransport` is an httpx transport whose network backend resolves the host once,
checks every address, and connects to a checked address. The URL, the ``Host`` header and the
TLS server name (SNI, certificate check) stay the host name; only the socket is pinned. A name
is also checked when a channel is added or changed (an early, clear error), and redirects are
never followed, so a target cannot bounce inward.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from monitor.errors import InputError
from monitor.settings import get_settings

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class BlockedTarget(InputError):
    """The target URL points at an address the SSRF policy refuses."""


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def _entry(text: str) -> str:
    return text.strip().removeprefix("[").removesuffix("]").lower()


def allowed(host: str, ip: IPAddress | None, allow: Iterable[str]) -> bool:
    """Whether the allow-list names ``host`` or a network holding ``ip`` (or the IPv4 address
    it embeds: ``::ffff:127.0.0.1`` is allowed where 127.0.0.1 is)."""
    candidates = [ip] if ip is not None else []
    if ip is not None and (inner := _embedded_ipv4(ip)) is not None:
        candidates.append(inner)
    for raw in allow:
        entry = _entry(raw)
        if not entry:
            continue
        if entry == _entry(host):
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if any(c.version == network.version and c in network for c in candidates):
            return True
    return False


def internal(ip: IPAddress) -> bool:
    """Not a globally routable unicast address (or carrying one that is not)."""
    inner = _embedded_ipv4(ip)
    if inner is not None and (not inner.is_global or inner.is_multicast):
        return True
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (one lookup)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InputError(f"cannot resolve {host!r}: {reason}") from exc
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    return out


def allow_list(allow: Iterable[str] | None = None) -> list[str]:
    return list(get_settings().webhook_allow_private if allow is None else allow)


def checked_addresses(
    host: str, port: int, *, allow: Iterable[str] | None = None
) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses if every one may be contacted; raise
    :class:`BlockedTarget` naming the first that may not."""
    allow_ = allow_list(allow)
    bare = _entry(host)
    if bare in METADATA_HOSTS and not allowed(bare, None, allow_):
        raise BlockedTarget(f"target {host!r} is a cloud metadata service")
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(bare)]
    except ValueError:
        addresses = resolve(bare, port)
    if not addresses:
        raise InputError(f"cannot resolve {host!r}: no address")
    for ip in addresses:
        if internal(ip) and not allowed(bare, ip, allow_):
            raise BlockedTarget(
                f"target {host!r} resolves to {ip}, a loopback/private/link-local/metadata "
                "address; allow it with MONITOR_WEBHOOK_ALLOW_PRIVATE if intended"
            )
    return addresses


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL without credentials; InputError otherwise."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise InputError(f"target URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"target must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise InputError("target URL must not carry credentials; use the channel's secret")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_target(url: str, *, allow: Iterable[str] | None = None) -> list[IPAddress]:
    """Raise :class:`BlockedTarget` (or InputError for a malformed URL) unless ``url`` may be
    contacted now; returns the addresses checked. Sending re-checks at connect time."""
    host, port = check_url(url)
    return checked_addresses(host, port, allow=allow)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to an address it has just resolved and checked, never to a second lookup's."""

    def __init__(self, allow: Iterable[str] | None = None) -> None:
        self.allow = None if allow is None else list(allow)
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(host, port, allow=self.allow)
        error: Exception | None = None
        for ip in addresses:
            try:
                return self.inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedTarget("unix sockets are not notification targets")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connections go through :class:`PinnedBackend`. A refused
    target raises :class:`BlockedTarget` from the request (not an ``httpx.HTTPError``)."""

    def __init__(
        self, *, allow: Iterable[str] | None = None, limits: httpx.Limits | None = None
    ) -> None:
        limits = limits or httpx.Limits(max_connections=20, max_keepalive_connections=10)
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(allow),
        )
