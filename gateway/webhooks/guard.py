"""The SSRF guard: webhook URLs must be http(s) and reach public addresses only.

A URL is checked when a webhook is created or changed, and again at every delivery, where the
request is then sent to the very address that passed (the hostname still goes in ``Host`` and
in TLS SNI), so a DNS answer that changes between check and connect (rebinding) cannot steer a
delivery into the private network. ``INBOXGATE_WEBHOOK_ALLOW_PRIVATE=1`` turns the address
check off (a gateway whose receivers live beside it, and the tests).

UrlRefused
└── UrlUnresolvable   the host has no address now (a delivery retries; a create accepts it)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import anyio

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> addresses; anyio.getaddrinfo by default, injectable for tests.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048


class UrlRefused(ValueError):
    """The URL is not http(s), or resolves to an address a webhook may not reach."""


class UrlUnresolvable(UrlRefused):
    """The host name does not resolve (now)."""


@dataclass(frozen=True)
class Target:
    """Where one delivery goes: ``url`` with the checked address in place of the host name
    (unchanged when the check is off or the host was an address), and the headers and
    request extensions that keep the original name for HTTP and TLS."""

    url: str
    host_header: str | None = None
    sni_hostname: str | None = None


def parse(url: str) -> SplitResult:
    """The URL's parts, if it is an absolute http(s) URL with a host; else UrlRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        raise UrlRefused(f"malformed URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("not an http(s) URL")
    if any(c.isspace() for c in url.strip()):
        raise UrlRefused("whitespace in URL")
    return parts


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses: not loopback, private (RFC 1918, ULA),
    link-local (cloud metadata), shared (CGNAT), reserved, multicast or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return is_public(embedded)
        if address.teredo is not None:
            return False
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlUnresolvable(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


async def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """Check ``url`` and pick the address to send to. Raises UrlRefused (UrlUnresolvable when
    the name has no address)."""
    parts = parse(url)
    if allow_private:
        return Target(url=url)
    host = parts.hostname
    assert host is not None
    literal = _literal(host)
    if literal is not None:
        if not is_public(literal):
            raise UrlRefused(f"{host} is not a public address")
        return Target(url=url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = await resolver(host, port)
    addresses = [a for a in (_literal(x) for x in found) if a is not None]
    if not addresses:
        raise UrlUnresolvable(f"cannot resolve {host}")
    refused = [a for a in addresses if not is_public(a)]
    if refused:
        raise UrlRefused(f"{host} resolves to a non-public address ({refused[0]})")
    chosen = addresses[0]
    shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = shown if parts.port is None else f"{shown}:{parts.port}"
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    pinned = parts._replace(netloc=userinfo + netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    if not host_header.isascii():  # an internationalised name goes on the wire as IDNA
        host_header = host.encode("idna").decode() + (f":{parts.port}" if parts.port else "")
    return Target(
        url=pinned,
        host_header=host_header,
        sni_hostname=host if parts.scheme == "https" else None,
    )
