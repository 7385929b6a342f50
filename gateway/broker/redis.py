"""The Redis broker: several nodes, one Redis, a fixed set of pub/sub channels.

- Local first. A node hands its own messages to its local feeds at once, in publish order, and
  skips them when they come back from Redis (every frame names its node). Redis only carries
  messages *between* nodes, so a node whose Redis is down still serves its own sockets.
- Channels. A stream always travels on ``{prefix}:bus:{shard_of(stream)}``, so its order holds;
  there are ``shards`` channels whatever the number of customers. Every node subscribes to all
  of them on ONE connection and filters locally (one dict lookup per message).
- Publishing never waits for Redis. ``publish`` queues (bounded) and returns; one flusher task
  sends what is queued, grouped per shard, one frame per channel, encoded once, every frame of
  a flush in one pipeline. At a low rate each publish leaves alone and at once; at a high rate
  whatever queued while a pipeline was in flight leaves together in the next one (at most
  ``max_batch`` messages per flush). Disconnected or queue full: BrokerUnavailable.
- Loss is healed from the log. After the subscriber reconnects, every listened stream gets a
  Gap (whatever was published meanwhile is lost to this node). Messages that this node could
  not hand to Redis (disconnected, queue full, a failed flush) reached its own feeds only, and
  the other nodes may have re-subscribed (and gapped) *before* they were committed: a stream
  that then goes quiet would never show them an offset jump. So the node remembers those
  streams and, once it can publish again, sends a ``lost`` frame naming them; every node gaps
  them and re-reads the log.

A frame is MessagePack ``[node, [[stream, epoch, offset, payload], ...], marker, lost,
lost_all]``; ``marker`` frames make a round trip for :meth:`RedisBroker.wait_idle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .. import metrics
from ..backoff import backoff
from ..logs import StateLog
from .base import Broker, BrokerMessage, BrokerUnavailable, shard_of

log = logging.getLogger("inboxgate.broker")

DEFAULT_SHARDS = 16
MAX_BATCH = 2048
MAX_PENDING = 65_536
CONNECT_TIMEOUT = 2.0
# The subscriber pings an idle connection this often, so a dead peer is noticed.
HEALTH_CHECK_SECONDS = 5.0
RECONNECT_MIN = 0.05
RECONNECT_MAX = 5.0
CLOSE_FLUSH_SECONDS = 1.0
CANCEL_AGAIN_SECONDS = 0.1
# Beyond this many unsent streams, one "re-read every stream" frame is cheaper than naming them.
MAX_LOST_STREAMS = 1024
# A ``lost`` frame that failed is sent again this often while the subscriber is connected.
LOST_RETRY_SECONDS = 1.0


class _Frame(msgspec.Struct, array_like=True, frozen=True):
    # Only nodes of one gateway read these: an internal wire format, not a client protocol.
    node: str
    messages: list[BrokerMessage] = []
    marker: str = ""
    lost: list[str] = []  # streams the sender failed to publish: re-read them from the log
    lost_all: bool = False  # too many to name: re-read every stream


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Frame).decode


class _Marker:
    __slots__ = ("done", "token")

    def __init__(self, token: str, done: asyncio.Future[None]) -> None:
        self.token = token
        self.done = done


class RedisStats:
    """Counters for tests and benchmarks."""

    def __init__(self) -> None:
        self.messages = 0  # messages handed to Redis
        self.publishes = 0  # PUBLISH commands sent (frames)
        self.flushes = 0  # pipelines sent
        self.dropped = 0  # messages lost to a failed flush (healed from the log)
        self.reconnects = 0  # subscriber reconnections (each one gaps every listened stream)
        self.lost_frames = 0  # ``lost`` frames sent (each gaps streams on every node)


class RedisBroker(Broker):
    """The broker of a gateway that runs on several nodes (or worker processes)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "inboxgate",
        shards: int = DEFAULT_SHARDS,
        max_batch: int = MAX_BATCH,
        max_pending: int = MAX_PENDING,
        local_first: bool = True,
    ) -> None:
        """``local_first=False`` sends even a node's own messages through Redis (tests)."""
        super().__init__()
        if shards < 1 or max_batch < 1 or max_pending < 1:
            raise ValueError("shards, max_batch and max_pending must be positive")
        self.url = url
        self.node = secrets.token_hex(8)
        self.shards = shards
        self.channels = [f"{prefix}:bus:{i}" for i in range(shards)]
        self.stats = RedisStats()
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._local_first = local_first
        self._pending: deque[BrokerMessage | _Marker] = deque()
        self._markers: dict[str, _Marker] = {}
        self._unannounced: dict[str, None] = {}  # streams not carried to Redis nor announced
        self._unannounced_all = False
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._connected = False
        self._ever_connected = False
        self._pub: aioredis.Redis | None = None
        self._sub: aioredis.Redis | None = None
        # The reader and the flusher, owned by this group from start to close: a failure in one
        # cancels the task that started the broker and is raised by close, never lost.
        self._tasks: asyncio.TaskGroup | None = None
        self._children: list[asyncio.Task[None]] = []
        self._flush_state = StateLog(log)

    @property
    def subscriber_name(self) -> str:
        """The subscriber connection's CLIENT SETNAME (one per node, visible in CLIENT LIST)."""
        return f"inboxgate-bus-{self.node}"

    @property
    def connected(self) -> bool:
        """The subscriber is connected (so publishing is possible)."""
        return self._connected

    @property
    def pending(self) -> int:
        """Messages queued for the flusher."""
        return len(self._pending)

    # ---- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        # One retry on a fresh connection: pooled connections go stale when Redis restarts. A
        # frame sent twice is harmless (offsets already delivered are skipped).
        self._pub = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=CONNECT_TIMEOUT * 2,
            retry=Retry(NoBackoff(), 1),
        )
        # No retries on the subscriber: a silent reconnect would hide lost messages. The reader
        # reconnects itself and gaps every stream.
        self._sub = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            health_check_interval=HEALTH_CHECK_SECONDS,
            retry=Retry(NoBackoff(), 0),
            client_name=self.subscriber_name,
        )
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._children = [
            self._tasks.create_task(self._read_forever(), name="redis-broker-reader"),
            self._tasks.create_task(self._flush_forever(), name="redis-broker-flusher"),
        ]
        try:
            await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            # Start anyway: the reader keeps trying, and the log holds every event meanwhile.
            log.warning(
                "Redis at %s unreachable; realtime between nodes waits for it", redacted(self.url)
            )

    async def _shutdown(self) -> None:
        if self._connected and self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), CLOSE_FLUSH_SECONDS)
        if self._tasks is not None:
            await self._stop_tasks(self._tasks)
            self._tasks = None
        self._connected = False
        self._fail_markers("broker closed")
        for client in (self._pub, self._sub):
            if client is not None:
                await client.aclose()

    async def _stop_tasks(self, tasks: asyncio.TaskGroup) -> None:
        running = set(self._children)
        for task in running:
            task.cancel()
        # A cancel that lands as redis-py's read timeout fires is taken for that timeout
        # (asyncio.timeout on 3.11) and the reader reads on: cancel until it is gone.
        while running:
            running = (await asyncio.wait(running, timeout=CANCEL_AGAIN_SECONDS))[1]
            for task in running:
                task.cancel()
        await tasks.__aexit__(None, None, None)

    async def _drained(self) -> None:
        while self._pending:
            await asyncio.sleep(0.01)

    # ---- publishing ------------------------------------------------------------------------

    async def _send(self, messages: Sequence[BrokerMessage]) -> None:
        self._send_nowait(messages)

    def _send_nowait(self, messages: Sequence[BrokerMessage]) -> bool:
        """Local feeds first (when ``local_first``), then the queue the flush task sends."""
        if self._local_first:
            self._fanout.dispatch(messages)
        if not self._connected:
            self._note_lost(m.stream for m in messages if m.epoch is not None)
            raise BrokerUnavailable("Redis is unreachable")
        if len(self._pending) + len(messages) > self._max_pending:
            self.stats.dropped += len(messages)
            self._note_lost(m.stream for m in messages if m.epoch is not None)
            self._wake.set()  # announced once the queue has drained
            raise BrokerUnavailable("Redis publish queue full")
        self._pending.extend(messages)
        self._wake.set()
        return True

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Return once everything published so far has been sent and read back by this node's
        subscriber (so it reached the local feeds). Raises BrokerUnavailable when disconnected,
        TimeoutError after ``timeout``."""
        if not self.running or not self._connected:
            raise BrokerUnavailable("Redis is unreachable")
        marker = _Marker(secrets.token_hex(8), asyncio.get_running_loop().create_future())
        self._markers[marker.token] = marker
        self._pending.append(marker)
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(marker.done), timeout)
        finally:
            self._markers.pop(marker.token, None)
            marker.done.cancel()  # no-op once done; else nobody is left to read its outcome

    async def _flush_forever(self) -> None:
        while True:
            # An announcement that failed while connected is retried without waiting for a
            # publish: the stream it names may have gone quiet.
            owed = self._connected and (self._unannounced or self._unannounced_all)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), LOST_RETRY_SECONDS if owed else None)
            self._wake.clear()
            while self._pending:
                messages, markers = self._take()
                try:
                    await self._flush(messages, markers)
                except (RedisError, OSError) as exc:
                    self.stats.dropped += len(messages)
                    self._note_lost(m.stream for m in messages if m.epoch is not None)
                    if not self._flush_state.failing(
                        None, "Redis publish failed, events left to the log until it works: %r",
                        exc,
                    ):  # fmt: skip
                        log.debug("Redis publish failed again, %d events left to the log: %r",
                                  len(messages), exc)  # fmt: skip
                    for marker in markers:
                        _fail(marker, "Redis publish failed")
                else:
                    self._flush_state.recovered(None, "Redis publish works again (%d failures)")
            if self._connected:
                await self._announce_lost()

    def _note_lost(self, streams: Iterable[str]) -> None:
        if self._unannounced_all:
            return
        self._unannounced.update(dict.fromkeys(streams))
        if len(self._unannounced) > MAX_LOST_STREAMS:
            self._unannounced_all = True
            self._unannounced.clear()

    async def _announce_lost(self) -> None:
        """Tell every node to re-read the streams this node failed to publish. Sent after
        those events were committed, so a node that hears it finds them in the log; a node
        that does not (its subscriber is down) gaps every stream when it re-subscribes."""
        if not (self._unannounced or self._unannounced_all):
            return
        assert self._pub is not None
        streams, every = list(self._unannounced), self._unannounced_all
        self._unannounced, self._unannounced_all = {}, False
        frame = _Frame(self.node, lost=[] if every else streams, lost_all=every)
        try:
            await self._pub.publish(self.channels[0], _encode(frame))
        except (RedisError, OSError) as exc:
            log.warning("Redis publish failed, lost streams not yet announced: %r", exc)
            self._unannounced_all = self._unannounced_all or every
            self._note_lost(streams)
            return
        self.stats.lost_frames += 1

    def _take(self) -> tuple[list[BrokerMessage], list[_Marker]]:
        """The next flush: up to ``max_batch`` messages, ending early after a marker so that
        a marker never overtakes what was queued after it."""
        messages: list[BrokerMessage] = []
        while self._pending and len(messages) < self._max_batch:
            item = self._pending.popleft()
            if isinstance(item, _Marker):
                return messages, [item]
            messages.append(item)
        return messages, []

    async def _flush(self, messages: list[BrokerMessage], markers: list[_Marker]) -> None:
        assert self._pub is not None
        per_shard: dict[int, list[BrokerMessage]] = {}
        for message in messages:
            per_shard.setdefault(shard_of(message.stream, self.shards), []).append(message)
        pipe = self._pub.pipeline(transaction=False)
        for shard, group in per_shard.items():
            pipe.publish(self.channels[shard], _encode(_Frame(self.node, group)))
        for marker in markers:
            pipe.publish(self.channels[0], _encode(_Frame(self.node, marker=marker.token)))
        await pipe.execute()
        self.stats.messages += len(messages)
        self.stats.publishes += len(per_shard) + len(markers)
        self.stats.flushes += 1

    # ---- receiving -------------------------------------------------------------------------

    async def _read_forever(self) -> None:
        assert self._sub is not None
        failures = 0  # in a row, since the subscriber last confirmed its channels
        while True:
            pubsub = self._sub.pubsub()
            try:
                await pubsub.subscribe(*self.channels)
                await self._confirmed(pubsub)
                self._subscribed()
                failures = 0
                await self._read(pubsub)
            except (RedisError, OSError, TimeoutError) as exc:
                self._lost(exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(backoff(failures, RECONNECT_MIN, RECONNECT_MAX))
            failures += 1

    async def _confirmed(self, pubsub: PubSub) -> None:
        waiting = set(self.channels)
        async with asyncio.timeout(CONNECT_TIMEOUT * 2):
            while waiting:
                message = await pubsub.get_message(timeout=CONNECT_TIMEOUT)
                if message is not None and message["type"] == "subscribe":
                    waiting.discard(_text(message["channel"]))

    async def _read(self, pubsub: PubSub) -> None:
        first = self.channels[0]
        while True:
            message = await pubsub.get_message(timeout=HEALTH_CHECK_SECONDS)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message":
                self._received(message["data"])
            elif kind == "subscribe" and _text(message["channel"]) == first:
                # The client library reconnected and resubscribed on its own: whatever was
                # published in between is lost to this node.
                self.stats.reconnects += 1
                metrics.BROKER_RECONNECTS.inc()
                self._fanout.gap_all()

    def _subscribed(self) -> None:
        self._connected = True
        if self._ever_connected:
            self.stats.reconnects += 1
            metrics.BROKER_RECONNECTS.inc()
            # Said once, as the loss was (``_lost``): the end of the outage.
            log.warning("Redis subscriber reconnected: re-reading listened streams from the log")
            self._fanout.gap_all()
        self._ever_connected = True
        self._ready.set()
        self._wake.set()  # the flusher announces what was not published meanwhile

    def _lost(self, exc: BaseException) -> None:
        if self._connected:
            log.warning("Redis subscriber lost (%s); reconnecting", exc)
        self._connected = False
        self._fail_markers("Redis subscriber lost")

    def _received(self, data: Any) -> None:
        try:
            frame = _decode(data)
        except msgspec.DecodeError:
            # Whose streams it carried is unknown: assume every one lost something.
            log.warning("undecodable frame on the Redis bus: every listened stream re-read")
            self._fanout.gap_all()
            return
        if frame.node == self.node:
            if frame.marker:
                marker = self._markers.get(frame.marker)
                if marker is not None and not marker.done.done():
                    marker.done.set_result(None)
            if self._local_first:
                return
        if frame.lost_all:
            self._fanout.gap_all()
        for stream in frame.lost:
            self._fanout.gap(stream)
        if frame.messages:
            self._fanout.dispatch(frame.messages)

    def _fail_markers(self, reason: str) -> None:
        for marker in list(self._markers.values()):
            _fail(marker, reason)


def _fail(marker: _Marker, reason: str) -> None:
    if not marker.done.done():
        marker.done.set_exception(BrokerUnavailable(reason))


def redacted(url: str) -> str:
    """``url`` fit for a log line: any password replaced."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
