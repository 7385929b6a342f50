"""A /cable socket under uvicorn's websocket protocol, through ASGI (``INBOXGATE_CABLE_TRANSPORT
=asgi``, the fallback for one release): two tasks per socket, the reader (frames in, intents
answered one at a time, in order) and the writer (frames out of a bounded queue).
"""

from __future__ import annotations

from collections import deque

import anyio
from starlette.types import Receive, Send

from client_sdk.cable_protocol import WireFrame

from .. import metrics
from .connection import Connection
from .core import CableSession, Close, EncodedEvent
from .hub import Hub


class AsgiConnection(Connection):
    __slots__ = ("_out", "_out_bytes", "_scope", "_send", "_wake")

    def __init__(self, hub: Hub, send: Send) -> None:
        super().__init__(hub)
        self._send = send
        self._out: deque[WireFrame | Close] = deque()
        self._out_bytes = 0
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None

    async def serve(self, session: CableSession, receive: Receive, restore: str | None) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                self._scope = tasks.cancel_scope
                tasks.start_soon(self._writer)
                await self.open(session, restore)
                if session.closed:
                    return  # sent back at once: the writer ends after the close
                await self._read(receive)
                tasks.cancel_scope.cancel()
        finally:
            self.closed()

    async def _read(self, receive: Receive) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive":
                continue
            frame: WireFrame | None = message.get("text")
            if frame is None:
                frame = message.get("bytes")
            if frame is None or self.session.closed:
                continue
            await self._run(self.session.receive(frame, self.hub.clock()))

    async def _writer(self) -> None:
        send = self._send
        # Counted per burst, not per frame: the metrics cost nothing per frame of a fan-out.
        frames = size = 0
        try:
            while True:
                while not self._out:
                    if frames:
                        _count_sent(frames, size)
                        frames = size = 0
                    self._wake = anyio.Event()
                    await self._wake.wait()
                item = self._out.popleft()
                if isinstance(item, Close):
                    self._out_bytes = 0
                    await send(
                        {"type": "websocket.close", "code": item.code, "reason": item.reason}
                    )
                    return
                self._out_bytes -= len(item)
                if isinstance(item, str):
                    await send({"type": "websocket.send", "text": item})
                else:
                    await send({"type": "websocket.send", "bytes": item})
                frames += 1
                size += len(item)
        finally:
            if frames:
                _count_sent(frames, size)

    def abort(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _drop_pending(self) -> None:
        self._out.clear()
        self._out_bytes = 0

    def _emit(self, event: EncodedEvent) -> None:
        for frame in self.session.deliver(event):
            if self.session.closed:
                return
            self._out_bytes += len(frame)
            if self._out_bytes > self.hub.send_buffer_bytes:
                self.too_slow()
                return
            self._out.append(frame)
            self._wake.set()

    def _push_control(self, item: WireFrame | Close) -> None:
        self._out.append(item)
        if not isinstance(item, Close):
            self._out_bytes += len(item)
        self._wake.set()


def _count_sent(frames: int, size: int) -> None:
    metrics.CABLE_FRAMES.inc(frames)
    metrics.CABLE_BYTES.inc(size)
