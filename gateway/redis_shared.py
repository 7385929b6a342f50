"""What the nodes of one gateway share through Redis, built from the settings.

With ``INBOXGATE_REDIS_URL`` set, :func:`gateway.app.create_app` takes the broker, the cable
session cache, presence and the rate limiter from here, so processes that share the database
and Redis behave as one gateway. The broker keeps its own connections (one subscriber per
node); the rest share one connection pool, closed by the app's lifespan.

Each part is the Redis twin of an in-memory one, in the same package and behind the same
interface: ``broker/redis.py`` beside ``broker/memory.py``, ``realtime/sessions_redis.py``
beside ``realtime/sessions.py``, ``realtime/presence_redis.py`` beside ``realtime/presence.py``,
and ``ratelimit.RedisRateLimiter`` beside ``ratelimit.MemoryRateLimiter``. This module only
builds them.
"""

from __future__ import annotations

from typing import NamedTuple

import redis.asyncio as aioredis

from .broker.redis import RedisBroker
from .ratelimit import RedisRateLimiter
from .realtime.presence_redis import RedisPresence
from .realtime.sessions_redis import RedisSessionCache
from .settings import Settings

# Requests wait on Redis (rate limit, presence): a stalled Redis must not stall them for long.
TIMEOUT_SECONDS = 2.0


class RedisShared(NamedTuple):
    client: aioredis.Redis
    sessions: RedisSessionCache
    presence: RedisPresence
    limiter: RedisRateLimiter


def redis_shared(settings: Settings) -> RedisShared:
    """The shared parts; no connection is opened until first use."""
    client = aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=TIMEOUT_SECONDS,
        socket_timeout=TIMEOUT_SECONDS,
    )
    prefix = settings.redis_prefix
    return RedisShared(
        client=client,
        sessions=RedisSessionCache(client, settings.cable_session_ttl, prefix=prefix),
        presence=RedisPresence(client, settings.presence_window, prefix=prefix),
        limiter=RedisRateLimiter(client, prefix=prefix),
    )


def redis_broker(settings: Settings) -> RedisBroker:
    return RedisBroker(settings.redis_url, prefix=settings.redis_prefix)
