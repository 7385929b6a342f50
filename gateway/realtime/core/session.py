"""The server side of one /cable connection as a state machine with no I/O.

The shell feeds it decoded time (``now``: Unix seconds, wall clock, as pings carry it), client
frames, authorization and history results, and broker events; it answers with actions
(:mod:`gateway.realtime.core.actions`) and, on the fan-out path, with frames. Typical shell::

    session = CableSession(protocol, stream_ids=ids, now=time.time())
    run(session.start(now, restored=...))      # Listen..., Send(welcome), SaveSession
    on each client frame:   run(session.receive(frame, now))
    on SubscribeRequested:  run(session.subscription_confirmed(identifier, streams, principal))
    on HistoryRequested:    run(session.history_served(identifier, events))
    on each broker event:   send each of session.deliver(encoded_event)
    at session.next_deadline(): run(session.tick(now))
    on the node's ping tick: if session.ping(now): send ping_frame(now, encoding)
    on shutdown:            run(session.disconnect("server_restart", reconnect=True, code=1001))

Subscriptions are keyed by the identifier string exactly as the client sent it; it is echoed
byte for byte, and two spellings of the same channel are two subscriptions (as in Rails).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

from client_sdk import cable_protocol as cp
from client_sdk.cable_protocol import HistoryRequest, Subprotocol, WireFrame

from .actions import (
    Action,
    Close,
    HistoryCursor,
    HistoryRequested,
    Limits,
    Listen,
    Notice,
    PerformRequested,
    SaveSession,
    Send,
    SessionSnapshot,
    SubscribeRequested,
    SubscriptionState,
    Unlisten,
    Unsubscribed,
    new_sid,
)
from .frames import EncodedEvent, Splicer, StreamIds, splicer_for

# Close codes (clients ignore them; they are for logs and proxies).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # server_restart
CLOSE_PROTOCOL_ERROR = 1002  # malformed frame
CLOSE_TOO_BIG = 1009  # frame over the limit
CLOSE_TRY_AGAIN = 1013  # too_slow: the send buffer overflowed; reconnect and catch up


class _Subscription:
    __slots__ = ("identifier", "principal", "splicer", "stream_ids", "streams")

    def __init__(self, state: SubscriptionState, splicer: Splicer, ids: StreamIds) -> None:
        self.identifier = state.identifier
        self.streams = state.streams
        self.principal = state.principal
        self.splicer = splicer
        self.stream_ids = {stream: ids(stream) for stream in state.streams}

    def frame(self, event: EncodedEvent) -> WireFrame:
        return self.splicer.frame(event, self.stream_ids[event.stream])

    def wired(self, event: EncodedEvent) -> bytes:
        return event.wired(self.splicer, self.stream_ids[event.stream])


class CableSession:
    """One connection's protocol state. Not thread-safe; one task drives it."""

    # Thousands live at once, one per socket: no per-instance dict.
    __slots__ = (
        "_awaiting_since",
        "_by_stream",
        "_closed",
        "_enc",
        "_ids",
        "_opened_at",
        "_pending",
        "_sid",
        "_sid_factory",
        "_started",
        "_subs",
        "_subscribed_once",
        "last_received",
        "limits",
        "protocol",
    )

    def __init__(
        self,
        protocol: Subprotocol,
        *,
        stream_ids: StreamIds,
        now: float,
        limits: Limits | None = None,
        sid_factory: Callable[[], str] = new_sid,
    ) -> None:
        self.protocol = protocol
        self.limits = limits or Limits()
        self._sid: str | None = None
        self._sid_factory = sid_factory
        self._ids = stream_ids
        self._enc: cp.Encoding = protocol.encoding
        self._opened_at = now
        self._started = False
        self._closed = False
        self._subscribed_once = False
        self._subs: dict[str, _Subscription] = {}
        self._pending: dict[str, HistoryRequest | None] = {}
        self._by_stream: dict[str, list[_Subscription]] = {}
        self._awaiting_since: float | None = None
        self.last_received = now

    # ---- state -----------------------------------------------------------------------------

    @property
    def sid(self) -> str:
        """The session id, drawn when first asked for (plain-protocol sessions only name
        themselves in logs: 144 random bits each would be spent for nothing)."""
        if self._sid is None:
            self._sid = self._sid_factory()
        return self._sid

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._by_stream)

    @property
    def identifiers(self) -> tuple[str, ...]:
        return tuple(self._subs)

    def stream_for_id(self, stream_id: str) -> str | None:
        """Reverse map of the opaque ids sent to this client, for the streams it holds."""
        for sub in self._subs.values():
            for stream, sid in sub.stream_ids.items():
                if sid == stream_id:
                    return stream
        return None

    def snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            subscriptions=tuple(
                SubscriptionState(identifier=s.identifier, streams=s.streams, principal=s.principal)
                for s in self._subs.values()
            )
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def start(
        self, now: float, restored: Sequence[SubscriptionState] | None = None
    ) -> list[Action]:
        """The welcome. ``restored``: the subscriptions of a found session, already re-checked
        against their credentials (None: nothing to restore; ``[]``: found, nothing survived).
        Only the extended protocol may restore (plain clients would resubscribe, reference §3.4).
        """
        if self._started:
            raise RuntimeError("session already started")
        if restored is not None and not self.protocol.extended:
            raise ValueError("only extended-protocol sessions can be restored")
        self._started = True
        self.last_received = now
        if not self.protocol.extended:
            return [Send(cp.encode(cp.Welcome(), self._enc))]
        actions: list[Action] = []
        listen: list[str] = []
        for state in restored or ():
            if state.identifier not in self._subs:
                listen.extend(self._attach(state))
        if listen:
            actions.append(Listen(tuple(listen)))
        if restored is None:
            welcome = cp.Welcome(sid=self.sid)
        else:
            self._subscribed_once = bool(self._subs)
            welcome = cp.Welcome(sid=self.sid, restored=True, restored_ids=list(self._subs))
        actions.append(Send(cp.encode(welcome, self._enc)))
        actions.append(SaveSession(self.sid, self.snapshot()))
        return actions

    def disconnect(self, reason: str, *, reconnect: bool, code: int = CLOSE_NORMAL) -> list[Action]:
        """Say why, then close (``server_restart``/reconnect on shutdown, ``too_slow`` when the
        send buffer overflows, ``unauthorized``...). Idempotent."""
        if self._closed:
            return []
        self._closed = True
        frame = cp.encode(cp.Disconnect(reason=reason, reconnect=reconnect), self._enc)
        return [Send(frame), Close(code, reason)]

    def tick(self, now: float) -> list[Action]:
        """Timers: time to first subscribe, pong timeout (pings are the node's: ``ping``)."""
        if self._closed or not self._started:
            return []
        limits = self.limits
        if not self._subscribed_once and now - self._opened_at >= limits.first_subscribe_timeout:
            return self.disconnect("idle_timeout", reconnect=False)
        waiting = self._awaiting_since
        if waiting is not None and limits.pong_timeout > 0 and now - waiting >= limits.pong_timeout:
            return self.disconnect("no_pong", reconnect=True)
        return []

    def ping(self, now: float) -> bool:
        """The node's ping tick: every connection gets the same frame, ``ping_frame(now,
        encoding)``, built once (:class:`~gateway.realtime.core.ping_wheel.PingWheel` keeps
        the cadence). Whether this session sends it; with a pong timeout, the clock for the answer
        starts."""
        if self._closed or not self._started:
            return False
        if self.limits.pong_timeout > 0 and self.protocol.extended and self._awaiting_since is None:
            self._awaiting_since = now
        return True

    @property
    def awaiting_pong(self) -> bool:
        """A ping went out and its pong timeout runs (so the session has a deadline)."""
        return self._awaiting_since is not None

    def next_deadline(self) -> float:
        """When ``tick`` has something to do next (infinity: nothing, whatever the time)."""
        deadline = math.inf
        if self._closed or not self._started:
            return deadline
        if not self._subscribed_once:
            deadline = self._opened_at + self.limits.first_subscribe_timeout
        if self._awaiting_since is not None and self.limits.pong_timeout > 0:
            deadline = min(deadline, self._awaiting_since + self.limits.pong_timeout)
        return deadline

    # ---- client frames ---------------------------------------------------------------------

    def receive(self, frame: WireFrame, now: float) -> list[Action]:
        """One client frame. Malformed or oversized: a ``disconnect`` (``invalid_request``, no
        reconnect, since resending the same frame would fail again) and a close."""
        if not self._started:
            raise RuntimeError("receive before start")
        if self._closed:
            return []
        self.last_received = now
        self._awaiting_since = None
        limit = self.limits.max_frame_bytes
        size = len(frame)
        if isinstance(frame, str) and size * 4 > limit:  # a char is at most 4 UTF-8 bytes
            size = len(frame.encode(errors="replace"))
        if size > limit:
            bye = self.disconnect("invalid_request", reconnect=False, code=CLOSE_TOO_BIG)
            return [Notice(f"frame of {size} bytes over the {limit} limit"), *bye]
        try:
            command = cp.decode_command(frame, self._enc)
        except cp.CableProtocolError as exc:
            bye = self.disconnect("invalid_request", reconnect=False, code=CLOSE_PROTOCOL_ERROR)
            return [Notice(str(exc)), *bye]
        if isinstance(command, cp.Subscribe):
            return self._subscribe(command.identifier, command.history)
        if isinstance(command, cp.Unsubscribe):
            return self._unsubscribe(command.identifier)
        if isinstance(command, cp.Perform):
            return self._perform(command.identifier, command.data)
        if isinstance(command, cp.History):
            return self._history_command(command.identifier, command.history)
        if isinstance(command, cp.Pong):
            return []
        return [Notice(f"ignored command {command.command!r}")]

    def _subscribe(self, identifier: str, history: HistoryRequest | None) -> list[Action]:
        if identifier in self._subs or identifier in self._pending:
            # A confirm for an already confirmed identifier makes the JS client unsubscribe.
            return [Notice("duplicate subscribe ignored")]
        reject = [Send(cp.encode(cp.RejectSubscription(identifier=identifier), self._enc))]
        if len(self._subs) + len(self._pending) >= self.limits.max_subscriptions:
            return [Notice("subscription limit reached"), *reject]
        if len(identifier.encode(errors="replace")) > self.limits.max_identifier_bytes:
            return [Notice("identifier too long"), *reject]
        params = _json_object(identifier)
        if params is None or not isinstance(params.get("channel"), str):
            return [Notice("identifier is not a JSON object with a channel"), *reject]
        self._subscribed_once = True
        self._pending[identifier] = history if self.protocol.extended else None
        return [SubscribeRequested(identifier, params)]

    def _unsubscribe(self, identifier: str) -> list[Action]:
        if identifier in self._pending:
            del self._pending[identifier]
            return []  # its authorization result will find nothing pending and be dropped
        sub = self._subs.pop(identifier, None)
        if sub is None:
            return [Notice("unsubscribe for an unknown identifier")]
        dropped: list[str] = []
        for stream in sub.streams:
            subs = self._by_stream[stream]
            subs.remove(sub)
            if not subs:
                del self._by_stream[stream]
                dropped.append(stream)
        actions: list[Action] = []
        if dropped:
            actions.append(Unlisten(tuple(dropped)))
        actions.append(Unsubscribed(identifier, sub.principal))
        return actions + self._saved()

    def _perform(self, identifier: str, data: str) -> list[Action]:
        sub = self._subs.get(identifier)
        if sub is None:
            return [Notice("message for an unconfirmed identifier")]
        payload = _json_object(data)
        action = payload.get("action") if payload is not None else None
        if payload is None or not isinstance(action, str):
            return [Notice("message data is not a JSON object with an action")]
        return [PerformRequested(identifier, sub.principal, action, payload)]

    def _history_command(self, identifier: str, history: HistoryRequest) -> list[Action]:
        if not self.protocol.extended:
            return [Notice("history on a plain protocol ignored")]
        sub = self._subs.get(identifier)
        if sub is None:
            return [Send(cp.encode(cp.RejectHistory(identifier=identifier), self._enc))]
        if not history.requested:
            return [Notice("empty history request")]
        return self._history(sub, history)

    def _history(self, sub: _Subscription, history: HistoryRequest) -> list[Action]:
        positions = history.streams or {}
        since = history.since if history.since is not None and history.since > 0 else None
        cursors: list[HistoryCursor] = []
        for stream in sub.streams:
            pos = positions.get(sub.stream_ids[stream])
            if pos is not None:
                cursors.append(HistoryCursor(stream, pos.epoch, pos.offset, None))
            elif since is not None:
                cursors.append(HistoryCursor(stream, None, None, float(since)))
        # Even with nothing to read the shell is asked (and answers with no events), so that it
        # knows the client's catch-up is over and live events held back for it can flow.
        return [HistoryRequested(sub.identifier, tuple(cursors))]

    # ---- results of intents ----------------------------------------------------------------

    def subscription_confirmed(
        self, identifier: str, streams: Sequence[str], principal: str = ""
    ) -> list[Action]:
        """The authorizer accepted ``identifier``: listen, confirm, then ask for its history if
        the subscribe carried one. A result for nothing pending (unsubscribed meanwhile) is
        dropped."""
        if self._closed or identifier not in self._pending:
            return []
        history = self._pending.pop(identifier)
        state = SubscriptionState(
            identifier=identifier, streams=tuple(dict.fromkeys(streams)), principal=principal
        )
        listen = self._attach(state)
        actions: list[Action] = [Listen(tuple(listen))] if listen else []
        actions.append(Send(cp.encode(cp.ConfirmSubscription(identifier=identifier), self._enc)))
        actions.extend(self._saved())
        if history is not None and history.requested:
            actions.extend(self._history(self._subs[identifier], history))
        return actions

    def subscription_rejected(self, identifier: str) -> list[Action]:
        if self._closed or identifier not in self._pending:
            return []
        del self._pending[identifier]
        return [Send(cp.encode(cp.RejectSubscription(identifier=identifier), self._enc))]

    def history_served(self, identifier: str, events: Iterable[EncodedEvent]) -> list[Action]:
        """Replay ``events`` (already in stream-then-offset order) and confirm the history."""
        sub = self._subs.get(identifier)
        if self._closed or sub is None:
            return []
        actions: list[Action] = [Send(sub.frame(e)) for e in events if e.stream in sub.stream_ids]
        actions.append(Send(cp.encode(cp.ConfirmHistory(identifier=identifier), self._enc)))
        return actions

    def history_rejected(self, identifier: str) -> list[Action]:
        if self._closed or identifier not in self._subs:
            return []
        return [Send(cp.encode(cp.RejectHistory(identifier=identifier), self._enc))]

    # ---- fan-out ---------------------------------------------------------------------------

    def deliver(self, event: EncodedEvent) -> list[WireFrame]:
        """The frames ``event`` becomes on this connection: one per subscription holding its
        stream (usually one). The hot path: dictionary look-ups and byte splicing only."""
        subs = self._by_stream.get(event.stream)
        if not subs or self._closed:
            return []
        return [sub.frame(event) for sub in subs]

    def wired_frame(self, event: EncodedEvent) -> bytes | None:
        """The one websocket frame of ``event`` when exactly one subscription holds its stream
        (the usual case, without a list per socket); None otherwise (see
        :meth:`deliver_wired`)."""
        subs = self._by_stream.get(event.stream)
        if subs is None or len(subs) != 1 or self._closed:
            return None
        sub = subs[0]
        return event.wired(sub.splicer, sub.stream_ids[event.stream])

    def deliver_wired(self, event: EncodedEvent) -> list[bytes]:
        """:meth:`deliver` as websocket frames, each built once per event and subscription
        identifier on this node and shared by every socket subscribed with it."""
        subs = self._by_stream.get(event.stream)
        if not subs or self._closed:
            return []
        if len(subs) == 1:  # the usual case, without a comprehension's frame
            return [subs[0].wired(event)]
        return [sub.wired(event) for sub in subs]

    # ---- internals -------------------------------------------------------------------------

    def _attach(self, state: SubscriptionState) -> list[str]:
        """Register a live subscription; return the streams this connection did not hold."""
        splicer = splicer_for(self._enc, state.identifier, positions=self.protocol.extended)
        sub = _Subscription(state, splicer, self._ids)
        self._subs[state.identifier] = sub
        new: list[str] = []
        for stream in sub.streams:
            subs = self._by_stream.get(stream)
            if subs is None:
                self._by_stream[stream] = [sub]
                new.append(stream)
            else:
                subs.append(sub)
        return new

    def _saved(self) -> list[Action]:
        return [SaveSession(self.sid, self.snapshot())] if self.protocol.extended else []


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(text)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
