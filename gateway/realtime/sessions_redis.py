"""Session snapshots shared by every node, in Redis: a session saved on one node restores on
any other. One key per sid, ``SET ... PX ttl``; ``GETDEL`` takes it, so a sid restores once.

Restore is a convenience (the client re-subscribes and catches up through history without it),
so a Redis failure loses the snapshot with a warning instead of failing the connection.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .core import SessionSnapshot, dump_snapshot, load_snapshot
from .sessions import SessionCache

log = logging.getLogger("inboxgate.cable")

# A sid comes from the client; anything longer than ours is not one of ours.
MAX_SID_LENGTH = 128


class RedisSessionCache(SessionCache):
    def __init__(self, client: aioredis.Redis, ttl: float, *, prefix: str = "inboxgate") -> None:
        self.ttl = ttl
        self._client = client
        self._prefix = f"{prefix}:cable-session:"

    async def put(self, sid: str, snapshot: SessionSnapshot) -> None:
        ttl_ms = int(self.ttl * 1000)
        if ttl_ms <= 0 or len(sid) > MAX_SID_LENGTH:
            return
        try:
            await self._client.set(self._prefix + sid, dump_snapshot(snapshot), px=ttl_ms)
        except RedisError as exc:
            log.warning("session not saved for restore, Redis failed: %s", exc)  # sid: a credential

    async def take(self, sid: str) -> SessionSnapshot | None:
        if not sid or len(sid) > MAX_SID_LENGTH:
            return None
        try:
            data = await self._client.getdel(self._prefix + sid)
        except RedisError as exc:
            log.warning("session not restored, Redis failed: %s", exc)
            return None
        if not isinstance(data, bytes):
            return None
        try:
            return load_snapshot(data)
        except ValueError:  # a corrupt entry restores nothing
            return None
