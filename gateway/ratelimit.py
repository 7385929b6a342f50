"""Request rate limiting per client IP (Chatwoot's Rack::Attack ``req/ip``: 3000 a minute).

A sliding-window counter: the count of the current fixed window plus the previous window's
count weighted by how much of it still overlaps the sliding minute. Two integers per key, so
memory stays bounded by the number of active clients; stale keys are swept as windows roll.
:class:`MemoryRateLimiter` counts in the process; :class:`RedisRateLimiter` counts the same way
in Redis, so every node (and worker process) shares one count per client.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.types import Scope

from .errors import RateLimited

log = logging.getLogger("inboxgate")


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: int, window: int, now: float) -> tuple[bool, int]:
        """Count one request for ``key``; ``(allowed, retry_after_seconds)``."""
        ...


class IpLimit:
    """``limit`` of one kind of request (``what``) per client IP per ``window`` seconds, counted
    in ``limiter`` under keys starting with ``prefix``; safelisted IPs are not counted. The IP
    is the ASGI scope's client: the peer, or what a trusted proxy forwarded (uvicorn's proxy
    headers, INBOXGATE_FORWARDED_ALLOW_IPS), never a header read here."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        prefix: str,
        what: str,
        limit: int,
        window: int,
        safelist: tuple[str, ...],
        clock: Callable[[], float],
    ) -> None:
        self.limiter = limiter
        self.prefix = prefix
        self.what = what
        self.limit = limit
        self.window = window
        self.safelist = frozenset(safelist)
        self.clock = clock

    async def check(self, scope: Scope) -> RateLimited | None:
        """Count this request; the error to answer when it is one too many, else None."""
        if not self.limit:
            return None
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if ip in self.safelist:
            return None
        allowed, retry = await self.limiter.acquire(
            self.prefix + ip, self.limit, self.window, self.clock()
        )
        if allowed:
            return None
        return RateLimited(
            retry, f"Rate limit of {self.limit} {self.what} per {self.window} s exceeded for {ip}"
        )


def _retry_after(previous: int, current: int, limit: int, window: int, elapsed: float) -> int:
    """Seconds until one more request fits, for a key refused at ``elapsed`` into its window."""
    estimated = previous * (window - elapsed) / window + current
    # Time until enough of the previous window has slid out; if this window alone is full, its
    # count becomes the next window's "previous" and must slide out in turn.
    if previous and current < limit:
        needed = (estimated + 1 - limit) / previous * window
    else:
        needed = window - elapsed + (current + 1 - limit) / max(current, 1) * window
    return max(1, math.ceil(needed))


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        # key -> (window index, count in it, count in the window before)
        self._counts: dict[str, tuple[int, int, int]] = {}
        self._swept_window = -1

    async def acquire(self, key: str, limit: int, window: int, now: float) -> tuple[bool, int]:
        return self.hit(key, limit, window, now)

    def hit(self, key: str, limit: int, window: int, now: float) -> tuple[bool, int]:
        index = int(now // window)
        if index != self._swept_window:
            self._sweep(index)
        w, current, previous = self._counts.get(key, (index, 0, 0))
        if w != index:
            previous = current if w == index - 1 else 0
            current = 0
        elapsed = now - index * window
        weight = (window - elapsed) / window
        estimated = previous * weight + current
        if estimated + 1 > limit:
            self._counts[key] = (index, current, previous)
            return False, _retry_after(previous, current, limit, window, elapsed)
        if len(self._counts) >= self.max_keys and key not in self._counts:
            self._sweep(index, force=True)
            if len(self._counts) >= self.max_keys:
                # Every key is live (a flood of addresses): forget the oldest tenth, which
                # start afresh, rather than grow without bound.
                for stale in list(itertools.islice(self._counts, max(1, self.max_keys // 10))):
                    del self._counts[stale]
        self._counts[key] = (index, current + 1, previous)
        return True, 0

    def _sweep(self, index: int, force: bool = False) -> None:
        self._swept_window = index
        if force or len(self._counts) > 1024:
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}


# KEYS: this window's counter, the previous one. ARGV: limit, weight of the previous window,
# counter lifetime (ms). Returns {allowed, current, previous}; counts only an allowed request.
_HIT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current + 1 > tonumber(ARGV[1]) then
  return {0, current, previous}
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, current + 1, previous}
"""

WARN_EVERY_SECONDS = 60.0


class RedisRateLimiter:
    """The sliding window of :class:`MemoryRateLimiter`, one script call per request, shared
    by every node. Counters expire after two windows, so Redis holds only active clients.

    When Redis fails the request is let through (with a warning a minute): the limit guards
    against floods, and refusing every customer because Redis blinked would be worse.
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str = "inboxgate") -> None:
        self._prefix = f"{prefix}:ratelimit:"
        self._script = client.register_script(_HIT)
        self._warned = -WARN_EVERY_SECONDS

    async def acquire(self, key: str, limit: int, window: int, now: float) -> tuple[bool, int]:
        index = int(now // window)
        elapsed = now - index * window
        weight = (window - elapsed) / window
        # The key in a hash tag: both windows of a client share a Redis Cluster slot.
        base = f"{self._prefix}{{{key}}}:"
        try:
            allowed, current, previous = await self._script(
                keys=[f"{base}{index}", f"{base}{index - 1}"],
                args=[limit, repr(weight), window * 2000],
            )
        except RedisError as exc:
            if time.monotonic() - self._warned >= WARN_EVERY_SECONDS:
                self._warned = time.monotonic()
                log.warning("rate limit not enforced, Redis failed: %s", exc)
            return True, 0
        if allowed:
            return True, 0
        return False, _retry_after(int(previous), int(current), limit, window, elapsed)
