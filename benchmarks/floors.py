"""Floors: servers that do as little as a server can, to measure the gateway against.

* :func:`app` - the HTTP floor: raw ASGI, no framework, no database. It reads the request body
  and answers with the bytes the gateway answered to the same request (captured once before the
  run and handed over in the file named by ``BENCH_FLOOR_RESPONSES``: ``{"METHOD PATH": body}``,
  ``"POST *"`` for every POST). What is left is the cost of the HTTP server and the ASGI hop.
  Served by uvicorn with the options ``inboxgate serve`` uses, or by granian::

      python -m benchmarks.floors http --port 8002
      granian --interface asgi --loop uvloop benchmarks.floors:app

* :class:`RawCable` - the memory floor for an idle websocket: a plain asyncio (uvloop) Protocol
  per connection, no ASGI server, that completes the websocket handshake, sends Action Cable's
  welcome and confirms one subscription. What one subscribed socket costs it is what an event
  loop, a transport and a few buffers cost::

      python -m benchmarks.floors raw-cable --port 8003
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

RESPONSES_ENV = "BENCH_FLOOR_RESPONSES"
DEFAULT_BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json; charset=utf-8")]


def _load_responses() -> dict[str, bytes]:
    path = os.environ.get(RESPONSES_ENV)
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return {key: body.encode() for key, body in json.load(f).items()}


RESPONSES = _load_responses()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        more = True
        while more:  # the body is read, as any handler must, and not looked at
            message = await receive()
            more = message.get("more_body", False)
        method = scope["method"]
        body = RESPONSES.get(f"{method} {scope['path']}") or RESPONSES.get(f"{method} *")
        body = body or DEFAULT_BODY
        headers = [*HEADERS, (b"content-length", b"%d" % len(body))]  # as the gateway: no chunks
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def serve_http(port: int) -> None:
    import uvicorn

    from gateway.server import CONFIG  # exactly the options ``inboxgate serve`` runs with

    uvicorn.run(app, host="127.0.0.1", port=port, **CONFIG, access_log=False, log_level="warning")


# --- the raw asyncio websocket floor --------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(text: bytes) -> bytes:
    n = len(text)
    if n < 126:
        return bytes([0x81, n]) + text
    if n < 65536:
        return bytes([0x81, 126]) + n.to_bytes(2, "big") + text
    return bytes([0x81, 127]) + n.to_bytes(8, "big") + text


class RawCable(asyncio.Protocol):
    """One connection: the upgrade, ``welcome``, then ``confirm_subscription`` per subscribe."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.identifier = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")[1:]
            del self.buf[: end + 4]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}
            key = headers.get("sec-websocket-key", "").encode()
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
            chosen = offered[0].encode() if offered and offered[0] else b""
            assert self.transport is not None
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                + (b"Sec-WebSocket-Protocol: " + chosen + b"\r\n" if chosen else b"")
                + b"\r\n" + server_frame(b'{"type":"welcome"}')
            )  # fmt: skip
            self.upgraded = True
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 6:
            length, offset = buf[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            end = offset + 4 + length
            if len(buf) < end:
                return
            mask = buf[offset : offset + 4]
            payload = bytes(b ^ mask[i & 3] for i, b in enumerate(buf[offset + 4 : end]))
            opcode = buf[0] & 0x0F
            del buf[:end]
            assert self.transport is not None
            if opcode == 0x8:
                self.transport.close()
                return
            if opcode == 0x1:
                command = json.loads(payload)
                if command.get("command") == "subscribe":
                    self.identifier = command.get("identifier", "")
                    confirm = {"identifier": self.identifier, "type": "confirm_subscription"}
                    self.transport.write(server_frame(json.dumps(confirm).encode()))


async def serve_raw_cable(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawCable, "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["http", "raw-cable"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.kind == "http":
        serve_http(args.port)
    else:
        import uvloop

        uvloop.run(serve_raw_cable(args.port))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
