"""Outbound HTTP to URLs a workspace admin typed (the publish webhook), safely.

A URL is refused unless it is http(s) and every address its host resolves to is
public: private, loopback, link-local (cloud metadata at 169.254.169.254),
carrier-grade NAT, multicast, reserved and unspecified ranges are refused, so a
webhook cannot reach the database, the broker or a metadata service. The check
runs when the URL is saved and again at delivery, and the connection goes to the
address that was checked (no second DNS answer can swap in an internal one).
Redirects are not followed. `HIVEMIND_WEBHOOK_ALLOWED_HOSTS` lists internal hosts
a self-hosted set-up wants to allow (e.g. `hooks.internal`, `10.0.0.7`).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from workspaces.errors import InvalidInput

# Indirection so tests can stub DNS and check nothing is opened to a refused address.
resolve = socket.getaddrinfo
open_connection = socket.create_connection

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(InvalidInput):
    """The URL may not be called from this server."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked address the connection goes to


def check_url(url: str) -> Target:
    """The URL's target if it may be called; else Refused saying why."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise Refused("Only http:// and https:// URLs can receive webhooks.")
    if not parts.hostname:
        raise Refused("The URL has no host.")
    if parts.username or parts.password:
        raise Refused("Put credentials in the secret, not in the URL.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused("The URL's port is not a number between 0 and 65535.") from None
    host = parts.hostname
    addresses = _addresses(host, port)
    if not _allowed_internal(host):
        blocked = [a for a in addresses if not _public(a)]
        if blocked:
            raise Refused(
                f"{host} resolves to a private, loopback, link-local or reserved address "
                f"({blocked[0]}); webhooks go only to public addresses. An admin of this "
                "server can allow internal hosts with HIVEMIND_WEBHOOK_ALLOWED_HOSTS."
            )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, str(addresses[0]))


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> int:
    """POST to a checked address; returns the status. Redirects are not followed
    (a 3xx is returned as it is). Raises Refused, or OSError on network failure."""
    target = check_url(url)
    connection = _connection(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers={"Host": target.host,
                                                                    **headers})  # fmt: skip
        response = connection.getresponse()
        response.read(64 * 1024)
        return response.status
    finally:
        connection.close()


def _addresses(host: str, port: int) -> list[Address]:
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused(f"{host} does not resolve.") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"{host} does not resolve.")
    return addresses


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_ISATAP_MARKERS = (0x00005EFE, 0x02005EFE)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, in every form that routes to
    them: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64
    (64:ff9b::/96 and 64:ff9b:1::/48), 6to4 (2002::/16), Teredo (2001::/32,
    server and client) and ISATAP (…:5efe:a.b.c.d)."""
    found: list[ipaddress.IPv4Address] = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1 (checked as IPv6)
        found.append(low32)
    if any(address in net for net in _NAT64):
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if (int(address) >> 32) & 0xFFFFFFFF in _ISATAP_MARKERS:
        found.append(low32)
    return found


def _public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner and not all(_public(v4) for v4 in inner):
            return False
        if address.ipv4_mapped is not None or any(address in net for net in _NAT64):
            return True  # the IPv4 address it reaches is public
    return address.is_global and not address.is_multicast


def _allowed_internal(host: str) -> bool:
    allowed = {h.strip().lower() for h in settings.HIVEMIND_WEBHOOK_ALLOWED_HOSTS if h.strip()}
    return host.lower() in allowed


def _connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPS(target.host, target.port, timeout=timeout)
    else:
        connection = _PinnedHTTP(target.host, target.port, timeout=timeout)
    connection.pinned_address = target.address
    return connection


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to a fresh DNS answer."""

    pinned_address: str

    def connect(self) -> None:
        self.sock = open_connection((self.pinned_address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    pinned_address: str

    def connect(self) -> None:
        raw = open_connection((self.pinned_address, self.port), self.timeout)
        context = ssl.create_default_context()
        # The certificate is checked against the URL's host name, as a browser would.
        self.sock = context.wrap_socket(raw, server_hostname=self.host)
