"""What nodes share through Redis, each part seen from two nodes (two instances over separate
connections): cable sessions, presence, rate limits; and the app wiring from settings."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import protocol as p
from gateway.app import create_app
from gateway.broker.redis import RedisBroker
from gateway.ratelimit import IpLimit, MemoryRateLimiter, RedisRateLimiter
from gateway.realtime import MemoryPresence
from gateway.realtime.core import SessionSnapshot, SubscriptionState
from gateway.realtime.presence_redis import RedisPresence
from gateway.realtime.sessions_redis import RedisSessionCache
from gateway.settings import Settings, SettingsError
from tests.redis_helpers import REDIS_URL, RedisServer, require

pytestmark = pytest.mark.anyio


@pytest.fixture(name="other")
async def other_fixture(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A second node's connection pool."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


class FakeClock:
    def __init__(self, now: float = 1_768_046_400.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def snapshot(*identifiers: str) -> SessionSnapshot:
    return SessionSnapshot(
        subscriptions=tuple(
            SubscriptionState(identifier=i, streams=("session:1",), principal="contact:1@1")
            for i in identifiers
        )
    )


# ---- cable sessions -----------------------------------------------------------------------


async def test_a_session_saved_on_one_node_restores_once_on_another(
    client: aioredis.Redis, other: aioredis.Redis, prefix: str
) -> None:
    a = RedisSessionCache(client, 300, prefix=prefix)
    b = RedisSessionCache(other, 300, prefix=prefix)
    await a.put("sid-1", snapshot("x", "y"))
    assert await b.take("sid-1") == snapshot("x", "y")
    assert await a.take("sid-1") is None  # single use, whichever node asks
    assert await b.take("sid-1") is None
    await a.put("sid-2", snapshot("x"))
    await a.put("sid-2", snapshot("x", "z"))  # refreshed
    ttl_ms = await client.pttl(f"{prefix}:cable-session:sid-2")
    assert 299_000 < ttl_ms <= 300_000
    assert await b.take("sid-2") == snapshot("x", "z")


async def test_a_session_carries_its_ttl_and_ttl_0_saves_nothing(
    client: aioredis.Redis, prefix: str
) -> None:
    # Expiry is Redis's own clock: the key carries the TTL (PX), so nothing here waits for it.
    cache = RedisSessionCache(client, 0.2, prefix=prefix)
    await cache.put("sid", snapshot("x"))
    assert 0 < await client.pttl(f"{prefix}:cable-session:sid") <= 200
    off = RedisSessionCache(client, 0, prefix=prefix)
    await off.put("sid-off", snapshot("x"))
    assert await off.take("sid-off") is None


async def test_odd_sids_and_corrupt_entries_restore_nothing(
    client: aioredis.Redis, prefix: str
) -> None:
    cache = RedisSessionCache(client, 300, prefix=prefix)
    await cache.put("x" * 200, snapshot("x"))
    assert await client.exists(f"{prefix}:cable-session:{'x' * 200}") == 0
    assert await cache.take("x" * 200) is None
    assert await cache.take("") is None
    await client.set(f"{prefix}:cable-session:bad", b"{not json")
    assert await cache.take("bad") is None


# ---- presence ------------------------------------------------------------------------------


async def test_presence_is_shared_between_nodes(
    client: aioredis.Redis, other: aioredis.Redis, prefix: str
) -> None:
    clock = FakeClock()
    a = RedisPresence(client, 20, prefix=prefix, clock=clock)
    b = RedisPresence(other, 20, prefix=prefix, clock=clock)
    await a.seen_user(1, 3, "online")
    await b.seen_user(1, 7, "busy")
    await a.seen_contact(1, 55)
    await b.seen_user(2, 9, "online")  # another account
    for node in (a, b):
        assert await node.for_contact(1) == p.PresenceEventData(
            account_id=1, users={"3": "online", "7": "busy"}
        )
        assert (await node.for_agent(1)).contacts == {"55": "online"}
    clock.now += 15
    await b.seen_user(1, 3, "away")  # availability follows the latest mark
    clock.now += 10  # user 7 and contact 55 are now 25 s old
    assert await a.for_agent(1) == p.PresenceEventData(
        account_id=1, users={"3": "away"}, contacts={}
    )
    # What fell out of the window is gone from Redis, availability included.
    users, availability, contacts = (f"{prefix}:presence:{{1}}:{k}" for k in
                                     ("users", "availability", "contacts"))  # fmt: skip
    assert await client.zrange(users, 0, -1) == [b"3"]
    assert await client.hkeys(availability) == [b"3"]
    assert await client.zcard(contacts) == 0
    assert 0 < await client.pttl(users) <= 60_000  # idle accounts expire


@given(
    marks=st.lists(
        st.tuples(
            st.sampled_from(["user", "contact", "read"]),
            st.integers(1, 2),  # account
            st.integers(1, 6),  # id
            st.sampled_from(["online", "busy"]),
            st.floats(0, 12),  # seconds since the previous step
        ),
        max_size=25,
    )
)
@settings(max_examples=25, deadline=None)
def test_redis_presence_answers_as_the_in_process_one(
    marks: list[tuple[str, int, int, str, float]],
) -> None:
    require(REDIS_URL)

    async def run() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        prefix = f"inboxgate-test-{random.getrandbits(48):x}"
        clock = FakeClock()
        shared, local = (
            RedisPresence(client, 20, prefix=prefix, clock=clock),
            MemoryPresence(20, clock=clock),
        )
        try:
            for kind, account, ident, availability, step in marks:
                clock.now += step
                for presence in (shared, local):
                    if kind == "user":
                        await presence.seen_user(account, ident, availability)
                    elif kind == "contact":
                        await presence.seen_contact(account, ident)
                for account_id in (1, 2):
                    assert await shared.for_agent(account_id) == await local.for_agent(account_id)
                    assert await shared.for_contact(account_id) == await local.for_contact(
                        account_id
                    )
        finally:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    anyio.run(run)


# ---- rate limits ---------------------------------------------------------------------------


async def test_two_nodes_share_one_rate_limit(
    client: aioredis.Redis, other: aioredis.Redis, prefix: str
) -> None:
    a = RedisRateLimiter(client, prefix=prefix)
    b = RedisRateLimiter(other, prefix=prefix)
    t = 1000 * 60.0
    results = [await (a if i % 2 else b).acquire("ip:a", 5, 60, t + i) for i in range(8)]
    assert [ok for ok, _retry in results] == [True] * 5 + [False] * 3
    assert all(retry > 0 for ok, retry in results if not ok)
    assert await a.acquire("ip:b", 5, 60, t + 8) == (True, 0)  # per key


async def test_two_nodes_share_one_upgrade_limit_apart_from_the_request_limit(
    client: aioredis.Redis, other: aioredis.Redis, prefix: str
) -> None:
    def upgrades(redis: aioredis.Redis) -> IpLimit:
        return IpLimit(
            RedisRateLimiter(redis, prefix=prefix), prefix="cable:", what="websocket connections",
            limit=2, window=60, safelist=("10.0.0.9",), clock=lambda: 1000 * 60.0,
        )  # fmt: skip

    a, b = upgrades(client), upgrades(other)
    scope = {"type": "websocket", "client": ("10.0.0.1", 5000)}
    assert await a.check(scope) is None
    assert await b.check(scope) is None
    refused = await a.check(scope)
    assert refused is not None and refused.retry_after >= 1
    assert refused.description.endswith("exceeded for 10.0.0.1")
    # the request limit of the same address has its own count
    requests = RedisRateLimiter(client, prefix=prefix)
    assert await requests.acquire("ip:10.0.0.1", 2, 60, 1000 * 60.0) == (True, 0)
    safe = {"type": "websocket", "client": ("10.0.0.9", 5000)}
    assert [await b.check(safe) for _ in range(4)] == [None] * 4


@given(
    steps=st.lists(st.floats(0, 20), min_size=1, max_size=60),
    limit=st.integers(1, 8),
)
@settings(max_examples=25, deadline=None)
def test_redis_rate_limit_decides_as_the_in_process_one(steps: list[float], limit: int) -> None:
    """Same sliding window, same answers (allowed, retry after), request for request."""
    require(REDIS_URL)

    async def run() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        prefix = f"inboxgate-test-{random.getrandbits(48):x}"
        shared, local = RedisRateLimiter(client, prefix=prefix), MemoryRateLimiter()
        now = 1000 * 30.0
        try:
            for step in steps:
                now += step
                assert await shared.acquire("k", limit, 30, now) == local.hit("k", limit, 30, now)
        finally:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()

    anyio.run(run)


# ---- Redis down: degrade, never fail ------------------------------------------------------


@pytest.mark.slow  # a redis-server subprocess of its own
async def test_shared_parts_degrade_when_redis_is_down(own_redis: RedisServer) -> None:
    client = aioredis.Redis.from_url(own_redis.url, socket_connect_timeout=0.5)
    try:
        sessions = RedisSessionCache(client, 300)
        presence = RedisPresence(client, 20)
        limiter = RedisRateLimiter(client)
        await sessions.put("sid", snapshot("x"))
        assert (await limiter.acquire("k", 1, 60, 600.0))[0]
        assert not (await limiter.acquire("k", 1, 60, 601.0))[0]
        own_redis.kill()
        await sessions.put("sid2", snapshot("x"))  # logged, not raised
        assert await sessions.take("sid") is None
        await presence.seen_user(1, 2, "online")
        assert await presence.for_agent(1) == p.PresenceEventData(
            account_id=1, users={}, contacts={}
        )
        assert await limiter.acquire("k", 1, 60, 602.0) == (True, 0)  # fails open
    finally:
        await client.aclose()


# ---- settings and wiring -------------------------------------------------------------------


def test_redis_settings_from_the_environment(tmp_path: Path) -> None:
    base = {"INBOXGATE_DATA_DIR": str(tmp_path), "INBOXGATE_SECRET_KEY": "k"}
    assert Settings.from_env(base).redis_url == ""
    s = Settings.from_env(
        {**base, "INBOXGATE_REDIS_URL": "redis://cache:6379/2", "INBOXGATE_REDIS_PREFIX": "gw1"}
    )
    assert (s.redis_url, s.redis_prefix) == ("redis://cache:6379/2", "gw1")
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**base, "INBOXGATE_REDIS_URL": "http://:hunter2@cache"})
    assert "hunter2" not in str(err.value)


async def test_create_app_takes_every_shared_part_from_redis(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        data_dir=tmp_path / "data",
        secret_key="k",
        redis_url=redis_url,
        redis_prefix=prefix,
        rate_limit_per_ip=3,
    )
    nodes = [create_app(settings), create_app(settings)]
    for app in nodes:
        realtime = app.state.realtime
        assert isinstance(realtime.broker, RedisBroker)
        assert isinstance(realtime.presence, RedisPresence)
        assert isinstance(realtime.hub.sessions, RedisSessionCache)
    async with (
        nodes[0].router.lifespan_context(nodes[0]),
        nodes[1].router.lifespan_context(nodes[1]),
    ):
        assert all(app.state.realtime.broker.connected for app in nodes)
        statuses = []
        for i in range(4):  # one client, alternating between the two nodes
            transport = httpx.ASGITransport(app=nodes[i % 2], client=("203.0.113.9", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                # Any API path (probes are not rate limited): an unknown inbox is a 404.
                statuses.append((await http.get("/public/api/v1/inboxes/x")).status_code)
        assert statuses == [404, 404, 404, 429]
    assert not any(app.state.realtime.broker.running for app in nodes)
