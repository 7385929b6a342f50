"""The in-process broker: one node, delivery straight into the local feeds.

Publishing dispatches synchronously, so per-stream order is the order of ``publish`` calls and a
publisher never waits for a consumer: each feed's bounded queue absorbs or drops (with a gap).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Broker, BrokerMessage


class MemoryBroker(Broker):
    """The default broker of a single-process gateway."""

    crosses_nodes = False

    async def _open(self) -> None:
        pass

    async def _shutdown(self) -> None:
        pass

    async def _send(self, messages: Sequence[BrokerMessage]) -> None:
        self._fanout.dispatch(messages)

    def _send_nowait(self, messages: Sequence[BrokerMessage]) -> bool:
        self._fanout.dispatch(messages)
        return True
