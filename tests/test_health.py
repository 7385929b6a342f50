"""/health and /ready: readiness follows the database and Redis (real PostgreSQL and Redis
behind a proxy that can cut them), and at shutdown /ready turns 503 before the websockets are
told to reconnect, on a real server."""

from __future__ import annotations

import logging
import os
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from client_sdk import cable_protocol as cp
from gateway.app import create_app
from gateway.broker import MemoryBroker
from gateway.health import Health
from tests.cable_client import CableClient
from tests.cable_socket_helpers import Tenant, expect_disconnect, subscribe_ok
from tests.postgres_helpers import ADMIN_URL, TcpProxy, fresh_database
from tests.redis_helpers import REDIS_URL, require
from tests.routes_helpers import Env, settings_for
from tests.server_helpers import gateway_server

pytestmark = pytest.mark.anyio

READY = {"status": "ok", "checks": {"database": "ok", "redis": "not configured", "draining": False}}


async def test_health_and_ready(env: Env) -> None:
    r = await env.client.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = await env.client.get("/ready")
    assert (r.status_code, r.json()) == (200, READY)
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_ready_follows_postgresql_down_and_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="inboxgate")
    target = urllib.parse.urlsplit(ADMIN_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        async with fresh_database() as url:
            app = create_app(settings_for(tmp_path, database_url=proxy.url(url)))
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    assert (await http.get("/ready")).status_code == 200
                    proxy.cut()  # PostgreSQL stopped: connections dropped, new ones refused
                    r = await http.get("/ready")
                    assert r.status_code == 503
                    body = r.json()
                    assert body["status"] == "unavailable"
                    assert body["checks"]["database"].startswith("error: ")
                    assert body["checks"]["redis"] == "not configured"
                    assert body["checks"]["draining"] is False
                    assert (await http.get("/health")).status_code == 200  # still alive
                    for _ in range(3):
                        assert (await http.get("/ready")).status_code == 503
                    proxy.restore()
                    with anyio.fail_after(10):
                        while (r := await http.get("/ready")).status_code != 200:
                            await anyio.sleep(0.05)  # the pool reconnects on a later probe
                    assert r.json()["checks"]["database"] == "ok"
    finally:
        await proxy.close()
    # Said once when it went and once when it came back, however often it was tried.
    said = [r.getMessage() for r in caplog.records if r.name == "inboxgate.store"]
    assert len(said) == 2, said
    assert said[0].startswith("database unavailable: ")
    assert said[1].startswith("database available again (")
    probes = [r.getMessage() for r in caplog.records if r.name == "inboxgate.health"]
    assert len(probes) == 2 and probes[1].startswith("database answers again (")


async def test_ready_follows_redis_down_and_back(tmp_path: Path) -> None:
    require(REDIS_URL)
    target = urllib.parse.urlsplit(REDIS_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    try:
        via_proxy = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        settings = settings_for(tmp_path, redis_url=via_proxy, redis_prefix=f"t{os.getpid()}")
        # The broker keeps its own connections; the probe is about the shared client.
        app = create_app(settings, broker=MemoryBroker())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                r = await http.get("/ready")
                assert (r.status_code, r.json()["checks"]["redis"]) == (200, "ok")
                proxy.cut()
                r = await http.get("/ready")
                assert r.status_code == 503
                assert r.json()["checks"]["redis"].startswith("error: ")
                assert r.json()["checks"]["database"] == "ok"
                proxy.restore()
                with anyio.fail_after(10):
                    while (await http.get("/ready")).status_code != 200:
                        await anyio.sleep(0.05)
    finally:
        await proxy.close()


class RecordingHub:
    """Stands in for the cable hub: notes what /ready said when it was asked to drain."""

    def __init__(self, health: Health) -> None:
        self.health = health
        self.ready_when_drained: list[tuple[bool, dict[str, Any]]] = []

    async def drain(self) -> None:
        self.ready_when_drained.append(await self.health.ready())


async def test_drain_turns_unready_before_the_websockets_move(env: Env) -> None:
    health: Health = env.app.state.health
    hub = RecordingHub(health)
    started = time.monotonic()
    await health.drain(hub, delay=0.2)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.2
    [(ready, body)] = hub.ready_when_drained
    assert not ready and body["checks"]["draining"] is True and body["status"] == "unavailable"
    r = await env.client.get("/ready")
    assert r.status_code == 503 and r.json()["checks"]["draining"] is True
    assert (await env.client.get("/health")).status_code == 200
    await health.drain(hub, delay=5.0)  # again (the lifespan after the server): no second wait
    assert time.monotonic() - started < 3.0


@pytest.mark.slow
async def test_sigterm_turns_ready_503_before_server_restart(tmp_path: Path) -> None:
    """A real server with INBOXGATE_DRAIN_SECONDS=2: after SIGTERM, /ready answers 503 (and
    /health 200) while the websocket is still open and has heard nothing; only then does it
    get ``server_restart``. The cable metrics saw the connection and its subscription."""
    with gateway_server(tmp_path, INBOXGATE_DRAIN_SECONDS="2") as server:
        tenant = Tenant.create(server)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as http:
            customer = await tenant.customer(http)
            async with CableClient.connect(server.ws_url(), protocol=cp.EXT_JSON) as cable:
                await cable.expect(cp.Welcome)
                await subscribe_ok(cable, customer.ident())
                text = (await http.get("/metrics")).text
                assert "\ninboxgate_cable_connections 1.0\n" in text
                assert "\ninboxgate_cable_subscriptions 1.0\n" in text
                assert 'inboxgate_cable_subscribe_requests_total{outcome="confirmed"} 1.0' in text
                assert "\ninboxgate_cable_frames_sent_total 0.0\n" not in text

                times: dict[str, float] = {}

                async def watch_ready() -> None:
                    while True:
                        r = await http.get("/ready")
                        if r.status_code == 503:
                            times["ready_503"] = time.monotonic()
                            assert r.json()["checks"]["draining"] is True
                            assert (await http.get("/health")).status_code == 200
                            return
                        await anyio.sleep(0.02)

                async def hear_restart() -> None:
                    bye = await expect_disconnect(cable, timeout=15)
                    times["server_restart"] = time.monotonic()
                    assert (bye.reason, bye.reconnect) == ("server_restart", True)

                os.kill(server.pid, signal.SIGTERM)
                sent = time.monotonic()
                with anyio.fail_after(20):
                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(watch_ready)
                        tasks.start_soon(hear_restart)
        assert times["ready_503"] < times["server_restart"]
        assert times["server_restart"] - sent >= 1.5  # the drain delay came first
        assert server.proc is not None
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert server.proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.log()
