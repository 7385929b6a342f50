"""The SSRF guard: webhook URLs must be http(s) and reach public addresses only.

A URL is checked when a webhook, an inbox's webhook_url or an agent bot's outgoing_url is
saved (the API, the Platform API, the command line), and again at every delivery, where the
request is then sent to the very address that passed (the hostname still goes in ``Host`` and
in TLS SNI), so a DNS answer that changes between check and connect (rebinding) cannot steer a
delivery into the private network. ``INBOXGATE_WEBHOOK_ALLOW_PRIVATE=1`` turns the address
check off (a gateway whose receivers live beside it, and the tests).

UrlRefused
└── UrlUnresolvable   the host has no address now (a delivery retries; a create accepts it)
"""

from __future__ import annotations

import contextlib
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


class UrlRefused(Exception):
    """The URL is not http(s), or resolves to an address a webhook may not reach. The root of
    the webhooks package's errors (see the package's docstring)."""


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


# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address it reaches.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# IPv6 ranges refused outright, whatever Python's tables say (they differ between versions):
# local-use NAT64 (RFC 8215, its IPv4 may sit anywhere), IPv4-compatible (deprecated, ::a.b.c.d),
# IPv4-translated (SIIT, ::ffff:0:a.b.c.d) and site-local (deprecated fec0::/10).
REFUSED_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in ("64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96", "fec0::/10")
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to: IPv4-mapped, 6to4 or NAT64 (well-known)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses: not loopback, private (RFC 1918, ULA),
    link-local (cloud metadata), shared (CGNAT), reserved, multicast or unspecified. An IPv6
    address that carries an IPv4 one (mapped, 6to4, NAT64) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if address.teredo is not None or address.is_reserved:
            return False
        if any(address in net for net in REFUSED_V6):
            return False
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UrlUnresolvable(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


async def check_saved(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> None:
    """The check when a URL is saved (a webhook, an inbox's webhook_url, a bot's outgoing_url):
    :func:`check`, except that a name without an address now passes, since every delivery
    checks again. Raises UrlRefused."""
    with contextlib.suppress(UrlUnresolvable):
        await check(url, allow_private=allow_private, resolver=resolver)


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
