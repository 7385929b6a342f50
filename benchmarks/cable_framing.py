"""Websocket layers for /cable's lean transport, side by side: memory kept per connection, the
cost of one client frame, the cost of the handshake.

* ``websockets``: its sans-I/O ``ServerProtocol`` (what uvicorn's ``websockets-sansio`` uses);
* ``picows``: its Cython ``WSProtocol`` fed the same bytes (measured only when installed:
  ``pip install picows``; it is not a dependency);
* ``own``: :mod:`gateway.realtime.core.websocket` (``FrameReader`` + the 101 built from the headers
  uvicorn already parsed).

Server frames are not compared: the lean transport frames each broadcast once for every socket
with a precomputed header, whichever layer reads.

    python -m benchmarks.cable_framing [--connections 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import logging
import os
import struct
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from websockets.server import ServerProtocol

from gateway.realtime.core import websocket as ws

SUBSCRIBE = (
    b'{"command":"subscribe","identifier":"{\\"channel\\":\\"RoomChannel\\",'
    b'\\"pubsub_token\\":\\"Hq3LbK8pRkZ4nXwQ2v9Tj7Ue\\"}"}'
)


def request() -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /cable HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-key: " + key + b"\r\nsec-websocket-version: 13\r\n"
        b"sec-websocket-protocol: actioncable-v1-json\r\n\r\n"
    )


def client_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + body


FRAME = client_frame(SUBSCRIBE)


# ---- the candidates: (open one connection, feed one frame) ----------------------------------


def websockets_open(raw: bytes) -> Any:
    conn = ServerProtocol(max_size=1 << 20, logger=logging.getLogger("bench"))
    conn.receive_data(raw)
    conn.send_response(conn.accept(conn.events_received()[0]))  # type: ignore[arg-type]
    conn.data_to_send()
    return conn


def websockets_feed(conn: Any, data: bytes) -> None:
    conn.receive_data(data)
    conn.events_received()


def own_open(raw: bytes) -> Any:
    headers = dict(line.split(b": ", 1) for line in raw.split(b"\r\n")[1:] if line)
    key = headers[b"sec-websocket-key"].decode()
    assert ws.valid_key(key)
    ws.switching_protocols(key, "actioncable-v1-json")
    return ws.FrameReader(1 << 20)


def own_feed(reader: Any, data: bytes) -> None:
    reader.feed(data)


def picows_candidate() -> tuple[Callable[[bytes], Any], Callable[[Any, bytes], None]] | None:
    try:
        from picows import picows  # type: ignore[import-not-found]
    except ImportError:
        return None

    class Sock:
        family = 2

        def setsockopt(self, *args: Any) -> None:
            pass

        def getsockopt(self, *args: Any) -> int:
            return 0

        def fileno(self) -> int:
            return 7

    class Transport(asyncio.Transport):
        def write(self, data: Any) -> None:
            pass

        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return False

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            if name == "socket":
                return Sock()
            return ("127.0.0.1", 1) if name in ("peername", "sockname") else default

    class Listener(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            frame.get_payload_as_bytes()

    def factory(upgrade: Any) -> Any:
        response = picows.WSUpgradeResponse.create_101_response(
            extra_headers={"Sec-WebSocket-Protocol": "actioncable-v1-json"}
        )
        return picows.WSUpgradeResponseWithListener(response, Listener())

    logger = logging.LoggerAdapter(logging.getLogger("bench"), {})

    def feed(proto: Any, data: bytes) -> None:
        buf = proto.get_buffer(len(data))
        buf[: len(data)] = data
        proto.buffer_updated(len(data))

    def open_(raw: bytes) -> Any:
        proto = picows.WSProtocol(
            None, "/cable", False, factory, logger, True, 5, False, 10, 10,
            picows.WSAutoPingStrategy.PING_WHEN_IDLE, True, 1 << 20, None, 2048,
        )  # fmt: skip
        proto.connection_made(Transport())
        feed(proto, raw)
        return proto

    return open_, feed


def measure(
    name: str, open_: Callable[[bytes], Any], feed: Callable[[Any, bytes], None], n: int
) -> dict[str, float]:
    raws = [request() for _ in range(n)]
    gc.collect()
    tracemalloc.start()
    kept = []
    for raw in raws:
        conn = open_(raw)
        feed(conn, FRAME)
        kept.append(conn)
    gc.collect()
    memory = tracemalloc.get_traced_memory()[0] / n
    tracemalloc.stop()
    conn = kept[0]
    rounds = 20_000
    t = time.perf_counter()
    for _ in range(rounds):
        feed(conn, FRAME)
    frame_us = (time.perf_counter() - t) / rounds * 1e6
    t = time.perf_counter()
    for raw in raws[:2000]:
        open_(raw)
    open_us = (time.perf_counter() - t) / min(n, 2000) * 1e6
    print(
        f"| {name} | {memory:.0f} | {frame_us:.2f} | {open_us:.1f} |",
        flush=True,
    )
    return {"bytes_per_conn": memory, "frame_us": frame_us, "open_us": open_us}


async def main(n: int) -> None:
    print(f"{n} connections, one {len(FRAME)}-byte subscribe frame each")
    print("| layer | bytes kept per connection | µs per client frame | µs per handshake |")
    print("|---|---:|---:|---:|")
    measure("websockets ServerProtocol", websockets_open, websockets_feed, n)
    picows_pair = picows_candidate()
    if picows_pair is None:
        print("| picows | not installed | | |")
    else:
        measure("picows WSProtocol", *picows_pair, n)
    measure("own (gateway.realtime.core.websocket)", own_open, own_feed, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    asyncio.run(main(parser.parse_args().connections))
