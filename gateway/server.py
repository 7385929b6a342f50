"""Running the gateway under uvicorn, with a shutdown that says goodbye on /cable first.

uvicorn's own shutdown closes every websocket with code 1012 before the app hears of it, so a
client would never get Action Cable's ``{"type":"disconnect","reason":"server_restart",
"reconnect":true}``. :class:`GatewayServer` drains the cable hub first, in the single process
and in every worker of ``--workers N`` (uvicorn's supervisor, with :class:`WorkerProcess`).
"""

from __future__ import annotations

import gc
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess, multiprocess

from .app import create_app
from .connections import ConnectionGuard, GuardedHttpProtocol, connection_cap
from .logs import logging_config
from .realtime.endpoint import CableFirst
from .realtime.lean import LeanConnection
from .settings import Settings

# The collector's young generation: CPython's 700 allocations promote the objects of every
# request and fan-out still in flight to the older generations, and enough of them there start
# a full collection, which visits every live object: at 10,000 sockets that held the loop for
# 60-150 ms (the chat workload's p99). Collected at 20,000, most of them have died by their
# reference count first; a young collection of that many still takes about a millisecond.
GC_YOUNG = 20_000

# How long a thread holding the GIL may keep it while another waits (CPython: 5 ms). The event
# loop shares it with the SQLite writer and reader threads; at 5 ms a loop woken by a commit or
# needing it for a 20 µs point read could wait a whole interval behind a thread's SQL work.
GIL_SWITCH_SECONDS = 0.0005

# Frames above the cable limit (64 KiB) get a clear protocol error from the session; only
# absurd ones are cut by the websocket layer itself.
WS_MAX_SIZE = 1 << 20


class GatewayServer(uvicorn.Server):
    """uvicorn's server: on shutdown ``/ready`` turns 503 for the drain delay, then every
    /cable client is told ``server_restart``, then uvicorn stops.

    ``app`` is None in a worker process: there the app is built by :func:`worker_app` only
    once the server loads it, and found then.
    """

    def __init__(
        self, config: uvicorn.Config, app: CableFirst | None = None, drain_seconds: float = 0
    ) -> None:
        super().__init__(config)
        self.app = app
        self.drain_seconds = drain_seconds

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            settle_garbage_collector()
            app = self.app or _worker_app
            if app is not None:
                settle_sockets(app)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.app or _worker_app
        if app is not None:
            # Still listening: /ready answers 503 for the drain delay, then the websockets move.
            await app.state.health.drain(app.state.realtime.hub, self.drain_seconds)
        await super().shutdown(sockets)


def settle_garbage_collector() -> None:
    """Once the app has started: what it built to run (modules, routes, encoders, caches) lives
    as long as the process, so it moves out of the collector's reach (``gc.freeze``) and no
    full collection visits it again; then young collections run less often (``GC_YOUNG``), and
    a thread hands the GIL over within ``GIL_SWITCH_SECONDS`` (measured: 15% less server CPU
    per fan-out frame, 13% less per socket opened, in three A/B pairs of the fan-out benchmark)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, middle, old)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


def settle_sockets(app: CableFirst) -> None:
    """The sockets opened since startup leave the collector's reach too, a thousand at a time
    (the hub's ``SETTLE_AFTER_OPENS``): they live for hours, and every older-generation
    collection would rescan them."""
    app.state.realtime.hub.settle = freeze_survivors


def freeze_survivors() -> None:
    """Collect, then freeze what survived. The collection visits only what was made since the
    last freeze (a few milliseconds for a thousand sockets), and no cyclic garbage of the
    moment (a request's, say) is frozen with the survivors, where it would never be freed."""
    gc.collect()
    gc.freeze()


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
    app = create_app(settings)
    config = GatewayConfig(app, settings, host=host, port=port)
    GatewayServer(config, app, settings.drain_seconds).run()


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
# The realtime core of this worker process's app, for its GatewayServer's shutdown.
_worker_app: CableFirst | None = None


def worker_app() -> CableFirst:
    """The app of one worker process (uvicorn's factory)."""
    global _worker_app
    _worker_app = create_app(_worker_settings or Settings.from_env())
    return _worker_app


class WorkerProcess(multiprocess.Process):
    """One worker of uvicorn's supervisor, running a :class:`GatewayServer` instead of a plain
    uvicorn server, so a SIGTERM to the supervisor reaches every worker's /cable clients as
    ``server_restart`` rather than a bare close 1012."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            drain = getattr(self.config, "settings", None)
            self._server = GatewayServer(
                self.config, drain_seconds=drain.drain_seconds if drain is not None else 0
            )
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
