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
from .connections import ConnectionGuard, GuardedHttpProtocol, connection_cap
from .health import Health
from .logs import logging_config
from .realtime import Realtime
from .realtime.lean import LeanConnection
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
        self.cable: CableEndpoint = app.state.cable

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
    # uvicorn's httptools protocol, with a deadline for request headers and a connection cap.
    http=GuardedHttpProtocol,
    timeout_graceful_shutdown=10,
)


def logging_options(settings: Settings) -> dict[str, Any]:
    """uvicorn logs through the gateway's formatter; its access log is off (the gateway's own,
    ``INBOXGATE_ACCESS_LOG``, says more for less)."""
    return {"log_config": logging_config(settings), "access_log": False}


def proxy_options(settings: Settings) -> dict[str, Any]:
    """X-Forwarded-For/-Proto are believed only from the configured proxies. uvicorn's own
    default believes any loopback peer (or its FORWARDED_ALLOW_IPS variable), which lets
    anything on the host pick the address it is rate-limited as."""
    trusted = list(settings.forwarded_allow_ips)
    if "*" in trusted:
        trusted = ["*"]  # uvicorn trusts everyone only for exactly "*"
    return dict(proxy_headers=bool(trusted), forwarded_allow_ips=trusted)


def transport_options(settings: Settings) -> dict[str, Any]:
    """/cable on the lean transport (``gateway.realtime.lean``: uvicorn hands it every
    websocket upgrade, and it passes any other path on to uvicorn's own protocol), or on
    uvicorn's websocket protocol and ASGI (``INBOXGATE_CABLE_TRANSPORT=asgi``)."""
    return {"ws": LeanConnection if settings.cable_transport == "lean" else CONFIG["ws"]}


class GatewayConfig(uvicorn.Config):
    """uvicorn's config for these settings. It is what uvicorn hands to a spawned worker, so
    the settings and the connection guard travel with it."""

    def __init__(self, app: Any, settings: Settings, **options: Any) -> None:
        super().__init__(
            app,
            **{**CONFIG, **transport_options(settings)},
            **proxy_options(settings),
            **logging_options(settings),
            **options,
        )
        self.settings = settings
        self.connection_guard = ConnectionGuard(
            connection_cap(settings.max_connections), settings.header_timeout
        )


def run(settings: Settings, host: str, port: int) -> None:
    app = CableFirst(create_app(settings))
    config = GatewayConfig(app, settings, host=host, port=port)
    GatewayServer(config, app.realtime, app.health, settings.drain_seconds).run()


class WorkerConfig(GatewayConfig):
    """Carries the parent's settings to every worker process, so workers run with exactly what
    ``serve`` resolved."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        super().__init__(
            f"{__name__}:worker_app", settings, factory=True, host=host, port=port,
            workers=workers,
        )  # fmt: skip

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
