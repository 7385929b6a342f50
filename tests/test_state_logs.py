"""Conditions are logged at warning once when they start and once when they end, not once per
retry: failing webhook receivers and their dead letters, slow websocket consumers; and what
the webhook worker counts in metrics meanwhile."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from gateway.logs import StateLog, logging_config
from gateway.realtime.hub import SLOW_QUIET_SECONDS
from gateway.settings import Settings
from tests.routes_helpers import Clock
from tests.store_contract import new_conversation
from tests.webhook_helpers import Hooks, prov_set_webhook_url

pytestmark = pytest.mark.anyio


def deliveries(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("inboxgate_webhook_deliveries_total", {"outcome": outcome}) or 0
    )


def warnings(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= 30]


async def account_hook_only(hooks: Hooks, conversations: int) -> None:
    await hooks.hook(subscriptions=["conversation_created"])
    world = hooks.world
    await hooks.store.write(prov_set_webhook_url, world.inbox.id, None)
    for _ in range(conversations):
        await new_conversation(hooks.store, world.inbox, world.session)


async def test_a_failing_receiver_is_said_once_and_its_recovery_once(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="inboxgate.webhooks")
    await account_hook_only(hooks, 3)
    failed, delivered = deliveries("failed"), deliveries("delivered")
    hooks.answers = [500] * 6  # two rounds of three failures, then 200s
    worker = hooks.worker(rand=lambda: 1.0)
    async with worker.client() as client:
        assert await worker.run_once(client) == 3
        hooks.clock.advance(10.0)
        assert await worker.run_once(client) == 3
        hooks.clock.advance(20.0)
        assert await worker.run_once(client) == 3
    said = warnings(caplog, "inboxgate.webhooks")
    assert len(said) == 2, said
    assert said[0].startswith("webhook deliveries to http://receiver.test/account are failing")
    assert said[1] == (
        "webhook receiver http://receiver.test/account answers again (6 failed attempts)"
    )
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 6 and all(r.levelno == logging.DEBUG for r in retries)
    assert (deliveries("failed") - failed, deliveries("delivered") - delivered) == (6, 3)


async def test_dead_letters_warn_once_per_receiver_outage(
    hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inboxgate.webhooks")
    await account_hook_only(hooks, 2)
    dead = deliveries("dead")
    hooks.answers = [503] * 6  # webhook_max_attempts is 3: both die in the third round
    worker = hooks.worker(rand=lambda: 1.0)
    async with worker.client() as client:
        for _ in range(3):
            assert await worker.run_once(client) == 2
            hooks.clock.advance(100.0)
    said = warnings(caplog, "inboxgate.webhooks")
    assert len(said) == 2, said
    assert "are failing" in said[0]
    assert "is dead after 3 attempts: HTTP 503" in said[1] and "further dead letters" in said[1]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("is dead after 3 attempts" in m for m in infos) == 1  # the second dead letter
    assert deliveries("dead") - dead == 2


def test_state_log_says_start_and_end_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("inboxgate.test")
    caplog.set_level(logging.WARNING, logger="inboxgate.test")
    state = StateLog(logger, max_keys=2)
    assert state.failing("a", "a down") and not state.failing("a", "a down")
    assert not state.recovered("b", "b up (%d)")
    assert state.recovered("a", "a up (%d)") and not state.recovered("a", "a up (%d)")
    for key in ("x", "y", "z"):  # bounded: the oldest is forgotten
        state.failing(key, "down")
    assert not state.is_failing("x") and state.is_failing("z")
    assert [r.getMessage() for r in caplog.records] == [
        "a down",
        "a up (2)",
        "down",
        "down",
        "down",
    ]


async def test_slow_consumers_are_said_once_per_bout(
    tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.broker import MemoryBroker
    from gateway.realtime import Realtime
    from gateway.settings import Settings
    from gateway.store import SQLiteStore

    caplog.set_level(logging.DEBUG, logger="inboxgate.cable")
    clock = Clock(1000.0)
    store = SQLiteStore(f"{tmp_path}/s.db")
    hub = Realtime(Settings(secret_key="k"), store, MemoryBroker(), clock=clock).hub
    before = REGISTRY.get_sample_value("inboxgate_cable_slow_consumers_total") or 0
    for sid in ("s1", "s2", "s3"):
        hub.slow_consumer(sid)
    clock.advance(SLOW_QUIET_SECONDS - 1)
    hub.slow_consumer("s4")  # still the same bout
    clock.advance(SLOW_QUIET_SECONDS)
    hub_tick(hub)
    hub.slow_consumer("s5")  # a new bout
    said = warnings(caplog, "inboxgate.cable")
    assert len(said) == 3, said
    assert said[0].startswith("websocket clients too slow, disconnecting them (first: s1")
    assert said[1] == "no websocket client too slow for 60 s (4 disconnected)"
    assert "(first: s5" in said[2]
    assert (REGISTRY.get_sample_value("inboxgate_cable_slow_consumers_total") or 0) - before == 5


def hub_tick(hub: object) -> None:
    """One pass of the hub's timer loop's slow-consumer check (the loop itself sleeps)."""
    from gateway.realtime.hub import Hub

    assert isinstance(hub, Hub)
    hub.check_slow_consumers(hub.clock())


def test_asyncpg_pool_retries_are_not_logged_per_retry() -> None:
    """During a PostgreSQL outage asyncpg's pool warned, with a traceback, at every reconnect
    of its idle connections (seen against a stopped server): the store's one "database
    unavailable" line says it instead."""
    config = logging_config(Settings())
    logger = logging.Logger("asyncpg.pool")
    logger.setLevel(config["loggers"]["asyncpg.pool"]["level"])
    assert not logger.isEnabledFor(logging.WARNING)
    assert logger.isEnabledFor(logging.ERROR)
    assert config["loggers"]["inboxgate"]["level"] == "INFO"
