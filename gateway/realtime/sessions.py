"""Where extended-protocol sessions wait to be restored: ``sid -> snapshot`` with a TTL.

A snapshot lists the subscriptions of a connection (identifier, streams, principal). It holds
no credential beyond what the identifiers themselves carry, and a restore re-authorizes every
identifier before re-attaching it (see :mod:`gateway.realtime.connection`), so a stolen or
stale sid can never widen access. The in-memory cache serves one process; its twin for several
nodes, behind the same interface, is :mod:`gateway.realtime.sessions_redis`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from .core import SessionSnapshot, dump_snapshot, load_snapshot


class SessionCache(ABC):
    @abstractmethod
    async def put(self, sid: str, snapshot: SessionSnapshot) -> None:
        """Store (or refresh) ``snapshot`` under ``sid`` for the cache's TTL from now."""

    @abstractmethod
    async def take(self, sid: str) -> SessionSnapshot | None:
        """Remove and return the live entry under ``sid``: sids are single-use."""


class MemorySessionCache(SessionCache):
    """Bounded LRU of encoded snapshots; expired entries are dropped as they are met."""

    def __init__(
        self, ttl: float, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def put(self, sid: str, snapshot: SessionSnapshot) -> None:
        if self.ttl <= 0:
            return
        now = self._clock()
        self._entries[sid] = (now + self.ttl, dump_snapshot(snapshot))
        self._entries.move_to_end(sid)
        # Oldest first: drop expired heads, then anything over the bound.
        while self._entries:
            first_sid, (expires, _data) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self._max:
                break
            del self._entries[first_sid]

    async def take(self, sid: str) -> SessionSnapshot | None:
        entry = self._entries.pop(sid, None)
        if entry is None or entry[0] <= self._clock():
            return None
        try:
            return load_snapshot(entry[1])
        except ValueError:  # a corrupt entry restores nothing
            return None
