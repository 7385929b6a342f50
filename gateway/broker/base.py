"""The Broker interface: a doorbell that tells every node which streams just got events.

The store's event log is the truth; the broker only carries ``(stream, epoch, offset, payload)``
so that nodes need not poll. A message the broker drops is healed from the log, which is why
dropping is allowed and why every drop is *signalled*: a consumer that sees :class:`Gap` for a
stream re-reads that stream from the last offset it delivered.

Consumers hold a :class:`Feed`: one bounded queue per consumer (in practice one per node, owned by
the node's cable registry), told which streams to carry with :meth:`Feed.listen` and
:meth:`Feed.unlisten`. Publishing never blocks on a consumer; a full feed drops and records a gap
for the dropped stream, so a slow consumer stalls nobody else.

Implementations share the local fan-out here and only move messages between nodes. A Redis
implementation keeps ONE subscriber connection per node and a fixed set of channels (``shard_of``
a stream modulo N), filters locally, and calls ``_fanout.gap_all()`` after reconnecting, because
whatever was published meanwhile is lost to it; a node that could not publish tells the others
which streams to re-read (``_fanout.gap``) once it can. Channel count never grows with the
number of customers.

Exceptions::

    BrokerError
    ├── BrokerUnavailable   publish while not running, or the backend is down (log it, carry on:
    │                       the event is already in the log)
    └── BrokerClosed        a feed (or the broker) was closed
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import NamedTuple, Protocol, Self

import anyio

DEFAULT_FEED_QUEUE = 4096


class BrokerError(Exception):
    """Root of the broker's errors."""


class BrokerUnavailable(BrokerError):
    """The broker cannot publish now (not started, closed, or its backend is unreachable)."""


class BrokerClosed(BrokerError):
    """The feed or the broker was closed."""


class BrokerMessage(NamedTuple):
    """One event on one stream. ``epoch`` None marks a transient event (typing, presence): not
    logged, no position, so its loss cannot be healed and is not worth a gap."""

    stream: str
    epoch: str | None
    offset: int
    payload: bytes


class Gap(NamedTuple):
    """Messages of ``stream`` were dropped here: re-read it from the log before going on."""

    stream: str


Delivery = BrokerMessage | Gap


