"""Floors: servers that do as little as a server can, to measure the gateway against.

* :func:`app` - the HTTP floor: raw ASGI, no framework, no database. It reads the request body
  and answers with the bytes the gateway answered to the same request (captured once before the
  run and handed over in the file named by ``BENCH_FLOOR_RESPONSES``: ``{"METHOD PATH": body}``,
  ``"POST *"`` for every POST). What is left is the cost of the HTTP server and the ASGI hop.
  Served by uvicorn with the options ``inboxgate serve`` uses, or by granian::

      python -m benchmarks.floors http --port 8002
      granian --interface asgi --loop uvloop benchmarks.floors:app

* :class:`RawCable` - the floor for ``/cable``: a plain asyncio (uvloop) Protocol per
  connection, no ASGI server, that completes the websocket handshake, sends Action Cable's
  welcome and confirms one subscription. What one subscribed socket costs it is what an event
  loop, a transport and a few buffers cost. It is also the pre-framed write loop, the fan-out
  floor: on the same port, a plain HTTP ``POST /publish`` (the bare broadcast server's body and
  frame) builds the frame once per subscription identifier and writes it to every subscribed
  socket with one ``transport.write`` each, and one timer pings every socket every 3 s with a
  frame built once per tick. No database, no broker, no log::

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
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .bare_broadcast import frame_prefix

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


# Subscribed connections -> the frame prefix of their subscription (the identifier echoed).
SUBSCRIBED: dict[RawCable, str] = {}
PING_INTERVAL = 3.0


class RawCable(asyncio.Protocol):
    """One connection: the upgrade, ``welcome``, then ``confirm_subscription`` per subscribe;
    or, without an upgrade, keep-alive HTTP requests (``/health``, ``/publish``)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.identifier = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        SUBSCRIBED.pop(self, None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            head = lines[1:]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}
            if headers.get("upgrade", "").lower() != "websocket":
                self._http(lines[0], headers, end + 4)
                return
            del self.buf[: end + 4]
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
                    SUBSCRIBED[self] = frame_prefix(self.identifier)

    def _http(self, request_line: str, headers: dict[str, str], head_end: int) -> None:
        """Keep-alive HTTP/1.1 requests with a ``Content-Length`` body, one after another."""
        length = int(headers.get("content-length", "0"))
        if len(self.buf) < head_end + length:
            return  # the rest of the body is on its way
        body = bytes(self.buf[head_end : head_end + length])
        del self.buf[: head_end + length]
        method, path = request_line.split(" ")[:2]
        status = b"200 OK"
        if method == "POST" and path == "/publish":
            answer = b'{"delivered":%d}' % publish(body)
        elif method == "GET" and path == "/health":
            answer = b'{"status":"ok"}'
        else:
            status, answer = b"404 Not Found", b'{"error":"not found"}'
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(answer) + answer
        )
        if self.buf:
            self.data_received(b"")


def publish(body: bytes) -> int:
    """The bare server's frame for ``body``, built once per subscription, written to every
    subscribed socket: one ``transport.write`` each."""
    data = json.dumps(json.loads(body), separators=(",", ":"))
    frames: dict[str, bytes] = {}
    delivered = 0
    for conn, prefix in SUBSCRIBED.items():
        frame = frames.get(prefix)
        if frame is None:
            frame = frames[prefix] = server_frame((prefix + data + "}}").encode())
        assert conn.transport is not None
        conn.transport.write(frame)
        delivered += 1
    return delivered


async def ping_forever() -> None:
    """Every socket pinged every ``PING_INTERVAL`` seconds, the frame built once per tick."""
    while True:
        await asyncio.sleep(PING_INTERVAL)
        frame = server_frame(b'{"type":"ping","message":%d}' % int(time.time()))
        for conn in list(SUBSCRIBED):
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.write(frame)


async def serve_raw_cable(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawCable, "127.0.0.1", port, backlog=2048)
    pinger = asyncio.create_task(ping_forever())
    try:
        async with server:
            await server.serve_forever()
    finally:
        pinger.cancel()


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
