"""Idle, slow and surplus connections (gateway.connections) against a real ``inboxgate serve``.

A socket that never sends a request, or sends its headers a byte at a time (slowloris), is
closed ``INBOXGATE_HEADER_TIMEOUT`` after it opened while everybody else is served; past
``INBOXGATE_MAX_CONNECTIONS`` a new connection is answered ``503`` with ``Retry-After``, and
the log says so once when the cap is reached and once when the process is back under it.
Short settings keep each test to a few seconds; every socket is on loopback and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from gateway.connections import ConnectionGuard, GuardedHttpProtocol, connection_cap
from tests.server_helpers import HOST, GatewayProcess, free_port, gateway_server

TIMEOUT = 1.0
# How long past its deadline a connection may take to be closed before the test fails.
SLACK = 4.0


@contextlib.contextmanager
def sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection((HOST, port), timeout=5) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def read_until_closed(sock: socket.socket, within: float) -> bytes:
    """Everything the server sends before it closes; fails (socket timeout) if it holds on."""
    sock.settimeout(within)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def read_response(sock: socket.socket) -> bytes:
    """One /health response on a kept-alive connection."""
    data = b""
    while not data.endswith(b'{"status":"ok"}'):
        data += sock.recv(4096)
    return data


class Trickle(threading.Thread):
    """Sends one header line every 0.2 s (slowloris) until the server hangs up, at most 50."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.sent = 0

    def run(self) -> None:
        for _ in range(50):
            try:
                self.sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return  # the server closed it
            self.sent += 1
            time.sleep(0.2)


def test_idle_and_slow_connections_are_closed_while_others_are_served(tmp_path: Path) -> None:
    with gateway_server(tmp_path, INBOXGATE_HEADER_TIMEOUT=str(TIMEOUT)) as server:
        opened = time.monotonic()
        with sockets(server.port, 20) as idle, sockets(server.port, 2) as (slow, kept_alive):
            slow.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
            # a keep-alive connection whose *second* request trickles in
            kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert read_response(kept_alive).startswith(b"HTTP/1.1 200 ")
            kept_alive.sendall(b"GET /health HTTP/1.1\r\n")
            trickles = [Trickle(slow), Trickle(kept_alive)]
            for trickle in trickles:
                trickle.start()
            with ws_connect(server.ws_url(), open_timeout=5) as cable:
                cable.recv(timeout=5)  # welcome
                # everybody else is served while those sockets hang
                assert httpx.get(server.url("/health"), timeout=5).status_code == 200

                for sock in idle:
                    assert read_until_closed(sock, TIMEOUT + SLACK) == b""  # closed, silently
                assert time.monotonic() - opened >= TIMEOUT * 0.9
                for sock, trickle in zip((slow, kept_alive), trickles, strict=True):
                    answer = read_until_closed(sock, TIMEOUT + SLACK)
                    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
                    assert b'"error":"Request Timeout"' in answer
                    trickle.join(timeout=15)
                    assert trickle.sent >= 3  # it kept sending, and was closed all the same
                assert time.monotonic() - opened < TIMEOUT + SLACK

                # a websocket is past its headers: it stays open however long it idles
                assert cable.ping().wait(timeout=5)
                assert httpx.get(server.url("/health"), timeout=5).status_code == 200


def test_a_busy_kept_alive_connection_gets_each_requests_own_deadline(tmp_path: Path) -> None:
    """The connection's one timer fires while it is busy with quick requests: it moves on to
    the request then begun, and a request that trickles later is late from its own start."""
    with gateway_server(tmp_path, INBOXGATE_HEADER_TIMEOUT=str(TIMEOUT)) as server:
        with sockets(server.port, 1) as (sock,):
            sock.settimeout(5)
            busy_until = time.monotonic() + TIMEOUT * 1.6
            served = 0
            while time.monotonic() < busy_until:  # past the first timer's firing, answered
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
                assert read_response(sock).startswith(b"HTTP/1.1 200 ")
                served += 1
                time.sleep(0.05)
            assert served >= 10
            began = time.monotonic()
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            trickle = Trickle(sock)
            trickle.start()
            answer = read_until_closed(sock, TIMEOUT + SLACK)
            late = time.monotonic() - began
            trickle.join(timeout=15)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert TIMEOUT * 0.9 <= late < TIMEOUT + SLACK


def test_oversized_headers_are_refused_but_bodies_are_not_counted(tmp_path: Path) -> None:
    with gateway_server(tmp_path) as server, httpx.Client(timeout=5) as client:
        fine = {f"X-Fill-{i}": "a" * 1000 for i in range(30)}  # 30 KiB of headers
        assert client.get(server.url("/health"), headers=fine).status_code == 200
        inbox = server.provision_inbox()["identifier"]
        contacts = server.url(f"/public/api/v1/inboxes/{inbox}/contacts")
        # 200 KB, three times the header cap (and under the 256K-character cap on one string)
        big = client.post(contacts, json={"name": "Ann", "padding": "x" * 200_000})
        assert big.status_code == 200  # read whole: bodies are not headers

        one_line = b"X-Fill: " + b"a" * 100_000 + b"\r\n"
        many_lines = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"a" * 1000) for i in range(100))
        for headers in (one_line, many_lines):
            with sockets(server.port, 1) as (sock,):
                # the second request of a keep-alive connection is held to it too
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
                assert read_response(sock).startswith(b"HTTP/1.1 200 OK\r\n")
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n" + headers)
                answer = read_until_closed(sock, SLACK)
                assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
                assert b"larger than 65536 bytes" in answer
        assert client.get(server.url("/health")).status_code == 200


