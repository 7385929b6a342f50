"""From committed writes to the broker: the bridge between the services' synchronous
``on_events`` callback and the broker.

Services call :meth:`Publisher.logged` right after a commit. When nothing is waiting and the
broker can publish without waiting (both can: the local feeds are filled at once, Redis gets
its batch from its flush task), the batch goes out in that call, so the node's sockets have it
before the request returns: no queue hop between the commit and the hub. Otherwise it queues,
and one task, owned by the lifespan, publishes in commit order. The queue is bounded: when it
is full the batch is dropped with a warning, which loses nothing (the events are in the log)
and heals on the next event of each stream, whose offset jump makes the hubs re-read the log,
or at the hubs' next reconcile. While the broker is down every batch is left to the log the
same way; that is said once when it starts and once when it ends, not once per commit.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from .. import metrics
from ..broker import Broker, BrokerMessage, BrokerUnavailable, to_messages
from ..store.records import LoggedEvent

log = logging.getLogger("inboxgate.cable")

MAX_PENDING_BATCHES = 10_000
_PUBLISHED = metrics.hot_inc(metrics.BROKER_PUBLISHES.labels("published"))
_LAG = metrics.HotHistogram(metrics.BROKER_LAG)
_UNAVAILABLE = metrics.BROKER_PUBLISHES.labels("unavailable")
_DROPPED = metrics.BROKER_PUBLISHES.labels("dropped")


class Publisher:
    def __init__(self, broker: Broker, max_pending: int = MAX_PENDING_BATCHES) -> None:
        self.broker = broker
        self._max = max_pending
        # A plain deque, not a memory stream: an app that is built but never run (tests, the
        # CLI) holds no resource that would need closing.
        self._pending: deque[tuple[float, list[BrokerMessage]]] = deque()  # (queued at, batch)
        self._wake: anyio.Event | None = None
        self.dropped = 0
        self.unpublished = 0  # batches left to the log in the current broker outage
        self._running = False

    @property
    def pending(self) -> int:
        """Batches waiting to be published."""
        return len(self._pending)

    def logged(self, entries: list[LoggedEvent]) -> None:
        """The services' event sink: queue what a commit appended. Never blocks."""
        if len(self._pending) >= self._max:
            self.dropped += 1
            _DROPPED.inc()
            log.warning("publish queue full: %d events left to the log to heal", len(entries))
            return
        batch = to_messages(entries)
        if self._running and not self._pending:
            try:
                if self.broker.publish_nowait(batch):
                    self._published(0.0)
                    return
            except BrokerUnavailable as exc:
                self._unavailable(exc)
                return
        self._pending.append((time.perf_counter(), batch))
        if self._wake is not None:
            self._wake.set()

    async def transient(self, messages: Sequence[BrokerMessage]) -> None:
        """Typing and presence: published now, not logged, lost if the broker is down."""
        try:
            await self.broker.publish(messages)
        except BrokerUnavailable as exc:
            log.debug("transient event not published: %s", exc)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._running = True
        task_status.started()
        try:
            while True:
                while not self._pending:
                    self._wake = anyio.Event()
                    await self._wake.wait()
                self._wake = None
                queued_at, batch = self._pending.popleft()
                try:
                    await self.broker.publish(batch)
                except BrokerUnavailable as exc:
                    self._unavailable(exc)
                    continue
                self._published(time.perf_counter() - queued_at)
        finally:
            self._running = False

    def _published(self, lag: float) -> None:
        _PUBLISHED(1)
        _LAG.observe(lag)
        if self.unpublished:
            log.warning("broker back: %d batches were left to the log", self.unpublished)
            self.unpublished = 0

    def _unavailable(self, exc: BrokerUnavailable) -> None:
        if not self.unpublished:
            log.warning("broker unavailable, events left to the log until it is back: %s", exc)
        self.unpublished += 1
        _UNAVAILABLE.inc()
