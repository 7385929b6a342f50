"""Typing indicators: ephemeral, relayed at once, and cleared by the server when not renewed.

Chatwoot's widget hides a typing indicator after 30 s on its own; other clients (the agent
console, SDK users) would show it forever if the typist simply left. So each ``typing_on``
arms a timer, renewed by the next ``typing_on``, and the server itself sends the
``typing_off`` that nobody sent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Sequence

import anyio

from ..broker import BrokerMessage

Publish = Callable[[Sequence[BrokerMessage]], Awaitable[None]]

CHECK_EVERY = 0.5


class Typing:
    def __init__(
        self, publish: Publish, timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._publish = publish
        self.timeout = timeout
        self._clock = clock
        # (conversation, actor) -> (deadline, streams, typing_off payload)
        self._active: dict[Hashable, tuple[float, tuple[str, ...], bytes]] = {}

    @property
    def active(self) -> int:
        return len(self._active)

    async def set(
        self, key: Hashable, on: bool, streams: Sequence[str], on_payload: bytes, off_payload: bytes
    ) -> None:
        targets = tuple(streams)
        if on:
            self._active[key] = (self._clock() + self.timeout, targets, off_payload)
            await self._send(targets, on_payload)
        else:
            self._active.pop(key, None)
            await self._send(targets, off_payload)

    async def expire(self) -> int:
        """Send ``typing_off`` for every indicator past its deadline; returns how many."""
        now = self._clock()
        expired = [key for key, (deadline, _s, _p) in self._active.items() if deadline <= now]
        for key in expired:
            _deadline, streams, off_payload = self._active.pop(key)
            await self._send(streams, off_payload)
        return len(expired)

    async def run(self) -> None:
        while True:
            await anyio.sleep(CHECK_EVERY)
            await self.expire()

    async def _send(self, streams: tuple[str, ...], payload: bytes) -> None:
        await self._publish([BrokerMessage(stream, None, 0, payload) for stream in streams])
