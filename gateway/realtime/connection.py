"""The shell around one :class:`~gateway.realtime.core.CableSession`, whatever carries its frames:
answers the session's intents, owns the connection's send budget, keeps delivery exactly once.

Two carriers subclass it: :class:`~gateway.realtime.lean.LeanConnection`, the socket's own
``asyncio.Protocol`` (the default: no task per socket, frames framed once for everyone), and
:class:`~gateway.realtime.asgi_connection.AsgiConnection`, under uvicorn's websocket protocol
(``INBOXGATE_CABLE_TRANSPORT=asgi``). Fan-out never waits: the hub calls
:meth:`Connection.deliver`, which only writes or buffers, within a bound. A socket over the
bound is a slow consumer: it is told ``too_slow`` (reconnect: true) and closed, and it catches up
through history on its next connection.

Exactly once, in order, per stream: the connection remembers the last offset it sent on each
stream and skips anything at or below it. While a subscription's history is being replayed,
live events of its streams wait in a buffer and follow the replay, so they never overtake it.
After a session restore the streams wait (up to ``RESTORE_HISTORY_WAIT``) for the client's
``history`` command, which the extended-protocol clients send right after the welcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import msgspec

from client_sdk.cable_protocol import WireFrame

from .. import metrics
from ..domain import events
from ..store import StoreUnavailable
from ..store.records import LoggedEvent
from ..store.sql import Op
from .core import (
    CLOSE_TRY_AGAIN,
    Action,
    CableSession,
    Close,
    EncodedEvent,
    HistoryCursor,
    HistoryRequested,
    Listen,
    Notice,
    PerformRequested,
    SaveSession,
    SubscribeRequested,
    SubscriptionState,
    Unlisten,
    Unsubscribed,
    ping_frame,
)
from .core import Send as SendFrame
from .core.errors import RealtimeError
from .hub import Hub
from .room import Grant

log = logging.getLogger("inboxgate.cable")

RESTORE_HISTORY_WAIT = 5.0
# A slow consumer that does not even take its goodbye within this long is cut.
ABORT_AFTER = 10.0
_CONFIRMED = metrics.CABLE_SUBSCRIBES.labels("confirmed")
_REJECTED = metrics.CABLE_SUBSCRIBES.labels("rejected")
_SUBSCRIBE_UNAVAILABLE = metrics.CABLE_SUBSCRIBES.labels("unavailable")
_RESTORED = metrics.CABLE_RESTORES.labels("restored")
_RESTORE_UNKNOWN = metrics.CABLE_RESTORES.labels("unknown")
_RESTORE_DEFERRED = metrics.CABLE_RESTORES.labels("deferred")
_HISTORY_SERVED = metrics.CABLE_HISTORY.labels("served")
_HISTORY_REJECTED = metrics.CABLE_HISTORY.labels("rejected")
# The actions a shell must await (store reads, session cache writes); the others are immediate.
ASYNC_ACTIONS = (SubscribeRequested, HistoryRequested, PerformRequested, SaveSession)


class RestoreDeferred(RealtimeError):
    """A session restore that the store could not re-check now (it is kept for a retry)."""


class Connection:
    """What every carrier of a /cable socket shares. A subclass writes frames
    (``_emit``, ``_push_control``), cuts the socket (``abort``), and calls :meth:`open` once
    the socket is accepted and :meth:`closed` once it is gone."""

    __slots__ = (
        "_abort_at",
        "_heads",
        "_held",
        "_held_bytes",
        "_held_until",
        "_sent",
        "grants",
        "hub",
        "listening",
        "session",
    )

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.grants: dict[str, Grant] = {}
        self.listening: set[str] = set()
        self._sent: dict[str, tuple[str, int]] = {}  # stream -> last (epoch, offset) sent
        self._held: dict[str, list[EncodedEvent]] | None = None  # streams waiting for history
        self._held_bytes = 0
        self._held_until: float | None = None
        self._abort_at: float | None = None
        self._heads: dict[str, tuple[str, int]] | None = None  # for the next Listen only

    # ---- what a carrier provides --------------------------------------------------------------

    def _emit(self, event: EncodedEvent) -> None:
        """Write ``event``'s frames (one per subscription holding its stream)."""
        raise NotImplementedError

    def _push_control(self, item: WireFrame | Close) -> None:
        """A protocol frame or the close: not subject to the send budget."""
        raise NotImplementedError

    def abort(self) -> None:
        """Cut the socket now."""
        raise NotImplementedError

    def _drop_pending(self) -> None:
        """A slow consumer: forget the frames not yet handed to the socket."""

    # ---- the socket's life -----------------------------------------------------------------

    async def open(self, session: CableSession, restore: str | None) -> None:
        """The socket is accepted: restore ``restore`` if asked and possible, register with the
        hub, welcome (or, when the store cannot re-check the session, send it back later)."""
        self.session = session
        deferred = False
        try:
            restored = (
                await self._restore(restore) if restore and session.protocol.extended else None
            )
        except RestoreDeferred:
            restored, deferred = None, True
            _RESTORE_DEFERRED.inc()
        self.hub.register(self)
        if deferred:
            # The database could not re-check the session, which is kept: a welcome now would
            # use it up for nothing. Come back later with the same sid.
            await self._run(
                session.disconnect("server_restart", reconnect=True, code=CLOSE_TRY_AGAIN)
            )
            return
        now = self.hub.clock()
        if restored:
            streams = [s for state in restored for s in state.streams]
            self._heads = await self.hub.heads(streams)
            self._hold(streams)
            self._held_until = now + RESTORE_HISTORY_WAIT
            self.hub.watch(self)
        try:
            await self._run(session.start(now, restored=restored))
        finally:
            self._heads = None

    def closed(self) -> None:
        """The socket is gone: out of the hub, subscriptions ended; a session dropped by the
        network is kept for a restore (its TTL from now)."""
        self.hub.unregister(self)
        self._ungrant_all()
        self.listening.clear()
        session = getattr(self, "session", None)
        if session is not None and session.protocol.extended and not session.closed and self.grants:
            self.hub.spawn(self.hub.sessions.put(session.sid, session.snapshot()))

    # ---- called by the hub -----------------------------------------------------------------

    def deliver(self, event: EncodedEvent) -> None:
        """A live event of a stream this connection listens to. Never blocks."""
        if self._held is not None:
            held = self._held.get(event.stream)
            if held is not None:
                held.append(event)
                self._held_bytes += len(event.payload)
                if self._held_bytes > self.hub.send_buffer_bytes:
                    self.too_slow()
                return
        self._send_event(event)

    def deliver_all(self, events: Sequence[EncodedEvent]) -> None:
        """Live events in order (a carrier may write them together)."""
        for event in events:
            self.deliver(event)

    def deliver_transient(self, event: EncodedEvent) -> None:
        """A transient event for this connection alone (the subscribe-time presence)."""
        self._send_event(event)

    def tick(self, now: float) -> bool:
        """The hub's timer, while this connection has a deadline; whether it still has one."""
        if self._abort_at is not None:
            if now >= self._abort_at:
                self._abort_at = None
                self.abort()
            return self._abort_at is not None
        if self._held_until is not None and now >= self._held_until:
            self._held_until = None
            self._release(list(self._held or ()))
        session = self.session
        if now >= session.next_deadline():
            self._run_now(session.tick(now))
        return self._held_until is not None or session.next_deadline() != math.inf

    def ping(self, now: float) -> None:
        """The node's ping tick (the frame is built once per second for everyone)."""
        session = self.session
        if session.ping(now):
            self._push_control(ping_frame(now, session.protocol.encoding))
            if session.next_deadline() != math.inf:
                self.hub.watch(self)

    def shutdown(self) -> None:
        self._run_now(self.session.disconnect("server_restart", reconnect=True, code=1001))
        self._abort_at = self.hub.clock() + ABORT_AFTER
        self.hub.watch(self)

    def resync(self) -> None:
        """The node lost events of a stream it cannot heal: the client reconnects and catches
        up from its own positions (history) or the messages API."""
        self._run_now(self.session.disconnect("resync", reconnect=True, code=CLOSE_TRY_AGAIN))

    def too_slow(self) -> None:
        if self.session.closed:
            return
        self.hub.slow_consumer(self.session.sid)
        self._drop_pending()
        self._held = None
        self._held_bytes = 0
        self.hub.unlisten(self, list(self.listening))
        self.listening.clear()
        self._run_now(self.session.disconnect("too_slow", reconnect=True, code=CLOSE_TRY_AGAIN))
        self._abort_at = self.hub.clock() + ABORT_AFTER
        self.hub.watch(self)

    # ---- frames out ------------------------------------------------------------------------

    def _send_event(self, event: EncodedEvent) -> None:
        position = event.position
        if position is not None:
            last = self._sent.get(event.stream)
            if last is not None and last[0] == position[0] and position[1] <= last[1]:
                return
            self._sent[event.stream] = position
        if not self.session.closed:
            self._emit(event)

    # ---- history holds ---------------------------------------------------------------------

    def _hold(self, streams: Sequence[str]) -> None:
        if self._held is None:
            self._held = {}
        for stream in streams:
            self._held.setdefault(stream, [])

    def _release(self, streams: Sequence[str]) -> None:
        for stream in streams:
            waiting = self._held.pop(stream, None) if self._held is not None else None
            for event in waiting or ():
                self._held_bytes -= len(event.payload)
                self._send_event(event)
        if not self._held:
            self._held = None
            self._held_bytes = 0
            self._held_until = None

    # ---- actions ---------------------------------------------------------------------------

    def _run_now(self, actions: Sequence[Action]) -> None:
        """Actions that need no I/O (every kind but ``ASYNC_ACTIONS``, which are skipped)."""
        for action in actions:
            if isinstance(action, SendFrame):
                self._push_control(action.frame)
            elif isinstance(action, Close):
                self._push_control(action)
            elif isinstance(action, Notice):
                log.debug("cable %s: %s", self.session.sid, action.message)
            elif isinstance(action, Listen):
                if not self.session.closed:
                    self.listening.update(action.streams)
                    self.hub.listen(self, action.streams, self._heads)
            elif isinstance(action, Unlisten):
                self.listening.difference_update(action.streams)
                self.hub.unlisten(self, action.streams)
                for stream in action.streams:
                    self._sent.pop(stream, None)
                    if self._held is not None:
                        self._held.pop(stream, None)
            elif isinstance(action, Unsubscribed):
                self._ungrant(action.identifier)

    async def _run(self, actions: Sequence[Action]) -> None:
        """Every action, in order."""
        for action in actions:
            if isinstance(action, SubscribeRequested):
                await self._subscribe(action.identifier, action.params)
            elif isinstance(action, HistoryRequested):
                await self._history(action.identifier, action.cursors)
            elif isinstance(action, PerformRequested):
                grant = self.grants.get(action.identifier)
                if grant is not None:
                    reply = await self.hub.room.perform(grant, action.action, action.data)
                    if reply is not None:
                        self._send_event(EncodedEvent(grant.own_stream, None, 0, reply))
            elif isinstance(action, SaveSession):
                await self.hub.sessions.put(action.sid, action.snapshot)
            else:
                self._run_now((action,))

    async def _subscribe(self, identifier: str, params: dict[str, Any]) -> None:
        try:
            grant = await self.hub.room.authorize(params)
        except StoreUnavailable:
            _SUBSCRIBE_UNAVAILABLE.inc()
            await self._run(self.session.disconnect("unavailable", reconnect=True, code=1011))
            return
        if grant is None:
            _REJECTED.inc()
            await self._run(self.session.subscription_rejected(identifier))
            return
        heads = await self.hub.heads(grant.streams)
        actions = self.session.subscription_confirmed(identifier, grant.streams, grant.principal)
        if not actions:
            return  # unsubscribed meanwhile
        _CONFIRMED.inc()
        self._grant({identifier: grant})
        if any(isinstance(a, HistoryRequested) for a in actions):
            self._hold(grant.streams)  # before Listen: live events wait behind the replay
        self._heads = heads
        try:
            await self._run(actions)
        finally:
            self._heads = None
        joined = await self.hub.room.joined(grant)
        # Not in the confirmation's write: a broadcast in Chatwoot, so it comes a moment later.
        self.hub.deliver_later(self, EncodedEvent(grant.own_stream, None, 0, joined))

    async def _history(self, identifier: str, cursors: Sequence[HistoryCursor]) -> None:
        grant = self.grants.get(identifier)
        streams = grant.streams if grant is not None else tuple(c.stream for c in cursors)
        try:
            found = await self.hub.store.read(_replay, tuple(cursors))
        except StoreUnavailable:
            found = None
        if found is None:
            _HISTORY_REJECTED.inc()
            await self._run(self.session.history_rejected(identifier))
        else:
            replay: list[EncodedEvent] = []
            for entry in found:
                last = self._sent.get(entry.stream)
                if last is not None and last[0] == entry.epoch and entry.offset <= last[1]:
                    continue
                self._sent[entry.stream] = (entry.epoch, entry.offset)
                replay.append(EncodedEvent.of(entry))
            _HISTORY_SERVED.inc()
            metrics.CABLE_HISTORY_EVENTS.inc(len(replay))
            await self._run(self.session.history_served(identifier, replay))
        self._release(streams)

    async def _restore(self, sid: str) -> list[SubscriptionState] | None:
        """The subscriptions of session ``sid`` that their credentials still allow, re-checked
        now (a deleted contact or a removed agent restores nothing); None if no such session."""
        snapshot = await self.hub.sessions.take(sid)
        if snapshot is None:
            _RESTORE_UNKNOWN.inc()
            return None
        restored: list[SubscriptionState] = []
        grants: dict[str, Grant] = {}
        for state in snapshot.subscriptions:
            try:
                params = msgspec.json.decode(state.identifier)
                grant = await self.hub.room.authorize(params) if isinstance(params, dict) else None
            except msgspec.DecodeError:
                grant = None
            except StoreUnavailable:
                await self.hub.sessions.put(sid, snapshot)
                raise RestoreDeferred(sid) from None
            if grant is None or grant.principal != state.principal:
                continue
            grants[state.identifier] = grant
            restored.append(
                SubscriptionState(
                    identifier=state.identifier, streams=grant.streams, principal=grant.principal
                )
            )
        self._grant(grants)
        _RESTORED.inc()
        return restored

    # ---- subscriptions (a gauge over every connection) -----------------------------------

    def _grant(self, grants: dict[str, Grant]) -> None:
        added = sum(1 for identifier in grants if identifier not in self.grants)
        self.grants.update(grants)
        if added:
            self.hub.subscriptions += added
            metrics.CABLE_SUBSCRIPTIONS.inc(added)

    def _ungrant(self, identifier: str) -> None:
        if self.grants.pop(identifier, None) is not None:
            self.hub.subscriptions -= 1
            metrics.CABLE_SUBSCRIPTIONS.dec()

    def _ungrant_all(self) -> None:
        """The socket ended: its subscriptions end (a restore counts them again)."""
        if self.grants:
            self.hub.subscriptions -= len(self.grants)
            metrics.CABLE_SUBSCRIPTIONS.dec(len(self.grants))


def _replay(cursors: tuple[HistoryCursor, ...]) -> Op[list[LoggedEvent] | None]:
    """All cursors in one read transaction, all or nothing (reference §5.3)."""
    found: list[LoggedEvent] = []
    for cursor in cursors:
        if cursor.epoch is not None and cursor.offset is not None:
            part = yield from events.replay_after(cursor.stream, cursor.epoch, cursor.offset)
        elif cursor.since is not None:
            part = yield from events.replay_since(cursor.stream, cursor.since)
        else:
            part = []
        if part is None:
            return None
        found.extend(part)
    return found
