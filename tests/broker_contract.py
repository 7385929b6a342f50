"""The Broker contract: one suite that every Broker implementation must pass.

An implementation's test module subclasses :class:`BrokerContract` as ``Test...`` and overrides
``make_broker`` (a factory of *unstarted* brokers). A backend whose delivery is asynchronous
(Redis: publish, then a reader task dispatches) also overrides :meth:`BrokerContract.flush` to
wait until everything published so far has reached the local feeds::

    class TestRedisBroker(BrokerContract):
        @pytest.fixture
        def make_broker(self, redis_url):
            return lambda: RedisBroker(redis_url, shards=8)

        async def flush(self, broker):
            await broker.wait_idle()

"Nothing was delivered" is always proven with a sentinel published after the fact on a stream
the feed does listen to: the first delivery must be the sentinel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from gateway.broker import (
    Broker,
    BrokerClosed,
    BrokerError,
    BrokerMessage,
    BrokerUnavailable,
    Delivery,
    Feed,
    Gap,
)

BrokerFactory = Callable[[], Broker]
TIMEOUT = 5.0


def msg(stream: str, offset: int, epoch: str | None = "e1") -> BrokerMessage:
    return BrokerMessage(stream, epoch, offset, b'{"event":"x","data":%d}' % offset)


async def take(feed: Feed, count: int) -> list[Delivery]:
    """Exactly ``count`` deliveries (fails on timeout or on more in the last batch)."""
    got: list[Delivery] = []
    with anyio.fail_after(TIMEOUT):
        while len(got) < count:
            got.extend(await feed.receive())
    assert len(got) == count, got
    return got


class BrokerContract:
    @pytest.fixture
    def make_broker(self) -> BrokerFactory:
        raise NotImplementedError("override make_broker in the implementation's test module")

    @pytest.fixture
    async def broker(self, make_broker: BrokerFactory) -> AsyncIterator[Broker]:
        async with make_broker() as broker:
            yield broker

    async def flush(self, broker: Broker) -> None:
        """Wait until everything published (and every listen) has taken effect locally."""
        await anyio.lowlevel.checkpoint()

    async def publish(self, broker: Broker, *messages: BrokerMessage) -> None:
        await broker.publish(list(messages))
        await self.flush(broker)

    # ---- delivery ----------------------------------------------------------------------------

    async def test_delivers_only_to_feeds_of_that_stream(self, broker: Broker) -> None:
        with broker.open_feed() as fa, broker.open_feed() as fb, broker.open_feed() as both:
            fa.listen("a")
            fb.listen("b")
            both.listen("a")
            both.listen("b")
            await self.flush(broker)
            await self.publish(broker, msg("a", 1), msg("b", 1), msg("c", 1))
            assert await take(fa, 1) == [msg("a", 1)]
            assert await take(fb, 1) == [msg("b", 1)]
            assert sorted(await take(both, 2)) == [msg("a", 1), msg("b", 1)]
            await self.publish(broker, msg("a", 2))
            assert fb.receive_nowait() == []

    async def test_payload_and_position_arrive_unchanged(self, broker: Broker) -> None:
        with broker.open_feed() as feed:
            feed.listen("s")
            await self.flush(broker)
            sent = BrokerMessage("s", "ep-Ω", 2**40, bytes(range(256)))
            await self.publish(broker, sent)
            assert await take(feed, 1) == [sent]

    async def test_transient_messages_are_delivered(self, broker: Broker) -> None:
        with broker.open_feed() as feed:
            feed.listen("s")
            await self.flush(broker)
            await self.publish(broker, msg("s", 0, epoch=None))
            assert await take(feed, 1) == [msg("s", 0, epoch=None)]

    async def test_order_per_stream_is_preserved(self, broker: Broker) -> None:
        streams = ["x", "y", "z"]
        with broker.open_feed() as feed:
            for s in streams:
                feed.listen(s)
            await self.flush(broker)
            sent = [msg(streams[i % 3], i // 3 + 1) for i in range(300)]
            for i in range(0, 300, 7):  # batches of several sizes
                await broker.publish(sent[i : i + 7])
            await self.flush(broker)
            got = await take(feed, 300)
            for s in streams:
                assert [m for m in got if m.stream == s] == [m for m in sent if m.stream == s]

    async def test_unlisten_stops_delivery_even_of_queued_messages(self, broker: Broker) -> None:
        with broker.open_feed() as feed:
            feed.listen("a")
            feed.listen("sentinel")
            await self.flush(broker)
            await self.publish(broker, msg("a", 1))
            feed.unlisten("a")
            feed.unlisten("a")  # idempotent
            await self.flush(broker)
            await self.publish(broker, msg("a", 2), msg("sentinel", 1))
            assert await take(feed, 1) == [msg("sentinel", 1)]
            assert feed.streams == {"sentinel"}

    async def test_many_streams_and_feeds(self, broker: Broker) -> None:
        feeds = [broker.open_feed() for _ in range(20)]
        try:
            for i in range(1000):
                feeds[i % 20].listen(f"s{i}")
            await self.flush(broker)
            await broker.publish([msg(f"s{i}", 1) for i in range(1000)])
            await self.flush(broker)
            for n, feed in enumerate(feeds):
                got = await take(feed, 50)
                assert {m.stream for m in got} == {f"s{i}" for i in range(n, 1000, 20)}
        finally:
            for feed in feeds:
                feed.close()

    async def test_a_blocked_consumer_wakes_on_publish(self, broker: Broker) -> None:
        with broker.open_feed() as feed:
            feed.listen("a")
            await self.flush(broker)
            got: list[Delivery] = []

            async def consume() -> None:
                got.extend(await feed.receive())

            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume)
                    await anyio.wait_all_tasks_blocked()  # the consumer is parked in receive()
                    await broker.publish([msg("a", 1)])
            assert got == [msg("a", 1)]

    # ---- harmless cases ------------------------------------------------------------------

    async def test_publish_without_subscribers_is_harmless(self, broker: Broker) -> None:
        await self.publish(broker, msg("nobody", 1), msg("nobody", 2))
        await broker.publish([])
        with broker.open_feed() as feed:
            feed.listen("nobody")
            await self.flush(broker)
            await self.publish(broker, msg("nobody", 3))
            assert await take(feed, 1) == [msg("nobody", 3)]  # nothing replayed: a doorbell

    # ---- overflow --------------------------------------------------------------------------

    async def test_overflow_drops_and_signals_a_gap_per_stream(self, broker: Broker) -> None:
        with broker.open_feed(max_queue=4) as slow, broker.open_feed() as fast:
            for feed in (slow, fast):
                feed.listen("a")
                feed.listen("b")
            await self.flush(broker)
            sent = [msg("a", i) for i in range(1, 11)] + [msg("b", 1)]
            await self.publish(broker, *sent)
            assert await take(fast, 11) == sent  # the slow feed stalled nobody
            batch = slow.receive_nowait()
            messages = [d for d in batch if isinstance(d, BrokerMessage)]
            gaps = [d for d in batch if isinstance(d, Gap)]
            assert messages == sent[:4]
            assert set(gaps) == {Gap("a"), Gap("b")}
            assert batch[-len(gaps) :] == gaps  # each gap after the last message kept
            # After the gap is seen, delivery resumes normally.
            await self.publish(broker, msg("a", 11))
            assert await take(slow, 1) == [msg("a", 11)]

    async def test_a_stream_stays_dropped_until_its_gap_is_seen(self, broker: Broker) -> None:
        with broker.open_feed(max_queue=2) as feed:
            feed.listen("a")
            feed.listen("b")
            await self.flush(broker)
            await self.publish(broker, msg("b", 1), msg("b", 2), msg("a", 1))  # a1: full, dropped
            feed.unlisten("b")  # frees the queue while a's gap is still unseen
            await self.publish(broker, msg("a", 2))  # must not overtake the gap
            assert feed.receive_nowait() == [Gap("a")]
            await self.publish(broker, msg("a", 3))
            assert await take(feed, 1) == [msg("a", 3)]

    async def test_dropped_transient_messages_signal_no_gap(self, broker: Broker) -> None:
        with broker.open_feed(max_queue=1) as feed:
            feed.listen("t")
            await self.flush(broker)
            await self.publish(broker, msg("t", 0, None), msg("t", 0, None))
            assert feed.receive_nowait() == [msg("t", 0, None)]

    async def test_unlisten_forgets_a_pending_gap(self, broker: Broker) -> None:
        with broker.open_feed(max_queue=1) as feed:
            feed.listen("a")
            feed.listen("b")
            await self.flush(broker)
            await self.publish(broker, msg("b", 1), msg("a", 1))
            feed.unlisten("a")
            assert feed.receive_nowait() == [msg("b", 1)]

    # ---- lifecycle -------------------------------------------------------------------------

    async def test_publish_requires_a_running_broker(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        with pytest.raises(BrokerUnavailable):
            await broker.publish([msg("a", 1)])
        await broker.start()
        with pytest.raises(BrokerError):
            await broker.start()
        await broker.close()
        with pytest.raises(BrokerUnavailable):
            await broker.publish([msg("a", 1)])

    async def test_close_is_clean(self, make_broker: BrokerFactory) -> None:
        broker = make_broker()
        await broker.start()
        waiting = broker.open_feed()
        waiting.listen("a")
        idle = broker.open_feed()
        idle.listen("a")
        await self.flush(broker)
        await self.publish(broker, msg("a", 1))
        outcome: list[str] = []

        async def consume() -> None:
            waiting.receive_nowait()
            try:
                await waiting.receive()
            except BrokerClosed:
                outcome.append("closed")

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                await anyio.wait_all_tasks_blocked()  # the consumer is parked in receive()
                await broker.close()
        assert outcome == ["closed"]
        with pytest.raises(BrokerClosed):  # queued items are not handed out after close
            idle.receive_nowait()
        with pytest.raises(BrokerClosed):
            broker.open_feed()
        with pytest.raises(BrokerClosed):
            idle.listen("b")
        await broker.close()  # idempotent

    async def test_closing_one_feed_leaves_the_others(self, broker: Broker) -> None:
        with broker.open_feed() as other:
            feed = broker.open_feed()
            feed.listen("a")
            other.listen("a")
            await self.flush(broker)
            feed.close()
            feed.close()
            with pytest.raises(BrokerClosed):
                await feed.receive()
            await self.publish(broker, msg("a", 1))
            assert await take(other, 1) == [msg("a", 1)]
            assert feed.streams == frozenset()
