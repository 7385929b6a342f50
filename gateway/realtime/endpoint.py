"""The way into ``/cable`` (reference §6.1), one for every server and every test.

:class:`CableFirst` is the gateway's ASGI app: a ``/cable`` websocket goes straight to
:class:`CableEndpoint` (handshake and subprotocol, then the connection's shell takes over),
everything else through the middleware stack and the router. Under uvicorn the lean transport
finds the endpoint on the app (``cable``) and serves the upgrade itself, in place of the ASGI
path. A plain HTTP request for ``/cable`` gets Rails' 404 "Page not found" from the router.
"""

from __future__ import annotations

from inspect import iscoroutinefunction
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from client_sdk import cable_protocol as cp

from ..edge import Edge
from ..http import error_response
from ..metrics import CABLE_CONNECTS as CONNECTS
from ..ratelimit import IpLimit
from .asgi_connection import AsgiConnection
from .core import CableSession, restore_sid
from .hub import Hub


class CableEndpoint:
    """An ASGI app for ``/cable``. ``upgrades`` limits the websocket upgrades of one client IP:
    one too many is answered ``429`` with ``Retry-After`` instead of the upgrade."""

    def __init__(self, hub: Hub, upgrades: IpLimit | None = None) -> None:
        self.hub = hub
        self.upgrades = upgrades

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await PlainTextResponse("Page not found", status_code=404)(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        offered = cp.parse_offered(
            v.decode("latin-1") for k, v in headers if k == b"sec-websocket-protocol"
        )
        protocol = cp.select_subprotocol(offered)
        first = await receive()
        if first["type"] != "websocket.connect":
            return
        refused = await self.upgrades.check(scope) if self.upgrades else None
        if refused is not None:
            if "websocket.http.response" in scope.get("extensions", {}):
                await error_response(refused)(scope, receive, send)
            else:  # a server without the denial extension: its plain 403
                await send({"type": "websocket.close", "code": 1008})
            return
        if protocol is None or not self.hub.accepting:
            # A client that offered only protocols we do not speak would abort on any answer
            # without one of them; refusing the handshake (403) says so at once.
            await send({"type": "websocket.close", "code": 1002})
            return
        await send({"type": "websocket.accept", "subprotocol": protocol.name})
        CONNECTS.inc()
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        header_sid = next(
            (v.decode("latin-1") for k, v in headers if k == b"x-anycable-restore-sid"), None
        )
        sid = restore_sid((query.get("sid") or [None])[0], header_sid)
        hub = self.hub
        session = CableSession(
            protocol, stream_ids=hub.stream_ids, now=hub.clock(), limits=hub.limits
        )
        await AsgiConnection(hub, send).serve(session, receive, sid)


class CableFirst(Starlette):
    """The gateway's app: ``/cable`` websockets to ``cable``, HTTP straight to the edge,
    everything else to Starlette.

    A websocket lives for hours, and every ASGI layer it passed through keeps a suspended frame
    for that long: the middleware stack and router cost about a third of an idle connection's
    memory, for nothing (none of them applies to /cable). An HTTP request skips Starlette's
    server-error layer, whose only work is to wrap ``send`` to learn whether an answer began
    before an unexpected error: the edge knows that already, and answers such an error with
    the same handler (:meth:`_http_entry`).
    """

    def __init__(self, cable: CableEndpoint, **options: Any) -> None:
        super().__init__(**options)
        self.cable = cable
        self._http: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            scope["app"] = self
            http = self._http or self._http_entry()
            await http(scope, receive, send)
        elif kind == "websocket" and scope.get("path") == "/cable":
            await self.cable(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def _http_entry(self) -> ASGIApp:
        """The edge, given the server-error layer's 500 handler, when the stack is that layer
        over the edge (the app's own); else the whole stack, as Starlette runs it."""
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        stack = self.middleware_stack
        entry: ASGIApp = stack
        if isinstance(stack, ServerErrorMiddleware) and isinstance(stack.app, Edge):
            handler: Any = stack.handler  # the app's handler of Exception: (request, exc)
            if not stack.debug and handler is not None and iscoroutinefunction(handler):

                async def unexpected(
                    scope: Scope, receive: Receive, send: Send, exc: Exception
                ) -> None:
                    response = await handler(Request(scope), exc)
                    await response(scope, receive, send)

                stack.app.unexpected = unexpected
                entry = stack.app
        self._http = entry
        return entry
