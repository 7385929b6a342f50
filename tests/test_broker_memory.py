"""MemoryBroker: the Broker contract, plus the helpers every implementation shares."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gateway.broker import (
    Broker,
    BrokerMessage,
    MemoryBroker,
    shard_of,
    to_messages,
)
from gateway.store.records import LoggedEvent
from tests.broker_contract import BrokerContract, BrokerFactory, msg

pytestmark = pytest.mark.anyio


class TestMemoryBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        return MemoryBroker


class _Recording(MemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []

    def _stream_added(self, stream: str) -> None:
        self.events.append(("+", stream))

    def _stream_removed(self, stream: str) -> None:
        self.events.append(("-", stream))

    async def _send(self, messages: Sequence[BrokerMessage]) -> None:
        await super()._send(messages)


async def test_first_and_last_listener_hooks() -> None:
    async with _Recording() as broker:
        f1, f2 = broker.open_feed(), broker.open_feed()
        f1.listen("a")
        f2.listen("a")
        f1.listen("a")
        f1.unlisten("a")
        f2.close()
        assert broker.events == [("+", "a"), ("-", "a")]


async def test_backend_loss_marks_every_listened_stream() -> None:
    async with MemoryBroker() as broker:
        with broker.open_feed() as feed:
            feed.listen("a")
            feed.listen("b")
            await broker.publish([msg("a", 1)])
            broker._fanout.gap_all()
            batch = feed.receive_nowait()
            assert batch[0] == msg("a", 1)
            assert set(batch[1:]) == {("a",), ("b",)}


def test_shard_of_is_stable_and_in_range() -> None:
    assert shard_of("session:42", 16) == shard_of("session:42", 16)
    assert shard_of("session:42", 16) == 12  # crc32: the same on every node and process
    assert {shard_of(f"session:{i}", 8) for i in range(200)} == set(range(8))


def test_to_messages_from_logged_events() -> None:
    logged = LoggedEvent(
        stream="inbox:1", epoch="ab", offset=3, name="message.created", payload=b"{}", created_at=1
    )
    assert to_messages([logged]) == [BrokerMessage("inbox:1", "ab", 3, b"{}")]


def test_feed_rejects_a_zero_queue() -> None:
    broker: Broker = MemoryBroker()
    with pytest.raises(ValueError):
        broker.open_feed(max_queue=0)
