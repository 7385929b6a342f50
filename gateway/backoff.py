"""How long to wait before trying again, the one rule for every retry loop in the gateway:
webhook deliveries (:mod:`gateway.webhooks.worker`), the Redis broker's subscriber reconnect
(:mod:`gateway.broker.redis`) and PostgreSQL's re-run writes (:mod:`gateway.store.postgres`).

The wait doubles per attempt up to a cap and is then randomised, so that the many parties who
failed together (deliveries to a receiver back from an outage, nodes reconnecting to a
restarted Redis, writers that collided) do not all try again at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# 2**62 seconds already exceeds any cap; past it the power would only overflow.
_MAX_DOUBLINGS = 62


def backoff(
    attempt: int,
    base: float,
    cap: float,
    *,
    least: float = 0.5,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first retry; negative: none due, 0):
    ``base * 2**attempt`` capped at ``cap``, times a random factor between ``least`` and 1.
    ``rand`` returns a number in [0, 1) (tests pass a constant)."""
    if attempt < 0:
        return 0.0
    delay = min(cap, base * 2.0 ** min(attempt, _MAX_DOUBLINGS))
    return delay * (least + (1.0 - least) * rand())
