"""A small HTTP/1.1 keep-alive load generator: the fallback when ``wrk`` is not installed.

Raw asyncio sockets on uvloop, one request in flight per connection (as wrk), requests built
from pre-encoded heads (a POST only formats its unique ``echo_id`` into a pre-built template), so
a request costs the client a few microseconds. It runs in its own process and prints one JSON
line with the same figures the wrk script prints::

    python -m benchmarks.loadgen --port 8000 --connections 32 --duration 5 \\
        --method POST --paths-file paths.json --tag run1

:class:`HttpConnection` is also the chat workload's posting client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends pre-encoded bytes and waits for the
    whole response: ``(status, body)``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.need = -1  # body bytes still expected, -1: reading the head
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, HOST, port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        if self.closed.done():  # the server closed it while it was idle
            self.waiter.set_exception(ConnectionError("connection closed by the server"))
            return self.waiter
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            self.status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    raise ConnectionError("a chunked response: this client reads Content-Length")
            self.need = length
        if len(self.buf) >= self.need:
            body = bytes(self.buf[: self.need])
            del self.buf[: self.need]
            self.need = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result((self.status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def json_post(path: str, port: int, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Posters:
    """Up to ``size`` keep-alive connections (:class:`HttpConnection`, raw bytes on uvloop),
    one request in flight on each, for benchmarks that time a POST to what it causes. An HTTP
    client library would cost the client about a millisecond per POST, inside every latency
    measured (httpx did: the bare broadcast server's POST-to-socket p50 was 1.5 ms with it,
    0.5 ms without)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.size = size
        self.idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        self.all: list[HttpConnection] = []
        self.retried = 0

    async def post(self, data: bytes) -> tuple[int, bytes]:
        if self.idle.empty() and len(self.all) < self.size:
            conn = await HttpConnection.open(self.port)
            self.all.append(conn)
        else:
            conn = await self.idle.get()
        try:
            return await conn.request(data)
        except ConnectionError:
            # A keep-alive connection the server closed as it was reused: sent again on a new
            # one, as a client would (the same echo_id: the gateway answers the original).
            self.all.remove(conn)
            conn = await HttpConnection.open(self.port)
            self.all.append(conn)
            self.retried += 1
            return await conn.request(data)
        finally:
            self.idle.put_nowait(conn)

    def close(self) -> None:
        for conn in self.all:
            conn.close()


def get_request(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()


def post_template(path: str, port: int) -> tuple[bytes, bytes, bytes]:
    """(head up to the Content-Length value, body before the echo id, body after it)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    return head, b'{"content":"bench message ', b'"}'


def post_request(template: tuple[bytes, bytes, bytes], echo: str) -> bytes:
    head, before, after = template
    e = echo.encode()
    body = before + e + b'","echo_id":"' + e + after
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


def pct(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    return ordered[max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5))) - 1]


async def closed_loop(
    port: int, make: Callable[[int], bytes], connections: int, duration: float
) -> dict[str, Any]:
    """``connections`` connections, each sending its next request when the last is answered,
    for ``duration`` seconds: what ``wrk -c N -d S`` measures."""
    conns = [await HttpConnection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop = time.perf_counter() + duration

    async def worker(conn: HttpConnection) -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop:
            counter += 1
            data = make(counter)
            t0 = time.perf_counter()
            status, _ = await conn.request(data)
            latencies.append(time.perf_counter() - t0)
            if status >= 400:
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--method", choices=["GET", "POST"], default="GET")
    parser.add_argument("--path", help="the GET path")
    parser.add_argument("--paths-file", help="POST: a JSON list of paths, used in turn")
    parser.add_argument("--tag", default="lg", help="POST: echo_id prefix, unique per run")
    args = parser.parse_args()
    make: Callable[[int], bytes]
    if args.method == "GET":
        request = get_request(args.path, args.port)

        def make(_: int) -> bytes:
            return request
    else:
        with open(args.paths_file, encoding="utf-8") as f:
            templates = [post_template(path, args.port) for path in json.load(f)]

        def make(n: int) -> bytes:
            return post_request(templates[n % len(templates)], f"{args.tag}-{n}")

    import uvloop

    result = uvloop.run(closed_loop(args.port, make, args.connections, args.duration))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