def wait_for_status(server: GatewayProcess, status: int, within: float = 5.0) -> httpx.Response:
    """GET /health on fresh connections until it answers ``status`` (the server notices closed
    sockets a moment after the client closed them)."""
    deadline = time.monotonic() + within
    while True:
        response = httpx.get(server.url("/health"), timeout=5, headers={"Connection": "close"})
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_over_the_cap_new_connections_are_refused_clearly(tmp_path: Path) -> None:
    env = {"INBOXGATE_HEADER_TIMEOUT": "2", "INBOXGATE_MAX_CONNECTIONS": "10"}
    with gateway_server(tmp_path, **env) as server, sockets(server.port, 10) as held:
        for _ in range(3):
            refused = httpx.get(server.url("/health"), timeout=5)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "2"
            assert refused.headers["connection"] == "close"
            assert refused.json()["error"] == "Service Unavailable"
            assert "too many open connections" in refused.json()["description"]
        with pytest.raises(InvalidStatus) as upgrade:
            ws_connect(server.ws_url(), open_timeout=5)
        assert upgrade.value.response.status_code == 503

        for sock in held[:5]:
            sock.close()
        assert wait_for_status(server, 200).status_code == 200

        log = server.log()
        # one line when the cap was reached, one when back under: not one per refusal
        assert log.count("connection limit reached") == 1, log
        assert log.count("back under the connection limit") == 1, log
        # three requests and an upgrade (and any poll that beat the closes to the server)
        refused_count = re.search(r"(\d+) were refused", log)
        assert refused_count and int(refused_count.group(1)) >= 4, log


def test_cap_follows_the_file_descriptor_limit(caplog: pytest.LogCaptureFixture) -> None:
    assert connection_cap(0, fds=1024) == 1024 - 102  # a tenth kept for files, DB, Redis
    assert connection_cap(0, fds=20_000) == 18_000
    assert connection_cap(0, fds=100) == 36  # at least 64 kept
    assert connection_cap(0, fds=40) == 16
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="inboxgate.connections"):
        assert connection_cap(500, fds=1024) == 500  # configured: used as is
        assert not caplog.records
        assert connection_cap(5000, fds=1024) == 5000
    [warning] = caplog.records
    assert "INBOXGATE_MAX_CONNECTIONS=5000" in warning.getMessage()


def test_guard_logs_each_change_of_state_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = ConnectionGuard(max_connections=10, header_timeout=10.0)
    with caplog.at_level(logging.WARNING, logger="inboxgate.connections"):
        admitted = [guard.admit(n) for n in (5, 9, 10, 12, 10, 9, 10)]
        assert admitted == [True, True, False, False, False, True, False]
        guard.settle(9)  # a connection closed, but not yet well under the cap
        guard.settle(8)
        assert guard.admit(8)
        assert not guard.admit(10)
    said = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in said] == [
        "connection limit reached",
        "back under the connection limit",
        "connection limit reached",
    ]
    assert "4 were refused" in said[1]


def test_a_plain_uvicorn_config_gets_one_default_guard() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = uvicorn.Config(app, http=GuardedHttpProtocol)
    loop = asyncio.new_event_loop()
    try:
        first, second = (GuardedHttpProtocol(config, ServerState(), {}, loop) for _ in range(2))
    finally:
        loop.close()
    assert first.guard is second.guard
    assert first.guard.max_connections == connection_cap(0)
    assert first.guard.header_timeout == 10.0


@pytest.mark.anyio
async def test_keep_alive_closes_an_idle_connection_and_spares_a_busy_one() -> None:
    """uvicorn's keep-alive timeout, kept with one timer per connection: it fires while the
    connection is busy and moves on; once the connection idles for the timeout, it closes."""
    keep_alive = 0.5

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})

    port = free_port()
    config = uvicorn.Config(
        app, host=HOST, port=port, http=GuardedHttpProtocol, timeout_keep_alive=keep_alive,
        log_level="warning", lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(HOST, port)
        busy_until = time.monotonic() + keep_alive * 2.5
        served = 0
        try:
            while time.monotonic() < busy_until:
                await asyncio.sleep(keep_alive / 5)
                writer.write(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), 5)
                assert head.startswith(b"HTTP/1.1 200 ")
                served += 1
            idle_from = time.monotonic()  # the last response is in
            assert served >= 8
            assert await asyncio.wait_for(reader.read(), keep_alive + SLACK) == b""  # closed
            assert keep_alive * 0.9 <= time.monotonic() - idle_from < keep_alive + SLACK
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        server.should_exit = True
        await serving
