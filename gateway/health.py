"""Liveness and readiness of one node, and the drain that begins its shutdown.

``/health`` is liveness: the process answers. ``/ready`` says whether this node should get
traffic: the database answers ``SELECT 1``, Redis answers ``PING`` (when configured), and the
node is not draining; each check is bounded by a short timeout, so a probe never hangs.

At shutdown the node first turns not-ready, waits ``INBOXGATE_DRAIN_SECONDS`` (a load balancer
polling ``/ready`` stops sending it new clients meanwhile; HTTP keeps being served), and only
then tells its websockets ``server_restart`` so that they reconnect elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio as aioredis

from .logs import StateLog
from .realtime import Hub
from .store import Store
from .store.sql import Op, scalar

log = logging.getLogger("inboxgate.health")

CHECK_TIMEOUT = 2.0
OK = "ok"
NOT_CONFIGURED = "not configured"


def select_one() -> Op[Any]:
    return (yield from scalar("SELECT 1"))


def _failure(exc: BaseException) -> str:
    # The body is served on the public port: the kind of failure, not hosts or credentials
    # (those go to the log).
    cause = exc.__cause__ or exc
    return f"error: {type(cause).__name__}"


class Health:
    def __init__(
        self, store: Store, redis: aioredis.Redis | None = None, timeout: float = CHECK_TIMEOUT
    ) -> None:
        self.store = store
        self.redis = redis
        self.timeout = timeout
        self.draining = False
        self._state = StateLog(log)

    async def _check(self, name: str, probe: Callable[[], Awaitable[object]]) -> str:
        try:
            with anyio.fail_after(self.timeout):
                await probe()
        except TimeoutError:
            detail = f"error: no answer within {self.timeout:g} s"
            self._state.failing(name, "not ready: %s gave %s", name, detail)
            return detail
        except Exception as exc:  # whatever the driver raises, the probe answers
            self._state.failing(name, "not ready: %s failed its check: %r", name, exc)
            return _failure(exc)
        self._state.recovered(name, "%s answers again (%d failed checks)", name)
        return OK

    async def _database(self) -> str:
        return await self._check("database", lambda: self.store.read(select_one))

    async def _redis(self) -> str:
        redis = self.redis
        if redis is None:
            return NOT_CONFIGURED
        return await self._check("redis", redis.ping)

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, body)``: every check run at once, each under the timeout."""
        found: dict[str, str] = {}

        async def run(name: str, check: Callable[[], Awaitable[str]]) -> None:
            found[name] = await check()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, "database", self._database)
            tasks.start_soon(run, "redis", self._redis)
        ready = not self.draining and all(v in (OK, NOT_CONFIGURED) for v in found.values())
        checks = {"database": found["database"], "redis": found["redis"], "draining": self.draining}
        return ready, {"status": "ok" if ready else "unavailable", "checks": checks}

    async def drain(self, hub: Hub, delay: float = 0.0) -> None:
        """Turn not-ready, wait ``delay`` seconds (the first time), then tell every websocket
        to reconnect (``server_restart``). Safe to call more than once."""
        first = not self.draining
        self.draining = True
        if first and delay > 0:
            log.info("draining: /ready answers 503; websockets move in %g s", delay)
            await anyio.sleep(delay)
        await hub.drain()