class StreamEntry(Protocol):
    """What a logged event looks like to the realtime layer (``records.LoggedEvent`` fits)."""

    @property
    def stream(self) -> str: ...
    @property
    def epoch(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


def to_messages(entries: Iterable[StreamEntry]) -> list[BrokerMessage]:
    """Broker messages for events a committed change appended to the log."""
    return [BrokerMessage(e.stream, e.epoch, e.offset, e.payload) for e in entries]


def shard_of(stream: str, shards: int) -> int:
    """The fixed channel a stream travels on, for backends with channels (stable across nodes
    and Python processes, unlike ``hash``)."""
    return zlib.crc32(stream.encode()) % shards


class Feed:
    """One consumer's bounded queue of deliveries for the streams it listens to.

    Only its owner reads it (one task at a time). When the queue is full a message is dropped and
    its stream marked; further messages of that stream are dropped too until the owner has been
    told, so the owner sees, per stream: messages in order, then ``Gap(stream)``, then later
    messages. A message may then arrive that the owner already re-read from the log: skip
    offsets at or below the last one delivered.
    """

    def __init__(self, fanout: Fanout, max_queue: int) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be positive")
        self._fanout = fanout
        self._max = max_queue
        self._queue: deque[BrokerMessage] = deque()
        self._gaps: dict[str, None] = {}  # insertion-ordered set
        self._streams: set[str] = set()
        self._waiter: anyio.Event | None = None
        self._closed = False
        self._direct: Callable[[BrokerMessage], bool] | None = None

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._streams)

    @property
    def closed(self) -> bool:
        return self._closed

    def listen(self, stream: str) -> None:
        """Carry ``stream`` from now on (idempotent)."""
        if self._closed:
            raise BrokerClosed("feed closed")
        if stream not in self._streams:
            self._streams.add(stream)
            self._fanout.attach(stream, self)

    def unlisten(self, stream: str) -> None:
        """Stop carrying ``stream``; what was queued for it is discarded (idempotent)."""
        if stream not in self._streams:
            return
        self._streams.discard(stream)
        self._fanout.detach(stream, self)
        self._gaps.pop(stream, None)
        if any(m.stream == stream for m in self._queue):
            self._queue = deque(m for m in self._queue if m.stream != stream)

    def deliver_directly(self, handler: Callable[[BrokerMessage], bool] | None) -> None:
        """While nothing is queued, offer each message to ``handler`` first, in the
        publisher's call: no queue hop between a commit and the sockets. The handler returns
        False to have the message queued instead (its owner is busy, or must heal first)."""
        self._direct = handler

    def offer(self, message: BrokerMessage) -> None:
        """Queue ``message`` or drop it and mark a gap. Never blocks; called by the fan-out."""
        stream = message.stream
        if self._closed or stream in self._gaps:
            return
        direct = self._direct
        if direct is not None and not self._queue and not self._gaps and direct(message):
            return
        if len(self._queue) >= self._max:
            if message.epoch is not None:  # transient events cannot be re-read: no gap
                self._gaps[stream] = None
                self._wake()
            return
        self._queue.append(message)
        self._wake()

    def mark_gap(self, stream: str) -> None:
        """Signal a loss the backend noticed itself (a reconnect, a sequence hole)."""
        if not self._closed and stream in self._streams:
            self._gaps[stream] = None
            self._wake()

    def receive_nowait(self) -> list[Delivery]:
        """Everything queued, then the gaps; ``[]`` if nothing. Raises BrokerClosed."""
        if self._closed:
            raise BrokerClosed("feed closed")
        batch: list[Delivery] = list(self._queue)
        self._queue.clear()
        if self._gaps:
            batch.extend(Gap(s) for s in self._gaps)
            self._gaps.clear()
        return batch

    async def receive(self) -> list[Delivery]:
        """Wait for a non-empty batch and return it (one wake-up per batch, not per message).

        Raises BrokerClosed once the feed or its broker is closed, even with items queued: they
        are only doorbells, and the log still holds the events.
        """
        while True:
            batch = self.receive_nowait()
            if batch:
                return batch
            self._waiter = anyio.Event()
            try:
                await self._waiter.wait()
            finally:
                self._waiter = None

    def close(self) -> None:
        """Stop carrying everything and wake the owner with BrokerClosed (idempotent)."""
        if self._closed:
            return
        for stream in list(self._streams):
            self.unlisten(stream)
        self._closed = True
        self._fanout.remove_feed(self)
        self._queue.clear()
        self._gaps.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Fanout:
    """The node-local index ``stream -> feeds`` that every implementation delivers through.

    ``on_first`` / ``on_last`` fire when a stream gains its first or loses its last local feed,
    for backends that (un)subscribe upstream per stream or per shard.
    """

    def __init__(
        self,
        on_first: Callable[[str], None] | None = None,
        on_last: Callable[[str], None] | None = None,
    ) -> None:
        self._index: dict[str, list[Feed]] = {}
        self._feeds: set[Feed] = set()
        self._on_first = on_first
        self._on_last = on_last

    @property
    def streams(self) -> frozenset[str]:
        return frozenset(self._index)

    def add_feed(self, feed: Feed) -> None:
        self._feeds.add(feed)

    def remove_feed(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    def attach(self, stream: str, feed: Feed) -> None:
        feeds = self._index.get(stream)
        if feeds is None:
            self._index[stream] = [feed]
            if self._on_first is not None:
                self._on_first(stream)
        else:
            feeds.append(feed)

    def detach(self, stream: str, feed: Feed) -> None:
        feeds = self._index.get(stream)
        if feeds is None or feed not in feeds:
            return
        feeds.remove(feed)
        if not feeds:
            del self._index[stream]
            if self._on_last is not None:
                self._on_last(stream)

    def dispatch(self, messages: Iterable[BrokerMessage]) -> None:
        index = self._index
        for message in messages:
            feeds = index.get(message.stream)
            if feeds:
                for feed in feeds:
                    feed.offer(message)

    def gap(self, stream: str) -> None:
        """Messages of ``stream`` may have been lost upstream (another node said so)."""
        for feed in self._index.get(stream, ()):
            feed.mark_gap(stream)

    def gap_all(self) -> None:
        """Every stream of every feed may have lost messages (e.g. after a backend reconnect)."""
        for stream, feeds in self._index.items():
            for feed in feeds:
                feed.mark_gap(stream)

    def close_all(self) -> None:
        for feed in list(self._feeds):
            feed.close()
        self._feeds.clear()


class Broker(ABC):
    """Publish committed events to every node; deliver them to local feeds.

    Lifecycle: ``start()`` once, ``close()`` any number of times (or ``async with broker``).
    Subclasses implement ``_open``, ``_shutdown`` and ``_send``; messages that arrive from the
    backend go to ``self._fanout.dispatch``.
    """

    # Whether messages come from other nodes too: then one committed elsewhere may arrive
    # after a later one committed here (the in-process broker delivers in commit order).
    crosses_nodes = True

    def __init__(self) -> None:
        self._fanout = Fanout(on_first=self._stream_added, on_last=self._stream_removed)
        self._state = "new"

    @property
    def running(self) -> bool:
        return self._state == "running"

    async def start(self) -> None:
        if self._state != "new":
            raise BrokerError(f"cannot start a broker that is {self._state}")
        await self._open()
        self._state = "running"

    async def close(self) -> None:
        """Close every feed (their owners get BrokerClosed) and release the backend."""
        if self._state == "closed":
            return
        was_running = self._state == "running"
        self._state = "closed"
        self._fanout.close_all()
        if was_running:
            await self._shutdown()

    def publish_nowait(self, messages: Sequence[BrokerMessage]) -> bool:
        """Publish without waiting, if this implementation can (its ``_send_nowait``): local
        feeds then get the messages before this returns. False: use :meth:`publish`.

        Raises BrokerUnavailable as :meth:`publish` does."""
        if self._state != "running":
            raise BrokerUnavailable(f"broker is {self._state}")
        return not messages or self._send_nowait(messages)

    async def publish(self, messages: Sequence[BrokerMessage]) -> None:
        """Ring the doorbell for ``messages``, in order per stream.

        Raises BrokerUnavailable when not running or the backend fails; callers log and carry
        on, since the events are already in the log.
        """
        if self._state != "running":
            raise BrokerUnavailable(f"broker is {self._state}")
        if messages:
            await self._send(messages)

    def open_feed(self, *, max_queue: int = DEFAULT_FEED_QUEUE) -> Feed:
        """A new, empty feed. Close it when done (it is also a context manager)."""
        if self._state == "closed":
            raise BrokerClosed("broker closed")
        feed = Feed(self._fanout, max_queue)
        self._fanout.add_feed(feed)
        return feed

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _shutdown(self) -> None: ...

    @abstractmethod
    async def _send(self, messages: Sequence[BrokerMessage]) -> None: ...

    def _send_nowait(self, messages: Sequence[BrokerMessage]) -> bool:
        """Hook: send without waiting when possible (False: not possible)."""
        return False

    def _stream_added(self, stream: str) -> None:  # noqa: B027 (optional hook)
        """Hook: the first local feed listens to ``stream``."""

    def _stream_removed(self, stream: str) -> None:  # noqa: B027 (optional hook)
        """Hook: the last local feed stopped listening to ``stream``."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
