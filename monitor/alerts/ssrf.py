"""SSRF guard: refuse notification targets that resolve to internal addresses.

Every address a host resolves to must be globally routable: loopback, private (RFC 1918, ULA),
link-local (incl. the 169.254.169.254 metadata service), shared (100.64/10), multicast,
reserved and unspecified addresses are refused, as are IPv4-mapped forms of those. An explicit
allow-list (``MONITOR_WEBHOOK_ALLOW_PRIVATE``: host names, addresses or CIDRs) permits them;
the tests allow 127.0.0.1. The check runs when a channel is added and again before every send
(a name may re-resolve); redirects are never followed, so a target cannot bounce inward.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from monitor.errors import InputError
from monitor.settings import get_settings

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(InputError):
    """The target URL points at an address the SSRF policy refuses."""


def _allowed(host: str, ip: IPAddress | None, allow: Iterable[str]) -> bool:
    for entry in allow:
        entry = entry.strip()
        if not entry:
            continue
        if entry.lower() == host.lower():
            return True
        if ip is not None:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _internal(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check_target(url: str, *, allow: Iterable[str] | None = None) -> None:
    """Raise :class:`BlockedTarget` (or InputError for a malformed URL) unless ``url`` may be
    contacted."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"target must be an http(s) URL with a host, got {url!r}")
    if parts.username or parts.password:
        raise InputError("target URL must not carry credentials; use the channel's secret")
    host = parts.hostname
    allow_list = list(get_settings().webhook_allow_private if allow is None else allow)
    if host.lower() in METADATA_HOSTS and not _allowed(host, None, allow_list):
        raise BlockedTarget(f"target {host!r} is a cloud metadata service")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [literal] if literal else resolve(host, parts.port or 443)
    for ip in addresses:
        if _internal(ip) and not _allowed(host, ip, allow_list):
            raise BlockedTarget(
                f"target {host!r} resolves to {ip}, a loopback/private/link-local/metadata "
                "address; allow it with MONITOR_WEBHOOK_ALLOW_PRIVATE if intended"
            )
