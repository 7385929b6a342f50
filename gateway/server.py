"""Running the gateway under uvicorn, with a shutdown that says goodbye on /cable first.

uvicorn's own shutdown closes every websocket with code 1012 before the app hears of it, so a
client would never get Action Cable's ``{"type":"disconnect","reason":"server_restart",
"reconnect":true}``. :class:`GatewayServer` drains the cable hub first.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

from .app import create_app
from .health import Health
from .logs import logging_config
from .realtime import Realtime
from .routes.cable import CableEndpoint
from .settings import Settings

# Frames above the cable limit (64 KiB) get a clear protocol error from the session; only
# absurd ones are cut by the websocket layer itself.
WS_MAX_SIZE = 1 << 20


class CableFirst:
    """Hands ``/cable`` websockets straight to the cable endpoint, everything else to the app.

    A websocket lives for hours, and every ASGI layer it passed through keeps a suspended frame
    for that long: the Starlette middleware stack and router cost about a third of an idle
    connection's memory, for nothing (none of them applies to /cable).
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.realtime: Realtime = app.state.realtime
        self.health: Health = app.state.health
        self.cable = CableEndpoint(self.realtime.hub)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope.get("path") == "/cable":
            await self.cable(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class GatewayServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, realtime: Realtime, health: Health, drain_seconds: float = 0
    ) -> None:
        super().__init__(config)
        self.realtime = realtime
        self.health = health
        self.drain_seconds = drain_seconds

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Still listening: /ready answers 503 for the drain delay, then the websockets move.
        await self.health.drain(self.realtime.hub, self.drain_seconds)
        await super().shutdown(sockets)


# Shared by the single-process server and every worker.
CONFIG: dict[str, Any] = dict(
    ws="websockets-sansio",
    ws_max_size=WS_MAX_SIZE,
    ws_per_message_deflate=False,
    loop="uvloop",
    http="httptools",
    proxy_headers=True,
    timeout_graceful_shutdown=10,
)


def logging_options(settings: Settings) -> dict[str, Any]:
    """uvicorn logs through the gateway's formatter; its access log is off (the gateway's own,
    ``INBOXGATE_ACCESS_LOG``, says more for less)."""
    return {"log_config": logging_config(settings), "access_log": False}


def run(settings: Settings, host: str, port: int) -> None:
    app = CableFirst(create_app(settings))
    config = uvicorn.Config(app, host=host, port=port, **CONFIG, **logging_options(settings))
    GatewayServer(config, app.realtime, app.health, settings.drain_seconds).run()


class WorkerConfig(uvicorn.Config):
    """Carries the parent's settings to every worker process (the config is what uvicorn hands
    to a spawned worker), so workers run with exactly what ``serve`` resolved."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        super().__init__(
            f"{__name__}:worker_app", factory=True, host=host, port=port, workers=workers,
            **CONFIG, **logging_options(settings),
        )  # fmt: skip
        self.settings = settings

    def load(self) -> None:
        global _worker_settings
        _worker_settings = self.settings
        super().load()


_worker_settings: Settings | None = None


def worker_app() -> CableFirst:
    """The app of one worker process (uvicorn's factory)."""
    return CableFirst(create_app(_worker_settings or Settings.from_env()))


def run_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Several processes on one port, sharing the database (PostgreSQL) and Redis.

    uvicorn's supervisor runs a plain server per worker, so at shutdown its sockets are closed
    with 1012 (service restart) before the hub can say ``server_restart``; clients reconnect
    either way and resume from their offsets.
    """
    config = WorkerConfig(settings, host, port, workers)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()
