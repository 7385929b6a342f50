"""Realtime delivery: the /cable registry (hub), connections, RoomChannel, presence, typing,
session restore, and the publisher that rings the broker after each commit.

:class:`Realtime` assembles them for one node; the app's lifespan runs it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Hashable, Sequence

import anyio
from anyio.abc import TaskStatus

from ..broker import Broker
from ..settings import Settings
from ..store import Store
from .asgi_connection import AsgiConnection
from .connection import Connection
from .core import Limits, StreamIds
from .hub import Hub
from .presence import MemoryPresence, Presence
from .publisher import Publisher
from .room import Grant, RoomChannel
from .sessions import MemorySessionCache, SessionCache
from .typing import Typing

__all__ = [
    "AsgiConnection",
    "Connection",
    "Grant",
    "Hub",
    "MemoryPresence",
    "MemorySessionCache",
    "Presence",
    "Publisher",
    "Realtime",
    "RoomChannel",
    "SessionCache",
    "Typing",
]


def _stream_ids(secret_key: str) -> StreamIds:
    # Stream ids must be stable across restarts and nodes (clients send them back in history
    # requests), so they derive from the deployment's secret key.
    return StreamIds(hashlib.sha256(("inboxgate stream ids:" + secret_key).encode()).digest())


class Realtime:
    """Everything realtime on one node, built from settings."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        broker: Broker,
        *,
        sessions: SessionCache | None = None,
        presence: Presence | None = None,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.publisher = Publisher(broker)
        self.presence = presence or MemoryPresence(settings.presence_window)
        self.typing = Typing(self.publisher.transient, settings.typing_timeout)
        room = RoomChannel(store, self.presence)
        self.hub = Hub(
            broker=broker,
            store=store,
            room=room,
            sessions=sessions or MemorySessionCache(settings.cable_session_ttl),
            stream_ids=_stream_ids(settings.secret_key),
            limits=limits,
            send_buffer_bytes=settings.cable_send_buffer_bytes,
            reconcile_seconds=settings.cable_reconcile_seconds,
            clock=clock,
        )

    def use_secret_key(self, secret_key: str) -> None:
        """Derive stream ids from ``secret_key`` (the database's, read before serving)."""
        self.hub.stream_ids = _stream_ids(secret_key)

    async def typing_changed(
        self, key: Hashable, on: bool, streams: Sequence[str], on_payload: bytes, off: bytes
    ) -> None:
        await self.typing.set(key, on, streams, on_payload, off)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the broker and the node's tasks; runs until cancelled, then closes the broker."""
        await self.broker.start()
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(self.publisher.run)
                await tasks.start(self.hub.run)
                tasks.start_soon(self.typing.run)
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await self.broker.close()
