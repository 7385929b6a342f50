"""The baseline for ``cable_fanout``: a bare websocket broadcast server, raw ASGI, no framework.

No Starlette, no database, no broker, no per-connection state machine: just enough Action Cable
for an ``actioncable-v1-json`` client to connect and subscribe, and a publish route.

* ``/cable`` (websocket): accepts (choosing ``actioncable-v1-json`` when offered), sends
  ``{"type":"welcome"}``, answers ``subscribe`` with ``confirm_subscription`` and remembers the
  socket's ``send`` with its identifier. One global task pings every connection every 3 s, as
  Action Cable servers do (clients call a connection stale after 6 s of silence).
* ``POST /publish``: the body is a JSON object; it is decoded and re-encoded once, then sent as
  ``{"identifier":...,"message":{"event":"message.created","data":BODY}}`` to every subscribed
  socket with the usual naive loop, one ``await send(...)`` per connection, in the request
  handler, which answers ``{"delivered":N}`` when the loop is done.
* ``GET /health``: 200.

Served by uvicorn with the options ``inboxgate serve`` uses (uvloop, httptools with the
gateway's connection guard, the websockets sans-I/O implementation, no per-message deflate, no
proxy headers)::

    python -m benchmarks.bare_broadcast --port 8001
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SUBPROTOCOL = "actioncable-v1-json"
PING_INTERVAL = 3.0

# socket id -> (send, the frame prefix for its subscription: the identifier echoed as sent)
subscribers: dict[int, tuple[Send, str]] = {}
everyone: dict[int, Send] = {}


def frame_prefix(identifier: str) -> str:
    """A broadcast frame's text up to its data: the data and ``}}`` follow (the raw asyncio
    floor and the benchmark's frame sizing use it too)."""
    echoed = json.dumps(identifier)
    return '{"identifier":' + echoed + ',"message":{"event":"message.created","data":'


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await cable(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)


async def lifespan(receive: Receive, send: Send) -> None:
    pinger: asyncio.Task[None] | None = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pinger = asyncio.create_task(ping_forever())
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if pinger is not None:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
            await send({"type": "lifespan.shutdown.complete"})
            return


async def ping_forever() -> None:
    while True:
        await asyncio.sleep(PING_INTERVAL)
        frame = json.dumps({"type": "ping", "message": int(time.time())}, separators=(",", ":"))
        for key, send in list(everyone.items()):
            try:
                await send({"type": "websocket.send", "text": frame})
            except OSError:  # uvicorn's ClientDisconnected
                everyone.pop(key, None)


async def cable(scope: Scope, receive: Receive, send: Send) -> None:
    key = id(send)
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.connect":
                offered = scope.get("subprotocols") or []
                chosen = SUBPROTOCOL if SUBPROTOCOL in offered else None
                await send({"type": "websocket.accept", "subprotocol": chosen})
                await send({"type": "websocket.send", "text": '{"type":"welcome"}'})
                everyone[key] = send
            elif kind == "websocket.receive":
                command = json.loads(message.get("text") or message.get("bytes") or b"{}")
                identifier = command.get("identifier", "")
                if command.get("command") == "subscribe":
                    subscribers[key] = (send, frame_prefix(identifier))
                    echoed = json.dumps(identifier)
                    await send(
                        {
                            "type": "websocket.send",
                            "text": '{"identifier":' + echoed + ',"type":"confirm_subscription"}',
                        }
                    )
                elif command.get("command") == "unsubscribe":
                    subscribers.pop(key, None)
            elif kind == "websocket.disconnect":
                return
    finally:
        subscribers.pop(key, None)
        everyone.pop(key, None)


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "GET" and scope["path"] == "/health":
        await respond(send, 200, b'{"status":"ok"}')
    elif scope["method"] == "POST" and scope["path"] == "/publish":
        data = json.dumps(json.loads(body), separators=(",", ":"))
        delivered = 0
        for key, (ws_send, prefix) in list(subscribers.items()):
            try:
                await ws_send({"type": "websocket.send", "text": prefix + data + "}}"})
                delivered += 1
            except OSError:  # uvicorn's ClientDisconnected
                subscribers.pop(key, None)
        await respond(send, 200, b'{"delivered":%d}' % delivered)
    else:
        await respond(send, 404, b'{"error":"not found"}')


async def respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    import uvicorn

    from gateway.connections import GuardedHttpProtocol

    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        loop="uvloop",
        http=GuardedHttpProtocol,
        proxy_headers=False,
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
