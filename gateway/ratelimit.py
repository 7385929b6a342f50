"""Request rate limiting per client IP (Chatwoot's Rack::Attack ``req/ip``: 3000 a minute).

A sliding-window counter: the count of the current fixed window plus the previous window's
count weighted by how much of it still overlaps the sliding minute. Two integers per key, so
memory stays bounded by the number of active clients; stale keys are swept as windows roll.
"""

from __future__ import annotations

import itertools
import math
from typing import Protocol


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window: int, now: float) -> tuple[bool, int]:
        """Count one request for ``key``; ``(allowed, retry_after_seconds)``."""
        ...


class MemoryRateLimiter:
    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        # key -> (window index, count in it, count in the window before)
        self._counts: dict[str, tuple[int, int, int]] = {}
        self._swept_window = -1

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
            # Time until enough of the previous window has slid out; if this window alone is
            # full, its count becomes the next window's "previous" and must slide out in turn.
            if previous and current < limit:
                needed = (estimated + 1 - limit) / previous * window
            else:
                needed = window - elapsed + (current + 1 - limit) / max(current, 1) * window
            return False, max(1, math.ceil(needed))
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
