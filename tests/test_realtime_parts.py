"""The realtime layer's small parts, in isolation: session cache, presence, typing, publisher."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
import msgspec
import pytest

from client_sdk import protocol as p
from gateway.broker import BrokerMessage, MemoryBroker
from gateway.realtime import Hub, MemoryPresence, MemorySessionCache, Publisher, Typing
from gateway.realtime.core import SessionSnapshot, StreamIds, SubscriptionState
from gateway.store.records import LoggedEvent

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snapshot(*identifiers: str) -> SessionSnapshot:
    return SessionSnapshot(
        subscriptions=tuple(
            SubscriptionState(identifier=i, streams=("session:1",), principal="contact:1@1")
            for i in identifiers
        )
    )


# ---- session cache ------------------------------------------------------------------------


async def test_session_cache_is_single_use_and_expires() -> None:
    clock = FakeClock()
    cache = MemorySessionCache(300, clock=clock)
    await cache.put("a", snapshot("x"))
    assert await cache.take("a") == snapshot("x")
    assert await cache.take("a") is None  # single use
    await cache.put("b", snapshot("y"))
    clock.now += 299
    await cache.put("b", snapshot("y", "z"))  # refreshed: the TTL restarts
    clock.now += 299
    assert await cache.take("b") == snapshot("y", "z")
    await cache.put("c", snapshot())
    clock.now += 300
    assert await cache.take("c") is None


async def test_session_cache_is_bounded_and_ttl_zero_disables_it() -> None:
    clock = FakeClock()
    cache = MemorySessionCache(300, max_entries=3, clock=clock)
    for sid in "abcde":
        await cache.put(sid, snapshot(sid))
    assert len(cache) == 3
    assert await cache.take("a") is None
    assert await cache.take("e") == snapshot("e")
    off = MemorySessionCache(0)
    await off.put("a", snapshot("a"))
    assert await off.take("a") is None


# ---- presence -----------------------------------------------------------------------------


async def test_presence_lists_who_was_seen_within_the_window() -> None:
    clock = FakeClock()
    presence = MemoryPresence(20, clock=clock)
    await presence.seen_user(1, 3, "online")
    await presence.seen_user(1, 7, "busy")
    await presence.seen_contact(1, 55)
    await presence.seen_user(2, 9, "online")  # another account
    assert await presence.for_contact(1) == p.PresenceEventData(
        account_id=1, users={"3": "online", "7": "busy"}
    )
    assert (await presence.for_agent(1)).contacts == {"55": "online"}
    clock.now += 15
    await presence.seen_user(1, 3, "online")
    clock.now += 10  # user 7 and contact 55 are now 25 s old
    assert await presence.for_agent(1) == p.PresenceEventData(
        account_id=1, users={"3": "online"}, contacts={}
    )
    encoded = msgspec.json.decode(p.encode(await presence.for_contact(1)))
    assert encoded == {"account_id": 1, "users": {"3": "online"}}  # no "contacts" key


# ---- typing -------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sent: list[BrokerMessage] = []

    async def __call__(self, messages: Sequence[BrokerMessage]) -> None:
        self.sent.extend(messages)


async def test_typing_is_relayed_transient_and_cleared_when_not_renewed() -> None:
    clock = FakeClock()
    out = Recorder()
    typing = Typing(out, 30, clock=clock)
    await typing.set("k", True, ["inbox:1"], b"on", b"off")
    assert out.sent == [BrokerMessage("inbox:1", None, 0, b"on")]
    clock.now += 29
    await typing.set("k", True, ["inbox:1"], b"on", b"off")  # renewed
    clock.now += 29
    assert await typing.expire() == 0
    clock.now += 2
    assert await typing.expire() == 1
    assert out.sent[-1] == BrokerMessage("inbox:1", None, 0, b"off")
    assert typing.active == 0
    await typing.set("k", True, ["inbox:1"], b"on", b"off")
    await typing.set("k", False, ["inbox:1"], b"on", b"off")  # explicit off disarms the timer
    clock.now += 60
    assert await typing.expire() == 0
    assert [m.payload for m in out.sent] == [b"on", b"on", b"off", b"on", b"off"]


# ---- publisher ----------------------------------------------------------------------------


def logged(stream: str, offset: int) -> LoggedEvent:
    return LoggedEvent(
        stream=stream, epoch="e", offset=offset, name="n", payload=b"{}", created_at=0.0
    )


async def test_publisher_publishes_in_commit_order() -> None:
    async with MemoryBroker() as broker:
        publisher = Publisher(broker)
        feed = broker.open_feed()
        feed.listen("s")
        async with anyio.create_task_group() as tasks:
            await tasks.start(publisher.run)
            for offset in range(1, 6):
                publisher.logged([logged("s", offset)])
            got: list[int] = []
            with anyio.fail_after(5):
                while len(got) < 5:
                    got += [m.offset for m in await feed.receive() if isinstance(m, BrokerMessage)]
            tasks.cancel_scope.cancel()
    assert got == [1, 2, 3, 4, 5]


async def test_publisher_queue_is_bounded_and_never_blocks_a_writer() -> None:
    async with MemoryBroker() as broker:
        publisher = Publisher(broker, max_pending=2)
        for offset in range(1, 5):
            publisher.logged([logged("s", offset)])  # nobody is publishing yet
        assert publisher.dropped == 2


async def test_transient_publish_on_a_closed_broker_is_dropped_quietly() -> None:
    broker = MemoryBroker()
    publisher = Publisher(broker)
    await publisher.transient([BrokerMessage("s", None, 0, b"{}")])  # not started: no raise


async def test_publisher_says_once_that_the_broker_is_down_and_once_that_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()  # not started yet: every publish is refused
    publisher = Publisher(broker)
    caplog.set_level(logging.WARNING, logger="inboxgate.cable")
    async with anyio.create_task_group() as tasks:
        await tasks.start(publisher.run)
        for offset in range(1, 4):
            publisher.logged([logged("s", offset)])
        with anyio.fail_after(5):
            while publisher.unpublished < 3:
                await anyio.sleep(0.01)
        async with broker:
            feed = broker.open_feed()
            feed.listen("s")
            publisher.logged([logged("s", 4)])
            with anyio.fail_after(5):
                got = [m.offset for m in await feed.receive() if isinstance(m, BrokerMessage)]
            tasks.cancel_scope.cancel()
    assert got == [4]
    assert publisher.unpublished == 0
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert said[0].startswith("broker unavailable")
    assert said[1] == "broker back: 3 batches were left to the log"


async def test_commits_reach_the_sockets_in_the_same_turn_of_the_loop_in_one_write() -> None:
    """No queue hop between the commit, the broker and the hub: what the services' callback
    hands over is on the sockets once the committing request's step is over (the next turn of
    the loop), with no task in between; the commits of one turn reach a socket together."""
    delivered: list[list[int]] = []

    class Socket:  # what the hub asks of a connection
        listening: set[str] = set()

        def deliver(self, event: Any) -> None:
            delivered.append([event.offset])

        def deliver_all(self, events: Sequence[Any]) -> None:
            delivered.append([e.offset for e in events])

        def tick(self, now: float) -> bool:
            return False

        def ping(self, now: float) -> None:
            pass

    async with MemoryBroker() as broker:
        publisher = Publisher(broker)
        hub = Hub(
            broker=broker, store=None, room=None, sessions=MemorySessionCache(60),  # type: ignore[arg-type]
            stream_ids=StreamIds(b"s" * 32), reconcile_seconds=0,
        )  # fmt: skip
        socket = Socket()
        async with anyio.create_task_group() as tasks:
            await tasks.start(publisher.run)
            await tasks.start(hub.run)
            hub.register(socket)  # type: ignore[arg-type]
            hub.listen(socket, ["s"])  # type: ignore[arg-type]
            publisher.logged([logged("s", 1)])
            await anyio.sleep(0)
            assert delivered == [[1]]
            publisher.logged([logged("s", 2), logged("other", 1)])
            publisher.logged([logged("s", 3)])
            await anyio.sleep(0)
            assert delivered == [[1], [2, 3]]
            hub.unregister(socket)  # type: ignore[arg-type]
            tasks.cancel_scope.cancel()
