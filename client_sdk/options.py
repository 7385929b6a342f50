"""Settings and small types shared by the sync and async shells."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from . import protocol as p
from .cable_core import DEFAULT_PROTOCOLS, STALE_AFTER, ReconnectPolicy


@dataclass(frozen=True)
class RealtimeOptions:
    """How sessions subscribe: the ``/cable`` URL, the subprotocols offered (in order of
    preference), the reconnect backoff and the silence after which a connection is stale."""

    cable_url: str
    protocols: Sequence[str] = DEFAULT_PROTOCOLS
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    stale_after: float = STALE_AFTER


@dataclass(frozen=True)
class Sent:
    """The outcome of a session send. ``message`` is the stored message, or None while the
    send waits in the outbox (the gateway was unreachable): it is delivered, in order, when
    the gateway comes back. ``echo_id`` identifies it either way."""

    echo_id: str
    message: p.PublicMessage | None

    @property
    def queued(self) -> bool:
        return self.message is None


def default_cable_url(base_url: str) -> str:
    """``http(s)://host/prefix`` -> ``ws(s)://host/prefix/cable``."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/cable", "", ""))
