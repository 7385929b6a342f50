"""What a :class:`~gateway.realtime.core.session.CableSession` asks its shell to do; its
settings; the session ids and snapshots behind session restore.

The session does no I/O. Every input returns a list of actions that the shell (the ASGI /cable
endpoint) carries out *in order*; the order is part of the contract:

* ``Listen`` comes before the ``Send`` of the ``confirm_subscription`` (or restored ``welcome``) it
  belongs to, so a confirmation is only sent once the subscription is live;
* a ``Send`` of a ``disconnect`` frame is followed by ``Close``; after that the session is closed
  and returns nothing more;
* intents (``SubscribeRequested``, ``HistoryRequested``, ``PerformRequested``...) need I/O: the
  shell answers them by calling the session back (``subscription_confirmed`` /
  ``subscription_rejected``, ``history_served`` / ``history_rejected``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import msgspec
from msgspec import Struct

from client_sdk.cable_protocol import WireFrame

# --- Transport ------------------------------------------------------------------------------


class Send(NamedTuple):
    """Write one frame (``str``: text frame; ``bytes``: binary frame)."""

    frame: WireFrame


class Close(NamedTuple):
    """Close the socket with this code once the frames before it are written."""

    code: int
    reason: str


class Listen(NamedTuple):
    """Attach this connection to these streams (first subscription to need each of them)."""

    streams: tuple[str, ...]


class Unlisten(NamedTuple):
    """Detach from streams that no subscription of this connection needs any more."""

    streams: tuple[str, ...]


# --- Intents --------------------------------------------------------------------------------


class SubscribeRequested(NamedTuple):
    """Authorize ``identifier`` (``params`` is its decoded JSON object, ``params["channel"]`` a
    str), then call ``subscription_confirmed(identifier, streams, principal)`` or
    ``subscription_rejected(identifier)``. Answer within 5 s: the JS client re-sends once then
    gives up at 10 s."""

    identifier: str
    params: dict[str, Any]


class Unsubscribed(NamedTuple):
    """A live subscription ended (presence clean-up and the like)."""

    identifier: str
    principal: str


class PerformRequested(NamedTuple):
    """The ``message`` command on a live subscription: ``data`` holds ``action`` and the rest."""

    identifier: str
    principal: str
    action: str
    data: dict[str, Any]


class HistoryCursor(NamedTuple):
    """Where to replay one stream from: by position when ``epoch`` is set (a different epoch,
    an offset that is no longer retained or beyond the latest → reject), else by time
    (entries created at or after ``since``, server clock; an unknown stream replays nothing)."""

    stream: str
    epoch: str | None
    offset: int | None
    since: float | None


class HistoryRequested(NamedTuple):
    """Read the log for ``cursors`` (subscription order), then call ``history_served(identifier,
    events)`` with the events stream by stream, or ``history_rejected(identifier)`` if any
    cursor fails: all or nothing (reference §5.3)."""

    identifier: str
    cursors: tuple[HistoryCursor, ...]


class SaveSession(NamedTuple):
    """Store ``snapshot`` under ``sid`` for session restore (extended protocol only)."""

    sid: str
    snapshot: SessionSnapshot


class Notice(NamedTuple):
    """A tolerated anomaly (unknown command, duplicate subscribe...) worth a debug log line."""

    message: str


Action: TypeAlias = (
    Send
    | Close
    | Listen
    | Unlisten
    | SubscribeRequested
    | Unsubscribed
    | PerformRequested
    | HistoryRequested
    | SaveSession
    | Notice
)


# --- Session restore: state, ids -------------------------------------------------------------


class SubscriptionState(Struct, frozen=True, kw_only=True):
    """One live subscription. ``principal`` names the credentials that authorized it (e.g.
    ``contact_inbox:90``), so a restore can check they are still valid before re-attaching."""

    identifier: str
    streams: tuple[str, ...]
    principal: str = ""


class SessionSnapshot(Struct, frozen=True, kw_only=True):
    subscriptions: tuple[SubscriptionState, ...] = ()


_snapshot_decoder = msgspec.json.Decoder(SessionSnapshot)


def dump_snapshot(snapshot: SessionSnapshot) -> bytes:
    return msgspec.json.encode(snapshot)


def load_snapshot(data: bytes) -> SessionSnapshot:
    """Raises ``msgspec.DecodeError`` (a ValueError) on a corrupt cache entry."""
    return _snapshot_decoder.decode(data)


def new_sid() -> str:
    """A session id: 144 random bits, URL-safe (it is a bearer credential for the session)."""
    return secrets.token_urlsafe(18)


def restore_sid(query_sid: str | None, header_sid: str | None = None) -> str | None:
    """The sid a reconnecting client wants restored: ``X-AnyCable-Restore-Sid`` first, then
    ``?sid=``; an empty value is absent (clients send ``sid=`` after a disconnect frame)."""
    return header_sid or query_sid or None


# --- Settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits and timers (seconds, bytes)."""

    max_subscriptions: int = 64
    max_frame_bytes: int = 64 * 1024
    max_identifier_bytes: int = 1024
    # A socket that never subscribes holds resources for nothing. Real clients subscribe right
    # after welcome (both JS clients connect lazily, on the first subscription).
    first_subscribe_timeout: float = 30.0
    # Clients call a connection stale after 6 s without a frame (reference §6).
    ping_interval: float = 3.0
    # Extended protocol only; 0 disables (the default: the JS client sends pongs only when
    # configured to). With it, no frame at all for this long after a ping disconnects.
    pong_timeout: float = 0.0

    def __post_init__(self) -> None:
        if self.ping_interval <= 0 or self.max_subscriptions < 1 or self.max_frame_bytes < 64:
            raise ValueError("invalid cable limits")
