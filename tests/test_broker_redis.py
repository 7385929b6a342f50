"""RedisBroker against a real Redis: the Broker contract (twice: local-first, and with every
message making the round trip through Redis), then what only several nodes show: delivery
between nodes, a fixed channel set, batched publishing, and loss signalled as gaps."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest
import redis.asyncio as aioredis

from gateway.broker import Broker, BrokerUnavailable, Gap
from gateway.broker.redis import MAX_LOST_STREAMS, RedisBroker, redacted
from tests.broker_contract import BrokerContract, BrokerFactory, msg, take
from tests.postgres_helpers import TcpProxy
from tests.redis_helpers import RedisServer

pytestmark = pytest.mark.anyio


class TestRedisBroker(BrokerContract):
    @pytest.fixture
    def make_broker(self, redis_url: str, prefix: str) -> BrokerFactory:
        return lambda: RedisBroker(redis_url, prefix=prefix, shards=8)

    async def flush(self, broker: Broker) -> None:
        assert isinstance(broker, RedisBroker)
        await broker.wait_idle()


class TestRedisBrokerThroughRedis(TestRedisBroker):
    """Every delivery, even to the publishing node, comes back from Redis."""

    @pytest.fixture
    def make_broker(self, redis_url: str, prefix: str) -> BrokerFactory:
        return lambda: RedisBroker(redis_url, prefix=prefix, shards=8, local_first=False)


@pytest.fixture(name="nodes")
async def nodes_fixture(redis_url: str, prefix: str) -> AsyncIterator[tuple[RedisBroker, ...]]:
    async with (
        RedisBroker(redis_url, prefix=prefix, shards=4) as a,
        RedisBroker(redis_url, prefix=prefix, shards=4) as b,
    ):
        yield a, b


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.02)


async def test_two_nodes_deliver_to_each_other(nodes: tuple[RedisBroker, ...]) -> None:
    a, b = nodes
    with a.open_feed() as fa, b.open_feed() as fb:
        fa.listen("s")
        fb.listen("s")
        await a.publish([msg("s", 1)])
        await b.publish([msg("s", 2), msg("s", 3)])
        for node in (a, b):
            await node.wait_idle()
        # Each node hears its own messages once (locally) and the other's once (via Redis).
        assert sorted(await take(fa, 3)) == [msg("s", 1), msg("s", 2), msg("s", 3)]
        assert sorted(await take(fb, 3)) == [msg("s", 1), msg("s", 2), msg("s", 3)]
        for node in (a, b):
            await node.wait_idle()
        assert fa.receive_nowait() == [] and fb.receive_nowait() == []


async def test_other_prefixes_are_not_heard(redis_url: str, prefix: str) -> None:
    async with (
        RedisBroker(redis_url, prefix=prefix) as a,
        RedisBroker(redis_url, prefix=prefix + "-other") as b,
    ):
        with b.open_feed() as feed:
            feed.listen("s")
            feed.listen("sentinel")
            await a.publish([msg("s", 1)])
            await a.wait_idle()
            await b.publish([msg("sentinel", 1)])
            await b.wait_idle()
            assert await take(feed, 1) == [msg("sentinel", 1)]


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_one_subscriber_and_a_fixed_channel_set(own_redis: RedisServer) -> None:
    async with (
        RedisBroker(own_redis.url, shards=8) as a,
        RedisBroker(own_redis.url, shards=8) as b,
    ):
        with a.open_feed() as fa, b.open_feed() as fb:
            for i in range(2000):
                (fa if i % 2 else fb).listen(f"session:{i}")
            await a.publish([msg(f"session:{i}", 1) for i in range(2000)])
            await a.wait_idle()
            assert len(await take(fb, 1000)) == 1000
            with own_redis.client() as admin:
                channels = admin.pubsub_channels("inboxgate:bus:*")
                clients = admin.client_list()
            assert len(channels) == 8  # not 2000: streams share the shard channels
            subscribers = [c for c in clients if int(c["sub"]) > 0]
            assert sorted(c["name"] for c in subscribers) == sorted(
                [a.subscriber_name, b.subscriber_name]
            )
            assert all(int(c["sub"]) == 8 for c in subscribers)


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_a_burst_is_batched(own_redis: RedisServer) -> None:
    """A burst of small publishes (one per commit, as the realtime publisher makes them) goes
    out in a few large frames, in order."""
    streams = [f"inbox:{i}" for i in range(50)]
    sent = [msg(streams[i % 50], i // 50 + 1) for i in range(20_000)]
    async with (
        RedisBroker(own_redis.url, shards=16) as a,
        RedisBroker(own_redis.url, shards=16) as b,
    ):
        with b.open_feed(max_queue=len(sent)) as feed:
            for s in streams:
                feed.listen(s)
            with own_redis.client() as admin:
                admin.config_resetstat()
            started = time.perf_counter()
            for i in range(0, len(sent), 2):
                await a.publish(sent[i : i + 2])
            await a.wait_idle()
            got = await take(feed, len(sent))
            elapsed = time.perf_counter() - started
            with own_redis.client() as admin:
                publish_calls = int(admin.info("commandstats")["cmdstat_publish"]["calls"])
    for s in streams:
        assert [m for m in got if m.stream == s] == [m for m in sent if m.stream == s]
    print(
        f"\n{len(sent)} messages in {len(sent) // 2} publish() calls: {publish_calls} PUBLISH "
        f"commands, {a.stats.flushes} pipelines, {elapsed:.2f} s end to end"
    )
    assert a.stats.messages == len(sent)
    assert publish_calls == a.stats.publishes
    assert publish_calls <= len(sent) // 20  # in practice far fewer: see the printed figures


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_a_killed_subscriber_gaps_its_streams_then_resumes(
    own_redis: RedisServer,
) -> None:
    async with RedisBroker(own_redis.url) as a, RedisBroker(own_redis.url) as b:
        with b.open_feed() as feed:
            feed.listen("s")
            feed.listen("t")
            await a.publish([msg("s", 1)])
            assert await take(feed, 1) == [msg("s", 1)]
            with own_redis.client() as admin:
                [sub] = [c for c in admin.client_list() if c["name"] == b.subscriber_name]
                assert admin.client_kill_filter(_id=sub["id"]) == 1
            # Published while b had no subscriber: lost to b, so b must be told.
            await eventually(lambda: b.stats.reconnects == 1)
            batch = await take(feed, 2)
            assert set(batch) == {Gap("s"), Gap("t")}
            await a.publish([msg("s", 2)])
            assert await take(feed, 1) == [msg("s", 2)]


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_a_redis_restart_gaps_streams_and_delivery_resumes(
    own_redis: RedisServer,
) -> None:
    async with RedisBroker(own_redis.url) as a, RedisBroker(own_redis.url) as b:
        with a.open_feed() as local, b.open_feed() as remote:
            local.listen("s")
            remote.listen("s")
            await a.publish([msg("s", 1)])
            assert await take(remote, 1) == [msg("s", 1)]
            assert await take(local, 1) == [msg("s", 1)]
            own_redis.kill()
            await eventually(lambda: not a.connected and not b.connected)
            # Down: publishing fails at once (never blocks), yet the node's own feeds still hear
            # it; the other node will re-read the log.
            with anyio.fail_after(1):
                with pytest.raises(BrokerUnavailable):
                    await a.publish([msg("s", 2)])
            assert await take(local, 1) == [msg("s", 2)]
            with pytest.raises(BrokerUnavailable):
                await a.wait_idle()
            own_redis.start()
            await eventually(lambda: a.connected and b.connected)
            assert await take(remote, 1) == [Gap("s")]
            assert await take(local, 1) == [Gap("s")]
            await a.publish([msg("s", 3)])
            await a.wait_idle()
            # b learns of 3 as 3 itself, or as a Gap it takes after 3 went out: a re-read of
            # the log, which holds 3, by contract. a's announcement of what it could not
            # publish, or a re-subscribe of b's after a missed health check on a loaded
            # machine, can mark the stream's gap before 3 arrives, and a feed drops a stream's
            # messages while its gap is pending (``Feed.offer``).
            remote_after = await take(remote, 1)
            assert remote_after in ([msg("s", 3)], [Gap("s")]), (remote_after, b.stats)
            assert await take(local, 1) == [msg("s", 3)]


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_starts_while_redis_is_down_and_connects_later(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # not started yet
    try:
        async with RedisBroker(server.url) as broker:
            assert not broker.connected
            with pytest.raises(BrokerUnavailable):
                await broker.publish([msg("s", 1)])
            server.start()
            await eventually(lambda: broker.connected)
            with broker.open_feed() as feed:
                feed.listen("s")
                await broker.publish([msg("s", 2)])
                await broker.wait_idle()
                assert await take(feed, 1) == [msg("s", 2)]
    finally:
        server.kill()


async def test_a_full_publish_queue_refuses_instead_of_blocking(
    redis_url: str, prefix: str
) -> None:
    async with RedisBroker(redis_url, prefix=prefix, max_pending=10) as broker:
        with pytest.raises(BrokerUnavailable):
            await broker.publish([msg("s", i) for i in range(11)])
        assert broker.stats.dropped == 11
        await broker.publish([msg("s", 12)])
        await broker.wait_idle()


async def test_an_undecodable_frame_gaps_every_stream(
    redis_url: str, prefix: str, client: aioredis.Redis
) -> None:
    async with RedisBroker(redis_url, prefix=prefix, shards=2) as broker:
        with broker.open_feed() as feed:
            feed.listen("a")
            feed.listen("b")
            await client.publish(f"{prefix}:bus:1", b"\xc1 not msgpack")
            await broker.wait_idle()
            assert set(await take(feed, 2)) == {Gap("a"), Gap("b")}


async def test_what_a_cut_off_node_published_is_announced_once_it_is_back(
    redis_url: str, prefix: str
) -> None:
    """Node a loses Redis while node b keeps it (or got it back first): b has no reconnect of
    its own to come, and if the stream goes quiet no later offset jump will show b what a
    published meanwhile. Only a can tell b, once it is back."""
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    try:
        behind_proxy = f"redis://127.0.0.1:{proxy.port}{target.path}"
        async with (
            RedisBroker(behind_proxy, prefix=prefix) as a,
            RedisBroker(redis_url, prefix=prefix) as b,
        ):
            with a.open_feed() as local, b.open_feed() as remote:
                local.listen("s")
                remote.listen("s")
                remote.listen("t")
                await a.publish([msg("s", 1)])
                assert await take(remote, 1) == [msg("s", 1)]
                assert await take(local, 1) == [msg("s", 1)]
                proxy.cut()
                await eventually(lambda: not a.connected)
                with pytest.raises(BrokerUnavailable):
                    await a.publish([msg("s", 2), msg("t", 1, epoch=None)])
                assert await take(local, 1) == [msg("s", 2)]
                proxy.restore()
                await eventually(lambda: a.connected)
                assert await take(local, 1) == [Gap("s")]  # a's own re-subscribe
                assert await take(remote, 1) == [Gap("s")]  # a's announcement
                # a counts the frame once its pipeline returns, which may be after b heard it.
                await eventually(lambda: a.stats.lost_frames == 1)
                assert b.stats.reconnects == 0
                await b.wait_idle()
                # Not "t": its event was transient, nothing in the log to re-read.
                assert remote.receive_nowait() == []
    finally:
        await proxy.close()


async def test_what_a_full_queue_refused_is_announced_once_it_drains(
    redis_url: str, prefix: str
) -> None:
    async with (
        RedisBroker(redis_url, prefix=prefix, max_pending=10) as a,
        RedisBroker(redis_url, prefix=prefix) as b,
    ):
        with b.open_feed() as remote:
            remote.listen("s")
            remote.listen("t")
            with pytest.raises(BrokerUnavailable):
                await a.publish([msg("s", i) for i in range(1, 12)])
            assert await take(remote, 1) == [Gap("s")]
            # Too many streams to name: every node re-reads every stream it carries.
            with pytest.raises(BrokerUnavailable):
                await a.publish([msg(f"x{i}", 1) for i in range(MAX_LOST_STREAMS + 1)])
            assert set(await take(remote, 2)) == {Gap("s"), Gap("t")}
            assert a.stats.lost_frames == 2


def test_urls_in_logs_hide_the_password() -> None:
    assert redacted("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redacted("rediss://user:pw@cache/1") == "rediss://user:***@cache/1"
    assert redacted("redis://cache:6379") == "redis://cache:6379"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        RedisBroker("redis://x", shards=0)
