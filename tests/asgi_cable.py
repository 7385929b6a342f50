"""An in-process /cable socket: the server side of an ASGI websocket driven by a test, against
the real app's hub and store (no uvicorn, no network)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from client_sdk import cable_protocol as cp
from gateway.realtime.endpoint import CableEndpoint
from tests.routes_helpers import Env


class FakeSocket:
    """The server side of an ASGI websocket. ``frames()`` yields decoded server frames;
    ``blocked`` (an Event) makes every send after the welcome wait, like a full TCP buffer."""

    def __init__(self, protocol: str = cp.EXT_JSON, query: bytes = b"") -> None:
        self.encoding = cp.SUBPROTOCOLS[protocol].encoding
        self.scope = {
            "type": "websocket",
            "path": "/cable",
            "headers": [(b"sec-websocket-protocol", protocol.encode())],
            "query_string": query,
        }
        self._in_send, self._in_recv = anyio.create_memory_object_stream[dict[str, Any]](100)
        self._out_send, self._out_recv = anyio.create_memory_object_stream[dict[str, Any]](math.inf)
        self.gate: anyio.Event | None = None
        self.sent = 0

    async def receive(self) -> dict[str, Any]:
        return await self._in_recv.receive()

    async def send(self, message: dict[str, Any]) -> None:
        if self.gate is not None and message["type"] == "websocket.send":
            await self.gate.wait()
        self.sent += 1
        await self._out_send.send(message)
        if message["type"] == "websocket.close":  # as uvicorn does once the close is sent
            await self._in_send.send({"type": "websocket.disconnect", "code": message["code"]})

    async def client_send(self, command: cp.ClientCommand) -> None:
        frame = cp.encode(command, self.encoding)
        key = "text" if isinstance(frame, str) else "bytes"
        await self._in_send.send({"type": "websocket.receive", key: frame})

    async def next(
        self, timeout: float = 5.0, *, skip_pings: bool = True
    ) -> cp.ServerFrame | dict[str, Any]:
        """The next frame (pings skipped), or the raw ASGI message for accept and close."""
        with anyio.fail_after(timeout):
            while True:
                message = await self._out_recv.receive()
                if message["type"] != "websocket.send":
                    return message
                frame = cp.decode_frame(message.get("text") or message["bytes"], self.encoding)
                if not (skip_pings and isinstance(frame, cp.Ping)):
                    return frame

    def close(self) -> None:
        for stream in (self._in_send, self._in_recv, self._out_send, self._out_recv):
            stream.close()


@asynccontextmanager
async def connected(env: Env, socket: FakeSocket) -> AsyncIterator[FakeSocket]:
    endpoint = CableEndpoint(env.app.state.realtime.hub)
    async with anyio.create_task_group() as tasks:
        await socket._in_send.send({"type": "websocket.connect"})
        tasks.start_soon(endpoint, socket.scope, socket.receive, socket.send)
        assert (await socket.next())["type"] == "websocket.accept"  # type: ignore[index]
        assert isinstance(await socket.next(), cp.Welcome)
        try:
            yield socket
        finally:
            tasks.cancel_scope.cancel()
            socket.close()
