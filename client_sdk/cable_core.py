"""The client side of a ``/cable`` subscription as a state machine with no I/O.

The session flow (:mod:`~client_sdk.session_flows`, driven by both shells) feeds every
received frame to :meth:`CableCore.receive` and sends what it returns; it asks
:meth:`CableCore.time_left` how long to wait for the next frame before the connection counts
as stale, and :class:`ReconnectPolicy` how long to back off before reconnecting.

What the core guarantees across reconnects (``reference/anycable-ext-protocol.md``):

* extended protocol: the session is restored with the last ``sid`` when the server still has
  it (then ``history`` from the last stream positions), else resubscribed with ``history``;
  logged broadcasts at or below the last offset of their stream are dropped, so a replay that
  overlaps live traffic repeats nothing;
* plain ``actioncable-v1-json`` (a stock Chatwoot): no history exists, so after a reconnect the
  step says ``catch_up`` and the session fetches missed messages over HTTP; the same happens
  when the server rejects a history request (an epoch change, retention expired).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from msgspec import UNSET

from . import cable_protocol as cp
from . import errors
from .events import Connected, Disconnected, Event, decode_event

log = logging.getLogger("client_sdk.cable")

# Offered in this order; the gateway picks the extended protocol, a stock Chatwoot the plain one.
DEFAULT_PROTOCOLS: tuple[str, ...] = (cp.EXT_JSON, cp.JSON)
MSGPACK_PROTOCOLS: tuple[str, ...] = (cp.EXT_MSGPACK, cp.MSGPACK, cp.JSON)
# The gateway and Rails ping every 3 s; two missed pings mean the connection is dead.
STALE_AFTER = 6.0


@dataclass(frozen=True)
class ReconnectPolicy:
    """Jittered exponential backoff: attempt n waits ``min(cap, base * factor**n)`` times a
    random factor in [0.5, 1.5]. ``max_attempts`` None retries forever. The SDK's one backoff
    rule: a 429 without ``Retry-After`` waits by it too (``http_core.RATE_LIMIT_BACKOFF``)."""

    base: float = 0.25
    factor: float = 2.0
    cap: float = 10.0
    max_attempts: int | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.cap, self.base * self.factor ** min(attempt, 64))
        return raw * (rng or random).uniform(0.5, 1.5)

    def gives_up(self, attempt: int) -> bool:
        return self.max_attempts is not None and attempt >= self.max_attempts


def contact_identifier(pubsub_token: str) -> str:
    """The RoomChannel identifier of a contact, spelled as ``JSON.stringify`` does."""
    return json.dumps(
        {"channel": "RoomChannel", "pubsub_token": pubsub_token}, separators=(",", ":")
    )


@dataclass
class Step:
    """What one received frame asks of the shell.

    ``send``: frames to write. ``events``: typed events to hand to the application.
    ``live``: the subscription just became live (deliver queued sends now). ``catch_up``: fetch
    missed messages over HTTP. ``closed``: the server's ``disconnect`` (close the socket; give
    up if it says not to reconnect).
    """

    send: list[cp.WireFrame] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    live: bool = False
    catch_up: bool = False
    closed: cp.Disconnect | None = None


class CableCore:
    """One contact subscription over any number of consecutive connections.

    ``positions`` (stream id -> last position) is updated in place, so a session can persist
    the very dict it passed in. ``since`` is the history timestamp (server clock, taken from
    pings) for streams with no position yet. ``resumed``: the subscription continues one from
    an earlier process, so even its first connection may have missed messages.
    """

    def __init__(
        self,
        pubsub_token: str,
        *,
        protocols: Sequence[str] = DEFAULT_PROTOCOLS,
        positions: dict[str, cp.StreamPosition] | None = None,
        since: float | None = None,
        stale_after: float = STALE_AFTER,
        resumed: bool = False,
    ) -> None:
        unknown = [name for name in protocols if name not in cp.SUBPROTOCOLS]
        if unknown or not protocols:
            raise ValueError(f"unsupported subprotocols: {unknown or 'none offered'}")
        self.identifier = contact_identifier(pubsub_token)
        self.protocols = tuple(protocols)
        self.positions = positions if positions is not None else {}
        self.since = since if since is not None else float(int(time.time()))
        self.stale_after = stale_after
        self.protocol: cp.Subprotocol = cp.NO_SUBPROTOCOL
        self.live = False
        self._resumed = resumed
        self._sid: str | None = None
        self._welcomes = 0
        self._last_frame = 0.0

    # -- connecting -----------------------------------------------------------------------

    def url(self, cable_url: str) -> str:
        """The URL to connect to: with ``?sid=`` when an extended session may be restored."""
        if self._sid is None:
            return cable_url
        parts = urlsplit(cable_url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "sid"] + [("sid", self._sid)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def opened(self, subprotocol: str | None, now: float) -> None:
        """The socket is open with ``subprotocol`` (None: the server chose none, plain JSON).
        Raises :class:`~client_sdk.errors.ProtocolError` for a protocol this SDK did not offer."""
        if subprotocol is None:
            self.protocol = cp.NO_SUBPROTOCOL
        elif subprotocol in self.protocols:
            self.protocol = cp.SUBPROTOCOLS[subprotocol]
        else:
            raise errors.ProtocolError(f"the server chose a protocol not offered: {subprotocol!r}")
        self.live = False
        self._last_frame = now

    def lost(self, reason: str) -> Disconnected:
        """The socket is gone (dropped, stale, or closed after a ``disconnect``)."""
        self.live = False
        return Disconnected(reason)

    def time_left(self, now: float) -> float:
        """Seconds until the connection counts as stale without another frame."""
        return self._last_frame + self.stale_after - now

    def stale(self, now: float) -> bool:
        return self.time_left(now) <= 0

    # -- frames ---------------------------------------------------------------------------

    def encode(self, command: cp.ClientCommand) -> cp.WireFrame:
        return cp.encode(command, self.protocol.encoding)

    def close_frames(self) -> list[cp.WireFrame]:
        """What to send before a clean close: the unsubscribe."""
        if not self.live:
            return []
        return [self.encode(cp.Unsubscribe(identifier=self.identifier))]

    def _history(self) -> cp.HistoryRequest:
        return cp.HistoryRequest(since=self.since, streams=dict(self.positions))

    def receive(self, raw: cp.WireFrame, now: float) -> Step:
        """Feed one received frame; returns what to do about it. Malformed frames are skipped."""
        self._last_frame = now
        step = Step()
        try:
            frame = cp.decode_frame(raw, self.protocol.encoding)
        except cp.CableProtocolError as exc:
            log.debug("skipping a malformed frame: %s", exc)
            return step
        if isinstance(frame, cp.Broadcast):
            self._broadcast(frame, step)
        elif isinstance(frame, cp.Ping):
            # The server's clock: history compares ``since`` with the server's own timestamps.
            if frame.message > 0:
                self.since = max(self.since, float(frame.message))
            if self.protocol.extended:
                step.send.append(self.encode(cp.Pong()))
        elif isinstance(frame, cp.Welcome):
            self._welcome(frame, step)
        elif isinstance(frame, cp.ConfirmSubscription) and frame.identifier == self.identifier:
            self._went_live(step, restored=False)
            # Plain protocol: nothing can be replayed, so the session must look for itself.
            step.catch_up = not self.protocol.extended and (self._welcomes > 1 or self._resumed)
        elif isinstance(frame, cp.RejectHistory) and frame.identifier == self.identifier:
            step.catch_up = True
        elif isinstance(frame, cp.RejectSubscription) and frame.identifier == self.identifier:
            step.closed = cp.Disconnect(reason="subscription_rejected", reconnect=False)
        elif isinstance(frame, cp.Disconnect):
            self._sid = None  # as @anycable/core: after a disconnect frame, never restore
            step.closed = frame
        return step

    def _welcome(self, frame: cp.Welcome, step: Step) -> None:
        self._welcomes += 1
        self.live = False
        if self.protocol.extended and isinstance(frame.sid, str) and frame.sid:
            self._sid = frame.sid
        restored_ids = frame.restored_ids if frame.restored_ids is not UNSET else []
        if self.protocol.extended and frame.restored is True and self.identifier in restored_ids:
            step.send.append(
                self.encode(cp.History(identifier=self.identifier, history=self._history()))
            )
            self._went_live(step, restored=True)
            return
        history = self._history() if self.protocol.extended else None
        step.send.append(self.encode(cp.Subscribe(identifier=self.identifier, history=history)))

    def _went_live(self, step: Step, *, restored: bool) -> None:
        self.live = True
        step.live = True
        step.events.append(Connected(reconnect=self._welcomes > 1, restored=restored))

    def _broadcast(self, frame: cp.Broadcast, step: Step) -> None:
        if frame.identifier != self.identifier:
            return
        stream, epoch, offset = frame.stream_id, frame.epoch, frame.offset
        if stream is not UNSET and epoch is not UNSET and offset is not UNSET and stream and epoch:
            last = self.positions.get(stream)
            if last is not None and last.epoch == epoch and offset <= last.offset:
                return  # a history replay overlapping what already arrived live
            self.positions[stream] = cp.StreamPosition(epoch=epoch, offset=offset)
        event = decode_event(frame.message)
        if event is not None:
            step.events.append(event)
