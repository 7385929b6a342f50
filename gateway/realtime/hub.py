"""The node's cable registry: which local connections hear which stream, fed by the broker.

One task reads the node's broker feed and hands each event, encoded once
(:class:`~gateway.realtime.core.EncodedEvent`), to every local connection listening to its stream.
The broker is only a doorbell, so the hub keeps, per stream, the last offset it delivered: an offset
that jumps, or a :class:`~gateway.broker.Gap`, is healed by re-reading the log before going on,
and an offset already delivered is skipped. A second task is the one timer of every connection:
each tick pings the connections whose turn it is (each every 3 s, spread over the 3 s: the ping
wheel; the same frame for everyone in a second, built once) and visits only the connections
with a deadline (first-subscribe timeout, pong timeout, history waits, slow-consumer kills),
not the thousands that are simply idle. A third reconciles now and then: a lost broadcast shows
as an offset jump only when a later event comes, so the log heads of the listened streams are
compared with what was delivered, and a stream behind gets a Gap, healed like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from .. import metrics
from ..broker import Broker, BrokerClosed, BrokerMessage, Delivery, Feed, Gap
from ..domain import events
from ..logs import StateLog
from ..store import Store, StoreUnavailable
from ..store.records import LoggedEvent
from .core import EncodedEvent, Limits, PingWheel, StreamIds
from .room import RoomChannel
from .sessions import SessionCache

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger("inboxgate.cable")

TICK_SECONDS = 0.25
# The node feed is a doorbell; overflowing it costs a log read, never an event.
FEED_QUEUE = 16_384
# A stream that lost events before delivering any is re-read from shortly before it was first
# listened to: events are stamped by the writing node's clock before its commit and publish.
HEAL_SLACK_SECONDS = 5.0
# Streams whose heads one reconcile query reads.
RECONCILE_BATCH = 500
# A reconcile reads the heads of the listened streams that got a log entry since the last one
# began, less this (an entry is stamped before its commit, and one too young to judge is left
# to the next round); every FULL_RECONCILE_EVERY rounds it reads every listened stream's head,
# for a commit slower than that. At 10,000 idle sockets the full read cost 20 queries each
# round, where the quiet log now costs one that finds nothing.
RECONCILE_SLACK_SECONDS = HEAL_SLACK_SECONDS
FULL_RECONCILE_EVERY = 12
# A head younger than this may still be on its way through the broker: not behind yet.
RECONCILE_GRACE_SECONDS = 1.0
# Slow consumers are reported when the first is dropped, and again once none was for this long.
SLOW_QUIET_SECONDS = 60.0
# The presence.update sent on subscribe is, in Chatwoot, a broadcast: it reaches the client a
# pub/sub round trip after the confirmation, never in the same read. Clients that register a
# subscription only once they have processed its confirmation depend on that.
PRESENCE_DELAY = 0.05
# A ping round (the connections of one slot of the ping wheel: a twelfth of them, every
# quarter of a second) writes to each socket (one system call each, ~15 us). Rounds bigger than
# this go in slices of it, one per turn of the loop, with I/O in between, so a POST crossing
# the loop several times waits behind a slice at most each time. When every socket was pinged
# in one round every 3 s (before the wheel), slices of 1,000 (~8 ms each) set the p99 at 10k
# sockets (86-97 ms at 250 msg/s; 43-46 ms with 100); with 20, three interleaved pairs of the
# chat workload (10,020 sockets) gave p99 9.2/8.2/12.3 ms at 250 msg/s against 22.0/20.5/12.2
# with 100; slices of 10 cost more CPU and gained nothing more.
PING_SLICE = 20
# Sockets live for hours, and the collector's older generations rescan every one of them: after
# 10,000 opens a gen-1 collection took 56 ms, and a full one 50-220 ms, all of it holding the
# loop. So every this many sockets opened, the next tick hands them to ``settle`` (the server's:
# out of the collector's reach). Opening and closing sockets makes no cyclic garbage (their
# objects die by their reference counts), so nothing is kept alive by it.
SETTLE_AFTER_OPENS = 1000
# The "epoch" of a stream that had no events when this node started listening to it.
_EMPTY = ""
_HEALED = metrics.CABLE_GAPS.labels("healed")
_UNHEALED = metrics.CABLE_GAPS.labels("unavailable")


class Hub:
    def __init__(
        self,
        *,
        broker: Broker,
        store: Store,
        room: RoomChannel,
        sessions: SessionCache,
        stream_ids: StreamIds,
        limits: Limits | None = None,
        send_buffer_bytes: int = 1 << 20,
        reconcile_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.store = store
        self.room = room
        self.sessions = sessions
        self.stream_ids = stream_ids
        self.limits = limits or Limits()
        self.send_buffer_bytes = send_buffer_bytes
        self.reconcile_seconds = reconcile_seconds
        self.clock = clock
        self.accepting = False
        self._feed: Feed | None = None
        self._dispatching = False  # the feed task is between a batch's start and its end
        self._pending: list[BrokerMessage] = []  # taken by the direct path, not yet fanned out
        self._connections: set[Connection] = set()
        self._timed: set[Connection] = set()  # the connections with a deadline
        slots = max(1, round(self.limits.ping_interval / TICK_SECONDS))
        self._pings: PingWheel[Connection] = PingWheel(self.limits.ping_interval, slots, clock())
        # stream -> its connections (a dict as an ordered set: thousands of tabs on a stream)
        self._listeners: dict[str, dict[Connection, None]] = {}
        self._delivered: dict[str, tuple[str, int]] = {}  # stream -> (epoch, offset)
        self._listened_at: dict[str, float] = {}
        self._reconciled_at: float | None = None  # when the last reconcile began
        self.subscriptions = 0  # confirmed, over every connection (kept by the connections)
        self._slow = StateLog(log)
        self._slow_at: float | None = None
        self._later: list[tuple[Connection, EncodedEvent]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # The loop the hub runs on, kept: on Python 3.11 every asyncio.get_running_loop() is a
        # getpid system call (fork detection), and a socket opened took two, a fan-out one.
        self._loop: asyncio.AbstractEventLoop | None = None
        # Frames the lean transport wrote in a fan-out or a ping tick, added to the metrics at
        # its end (a counter increment per frame would cost more than the write).
        self.frames_out = 0
        self.bytes_out = 0
        # Called by the tick once SETTLE_AFTER_OPENS sockets opened since the last call.
        self.settle: Callable[[], None] | None = None
        self._opened = 0
        self._later_timer: asyncio.TimerHandle | None = None
        # The rest of a sliced ping round: its next slice's handle, its connections and where
        # that slice starts (None: no round is under way).
        self._ping_rest: tuple[asyncio.Handle, list[Connection], int] | None = None

    # ---- state -----------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop: the hub's own once it runs (see ``_loop``)."""
        return self._loop or asyncio.get_running_loop()

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._listeners)

    @property
    def timed(self) -> int:
        """Connections the timer visits between pings (the others are idle)."""
        return len(self._timed)

    # ---- lifecycle -------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver broker events and drive timers until cancelled (owned by the lifespan)."""
        self._loop = asyncio.get_running_loop()
        feed = self.broker.open_feed(max_queue=FEED_QUEUE)
        feed.deliver_directly(self._deliver_now)
        self._feed = feed
        self.accepting = True
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._tick_forever)
                if self.reconcile_seconds > 0:
                    tasks.start_soon(self._reconcile_forever)
                task_status.started()
                try:
                    while True:
                        batch = await feed.receive()
                        self._dispatching = True
                        try:
                            await self._dispatch(batch)
                        finally:
                            self._dispatching = False
                except BrokerClosed:
                    log.warning("broker closed: realtime delivery stopped")
                tasks.cancel_scope.cancel()
        finally:
            self.accepting = False
            self._loop = None
            feed.close()
            self._feed = None
            if self._later_timer is not None:
                self._later_timer.cancel()
                self._later_timer = None
            if self._ping_rest is not None:
                self._ping_rest[0].cancel()
                self._ping_rest = None
            self._later.clear()
            for task in list(self._tasks):
                task.cancel()

    async def drain(self, timeout: float = 3.0) -> None:
        """Shutdown: tell every client ``server_restart`` (reconnect: true), give the frames a
        moment to leave, then cut whoever is left. New sockets are refused from here on."""
        self.accepting = False
        for conn in list(self._connections):
            conn.shutdown()
        with anyio.move_on_after(timeout):
            while self._connections:
                await anyio.sleep(0.05)
        for conn in list(self._connections):
            conn.abort()

    # ---- registry (called by connections) ----------------------------------------------------

    def register(self, conn: Connection) -> None:
        self._connections.add(conn)
        self._pings.add(conn)
        self._timed.add(conn)  # until it subscribes, the first-subscribe timeout runs
        self._opened += 1
        metrics.CABLE_CONNECTIONS.inc()

    def unregister(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self._pings.discard(conn)
            metrics.CABLE_CONNECTIONS.dec()
        self._timed.discard(conn)
        self.unlisten(conn, list(conn.listening))

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Short work for a socket that has no task of its own (a subscribe, a history read,
        saving a session): owned by the hub, cancelled when it stops, failures logged."""
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("cable: %s", exc, exc_info=exc)

    def watch(self, conn: Connection) -> None:
        """``conn`` has a deadline: its ``tick`` is called until it says it has none left."""
        if conn in self._connections:
            self._timed.add(conn)

    def slow_consumer(self, sid: str) -> None:
        """A connection was dropped as too slow: counted, and said once per bout."""
        metrics.CABLE_SLOW.inc()
        self._slow_at = self.clock()
        if not self._slow.failing(
            None, "websocket clients too slow, disconnecting them (first: %s, send buffer over "
            "%d bytes); they resume from history", sid, self.send_buffer_bytes,
        ):  # fmt: skip
            log.debug("cable %s: too slow, disconnected", sid)

    async def heads(self, streams: Sequence[str]) -> dict[str, tuple[str, int]]:
        """Where the streams this node does not listen to yet stand in the log, read before a
        subscription goes live and handed to :meth:`listen`. With several nodes, an event
        committed elsewhere may arrive after a later one committed here; a stream with nothing
        delivered would start from the later one and drop the earlier as already delivered.
        From a head, the later one is a jump, healed from the log in order. One node's own
        events arrive in commit order: no read then (and none when the store is down)."""
        if not self.broker.crosses_nodes:
            return {}
        new = [s for s in streams if s not in self._listeners]
        if not new:
            return {}
        try:
            found = await self.store.read(events.stream_heads, new)
        except StoreUnavailable:
            return {}
        return {s: found[s][:2] if s in found else (_EMPTY, 0) for s in new}

    def listen(
        self,
        conn: Connection,
        streams: Sequence[str],
        heads: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        for stream in streams:
            listeners = self._listeners.get(stream)
            if listeners is None:
                self._listeners[stream] = {conn: None}
                self._listened_at[stream] = self.clock()
                if heads and stream in heads:
                    self._delivered[stream] = heads[stream]
                metrics.CABLE_STREAMS.inc()
                if self._feed is not None:
                    self._feed.listen(stream)
            else:
                listeners[conn] = None

    def unlisten(self, conn: Connection, streams: Sequence[str]) -> None:
        for stream in streams:
            listeners = self._listeners.get(stream)
            if listeners is None or conn not in listeners:
                continue
            del listeners[conn]
            if not listeners:
                del self._listeners[stream]
                metrics.CABLE_STREAMS.dec()
                self._delivered.pop(stream, None)
                self._listened_at.pop(stream, None)
                if self._feed is not None:
                    self._feed.unlisten(stream)

    # ---- fan-out ---------------------------------------------------------------------------

    async def _dispatch(self, batch: Sequence[Delivery]) -> None:
        self.flush()  # what the direct path took comes first
        for item in batch:
            if isinstance(item, Gap):
                await self._heal(item.stream)
                continue
            if item.stream not in self._listeners:
                continue
            if item.epoch is not None:
                last = self._delivered.get(item.stream)
                if last is not None and last[0] in (item.epoch, _EMPTY):
                    if item.offset <= last[1]:
                        continue  # already delivered (re-read from the log meanwhile)
                    if item.offset > last[1] + 1:
                        await self._heal(item.stream)  # the log has the missing ones, and this
                        continue
            self._fan_out(item)

    def _deliver_now(self, message: BrokerMessage) -> bool:
        """The feed's direct path: a message taken in the publisher's call and fanned out at
        the end of this turn of the event loop (:meth:`flush`), unless the feed task is busy
        (it keeps the order) or the stream must be healed first (False)."""
        if self._dispatching:
            return False
        stream = message.stream
        if stream not in self._listeners:
            return True
        if message.epoch is not None:
            last = self._delivered.get(stream)
            if last is not None and last[0] in (message.epoch, _EMPTY):
                if message.offset <= last[1]:
                    return True
                if message.offset > last[1] + 1:
                    return False
            self._delivered[stream] = (message.epoch, message.offset)
        pending = self._pending
        pending.append(message)
        if len(pending) == 1:
            self.loop.call_soon(self.flush)
        return True

    def flush(self) -> None:
        """Fan out what the direct path took during this turn of the loop. The request that
        committed has answered by then; the commits of one group commit arrive together, and
        each socket gets all of their frames, in order, in one write."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if len(pending) == 1:
            message = pending[0]
            listeners = self._listeners.get(message.stream)
            if listeners:
                event = EncodedEvent.of(message)
                for conn in list(listeners):
                    conn.deliver(event)
        else:
            batches: dict[Connection, list[EncodedEvent]] = {}
            for message in pending:
                event = EncodedEvent.of(message)
                for conn in self._listeners.get(message.stream, ()):
                    found = batches.get(conn)
                    if found is None:
                        batches[conn] = [event]
                    else:
                        found.append(event)
            for conn, events in batches.items():
                conn.deliver_all(events)
        self._count_sent()

    def _fan_out(self, message: BrokerMessage | LoggedEvent) -> None:
        listeners = self._listeners.get(message.stream)
        if not listeners:
            return
        if message.epoch is not None:
            self._delivered[message.stream] = (message.epoch, message.offset)
        event = EncodedEvent.of(message)
        for conn in list(listeners):
            conn.deliver(event)
        self._count_sent()

    def deliver_later(self, conn: Connection, event: EncodedEvent) -> None:
        """Deliver a transient ``event`` to ``conn`` alone, ``PRESENCE_DELAY`` from now, as a
        broadcast would arrive: one timer for every connection's pending frames."""
        self._later.append((conn, event))
        if self._later_timer is None:
            self._later_timer = self.loop.call_later(PRESENCE_DELAY, self._deliver_pending)

    def _deliver_pending(self) -> None:
        self._later_timer = None
        pending, self._later = self._later, []
        for conn, event in pending:
            if conn in self._connections:
                conn.deliver_transient(event)

    async def _heal(self, stream: str) -> None:
        """Messages of ``stream`` were lost on the way: replay what the log has after the last
        delivered offset or, with none yet, since the stream was first listened to (a Redis
        reconnect gaps every stream, most of them idle: their sockets must not all be cut).
        Connections skip what they already sent."""
        last = self._delivered.get(stream)
        if stream not in self._listeners:
            return
        try:
            if last is None:
                since = self._listened_at.get(stream, 0.0) - HEAL_SLACK_SECONDS
                found = await self.store.read(events.read_stream_since, stream, since, FEED_QUEUE)
            else:
                found = await self.store.read(events.read_stream, stream, last[1], FEED_QUEUE)
        except StoreUnavailable:
            # The store says when it goes down; one line per stream would be thousands.
            _UNHEALED.inc()
            log.debug("could not heal stream %s: store unavailable", stream)
            for conn in list(self._listeners.get(stream, ())):
                conn.resync()
            return
        _HEALED.inc()
        metrics.CABLE_HEALED_EVENTS.inc(len(found))
        log.debug("healed %s from the log: %d events after %s", stream, len(found), last)
        for entry in found:
            current = self._delivered.get(stream)
            if current is not None and current[0] == entry.epoch and entry.offset <= current[1]:
                continue
            self._fan_out(entry)

    async def reconcile(self, full: bool = True) -> list[str]:
        """Mark a Gap on every listened stream whose log head is past what was delivered (or,
        with nothing delivered, that got an event after it was first listened to), so the feed
        task heals it in order with the live events. Returns those streams. Unless ``full``,
        only the streams appended to since the last reconcile began are read."""
        feed = self._feed
        behind: list[str] = []
        began = self.clock()
        since = self._reconciled_at
        if not self._listeners:
            # No socket listens here (a node that serves only the API, or sockets not open
            # yet): nothing to heal, and the read of what moved lately would go through every
            # entry of the last ten seconds (30,000 a round under a POST load).
            self._reconciled_at = began
            return behind
        if full or since is None:
            streams = list(self._listeners)
        else:
            moved = await self.store.read(
                events.streams_appended_since, since - RECONCILE_SLACK_SECONDS
            )
            streams = [s for s in moved if s in self._listeners]
        for start in range(0, len(streams), RECONCILE_BATCH):
            heads = await self.store.read(
                events.stream_heads, streams[start : start + RECONCILE_BATCH]
            )
            settled = self.clock() - RECONCILE_GRACE_SECONDS
            for stream, (epoch, offset, created_at) in heads.items():
                if stream not in self._listeners or created_at is None or created_at > settled:
                    continue
                last = self._delivered.get(stream)
                if last is None:
                    if created_at > self._listened_at.get(stream, settled):
                        behind.append(stream)
                elif last[0] != epoch or offset > last[1]:
                    behind.append(stream)
        if feed is not None:
            for stream in behind:
                log.info("stream %s is behind its log: healing", stream)
                feed.mark_gap(stream)
        self._reconciled_at = began
        return behind

    async def _reconcile_forever(self) -> None:
        rounds = 0
        while True:
            await anyio.sleep(self.reconcile_seconds)
            try:
                await self.reconcile(full=rounds % FULL_RECONCILE_EVERY == 0)
                rounds += 1
            except StoreUnavailable:
                log.debug("reconcile skipped: store unavailable")  # the store said it

    # ---- timers ----------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        self._pings.restart(self.clock())
        while True:
            await anyio.sleep(TICK_SECONDS)
            self.tick(self.clock())

    def tick(self, now: float) -> None:
        """One beat of the node's timer: the ping to the connections whose turn it is, then
        the connections with a deadline."""
        due = self._pings.due(now)
        if due:
            if self._ping_rest is not None:  # the last round is not over: this one takes it on
                handle, conns, start = self._ping_rest
                handle.cancel()
                due = conns[start:] + due
            self._ping_round(due, 0, now)
        for conn in list(self._timed):
            if not conn.tick(now):
                self._timed.discard(conn)
        self.check_slow_consumers(now)
        self._count_sent()
        if self._opened >= SETTLE_AFTER_OPENS:
            self._opened = 0
            if self.settle is not None:
                self.settle()

    def _ping_round(self, conns: list[Connection], start: int, now: float) -> None:
        """Ping ``conns[start:]`` with the frame of ``now``: ``PING_SLICE`` of them now, the
        rest in later turns of the loop (a socket gone meanwhile is skipped)."""
        self._ping_rest = None
        end = start + PING_SLICE
        connections = self._connections
        for conn in conns[start:end]:
            if conn in connections:
                conn.ping(now)
        if end < len(conns):
            self._ping_rest = (self.loop.call_soon(self._ping_round, conns, end, now), conns, end)
        self._count_sent()

    def _count_sent(self) -> None:
        if self.frames_out:
            metrics.CABLE_FRAMES.inc(self.frames_out)
            metrics.CABLE_BYTES.inc(self.bytes_out)
            self.frames_out = self.bytes_out = 0

    def check_slow_consumers(self, now: float) -> None:
        """Close a bout of slow consumers once none was dropped for a while (one line)."""
        if self._slow_at is not None and now - self._slow_at >= SLOW_QUIET_SECONDS:
            self._slow_at = None
            self._slow.recovered(
                None, "no websocket client too slow for %d s (%d disconnected)",
                int(SLOW_QUIET_SECONDS),
            )  # fmt: skip
