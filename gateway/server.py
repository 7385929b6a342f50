"""Running the gateway under uvicorn, with a shutdown that says goodbye on /cable first.

uvicorn's own shutdown closes every websocket with code 1012 before the app hears of it, so a
client would never get Action Cable's ``{"type":"disconnect","reason":"server_restart",
"reconnect":true}``. :class:`GatewayServer` drains the cable hub first.
"""

from __future__ import annotations

import socket

import uvicorn

from .app import create_app
from .settings import Settings

# Frames above the cable limit (64 KiB) get a clear protocol error from the session; only
# absurd ones are cut by the websocket layer itself.
WS_MAX_SIZE = 1 << 20


class GatewayServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.loaded_app
        realtime = getattr(getattr(app, "state", None), "realtime", None)
        if realtime is None:  # wrapped by uvicorn's middleware: find the Starlette app
            inner = getattr(app, "app", None)
            realtime = getattr(getattr(inner, "state", None), "realtime", None)
        if realtime is not None:
            await realtime.hub.drain()
        await super().shutdown(sockets)


def run(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
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
    GatewayServer(config).run()
