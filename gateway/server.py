"""Running the gateway under uvicorn, with a shutdown that says goodbye on /cable first.

uvicorn's own shutdown closes every websocket with code 1012 before the app hears of it, so a
client would never get Action Cable's ``{"type":"disconnect","reason":"server_restart",
"reconnect":true}``. :class:`GatewayServer` drains the cable hub first.
"""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

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
    def __init__(self, config: uvicorn.Config, realtime: Realtime) -> None:
        super().__init__(config)
        self.realtime = realtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.realtime.hub.drain()
        await super().shutdown(sockets)


def run(settings: Settings, host: str, port: int) -> None:
    app = CableFirst(create_app(settings))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_SIZE,
        ws_per_message_deflate=False,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    GatewayServer(config, app.realtime).run()
