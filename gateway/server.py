"""Running the gateway under uvicorn, with a shutdown that says goodbye on /cable first.

uvicorn's own shutdown closes every websocket with code 1012 before the app hears of it, so a
client would never get Action Cable's ``{"type":"disconnect","reason":"server_restart",
"reconnect":true}``. :class:`GatewayServer` drains the cable hub first, in the single process
and in every worker of ``--workers N`` (uvicorn's supervisor, with :class:`WorkerProcess`).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from uvicorn.supervisors import Multiprocess, multiprocess

from .app import create_app
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
        self.cable = CableEndpoint(self.realtime.hub)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope.get("path") == "/cable":
            await self.cable(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class GatewayServer(uvicorn.Server):
    """uvicorn's server, telling every /cable client ``server_restart`` before it stops.

    ``realtime`` is None in a worker process: there the app is built by :func:`worker_app`
    only once the server loads it, and found then.
    """

    def __init__(self, config: uvicorn.Config, realtime: Realtime | None = None) -> None:
        super().__init__(config)
        self.realtime = realtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        realtime = self.realtime or _worker_realtime
        if realtime is not None:
            await realtime.hub.drain()
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


def run(settings: Settings, host: str, port: int) -> None:
    app = CableFirst(create_app(settings))
    config = uvicorn.Config(app, host=host, port=port, **CONFIG)
    GatewayServer(config, app.realtime).run()


class WorkerConfig(uvicorn.Config):
    """Carries the parent's settings to every worker process (the config is what uvicorn hands
    to a spawned worker), so workers run with exactly what ``serve`` resolved."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        super().__init__(
            f"{__name__}:worker_app", factory=True, host=host, port=port, workers=workers,
            **CONFIG,
        )  # fmt: skip
        self.settings = settings

    def load(self) -> None:
        global _worker_settings
        _worker_settings = self.settings
        super().load()


_worker_settings: Settings | None = None
# The realtime core of this worker process's app, for its GatewayServer's shutdown.
_worker_realtime: Realtime | None = None


def worker_app() -> CableFirst:
    """The app of one worker process (uvicorn's factory)."""
    global _worker_realtime
    app = CableFirst(create_app(_worker_settings or Settings.from_env()))
    _worker_realtime = app.realtime
    return app


class WorkerProcess(multiprocess.Process):
    """One worker of uvicorn's supervisor, running a :class:`GatewayServer` instead of a plain
    uvicorn server, so a SIGTERM to the supervisor reaches every worker's /cable clients as
    ``server_restart`` rather than a bare close 1012."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GatewayServer(self.config)
        return self._server


def run_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Several processes on one port, sharing the database (PostgreSQL) and Redis.

    SIGTERM (or SIGINT) to this supervisor process is passed to every worker, each of which
    tells its websockets ``server_restart`` before it stops; the supervisor exits once they have.
    """
    config = WorkerConfig(settings, host, port, workers)
    sock = config.bind_socket()
    # The supervisor builds workers from its module's ``Process`` at every spawn site (start,
    # a dead worker's replacement, SIGHUP's restart, SIGTTIN); this process runs nothing else,
    # so point that name at ours for the supervisor's lifetime.
    plain = multiprocess.Process
    multiprocess.Process = WorkerProcess  # type: ignore[misc]
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = plain  # type: ignore[misc]
