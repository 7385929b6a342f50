"""The lean /cable transport over a real socket: what its websocket layer answers that the rest
of the suite (which runs on it by default) does not exercise: refused upgrades, other websocket
paths handed to uvicorn, protocol errors and their close codes, closes from either side,
websocket pings, fragmented client messages."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from client_sdk import cable_protocol as cp
from tests.server_helpers import HOST, GatewayProcess, gateway_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("cable-lean")) as started:
        yield started


def upgrade(port: int, path: str = "/cable", **headers: str) -> tuple[socket.socket, bytes]:
    """A raw upgrade request; returns the socket and what came back first."""
    sock = socket.create_connection((HOST, port), timeout=10.0)
    fields = {
        "Host": HOST,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": cp.JSON,
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v)
    sock.sendall(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return sock, data


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    n = len(payload)
    first = (0x80 if fin else 0) | opcode
    size = bytes((n | (0x80 if mask else 0),)) if n < 126 else b""
    if n >= 126:
        size = struct.pack("!BH", 126 | (0x80 if mask else 0), n)
    if not mask:
        return bytes((first,)) + size + payload
    key = os.urandom(4)
    return bytes((first,)) + size + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frames_until_close(sock: socket.socket, data: bytes) -> list[tuple[int, bytes]]:
    """Every server frame until the close frame (included) or EOF."""
    got: list[tuple[int, bytes]] = []
    buf = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else data
    while True:
        while len(buf) >= 2:
            n, start = buf[1] & 0x7F, 2
            if n == 126:
                n, start = struct.unpack_from("!H", buf, 2)[0], 4
            if len(buf) < start + n:
                break
            got.append((buf[0] & 0x0F, buf[start : start + n]))
            buf = buf[start + n :]
            if got[-1][0] == 0x8:
                return got
        chunk = sock.recv(65536)
        if not chunk:
            return got
        buf += chunk


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-WebSocket-Version": "8"}, b"426"),
        ({"Sec-WebSocket-Key": "not-a-key"}, b"400"),
        ({"Sec-WebSocket-Protocol": "graphql-ws"}, b"403"),
    ],
)
def test_refused_upgrades(server: GatewayProcess, headers: dict[str, str], status: bytes) -> None:
    sock, data = upgrade(server.port, **headers)
    with sock:
        assert data.startswith(b"HTTP/1.1 " + status), data
        if status == b"426":
            assert b"sec-websocket-version: 13" in data.lower()


def test_other_websocket_paths_go_to_uvicorn(server: GatewayProcess) -> None:
    sock, data = upgrade(server.port, "/not-cable")
    with sock:
        assert data.startswith(b"HTTP/1.1 403"), data  # the app has no other websocket route


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        (frame(0x1, b'{"command":"pong"}', mask=False), 1002),  # unmasked
        (frame(0x1, b"\xff\xfe"), 1007),  # not UTF-8
        (frame(0x3, b""), 1002),  # unknown opcode
        (struct.pack("!BBQ", 0x81, 0xFF, 2 << 20) + b"\0\0\0\0", 1009),  # over 1 MiB
    ],
)
def test_protocol_errors_close_with_their_code(
    server: GatewayProcess, sent: bytes, code: int
) -> None:
    sock, data = upgrade(server.port)
    with sock:
        assert data.startswith(b"HTTP/1.1 101"), data
        sock.sendall(sent)
        got = frames_until_close(sock, data)
        assert got[-1][0] == 0x8, got
        assert struct.unpack_from("!H", got[-1][1])[0] == code
        assert sock.recv(10) == b""  # and the server closed the connection


def test_client_close_ping_and_fragments(server: GatewayProcess) -> None:
    with ws_connect(server.ws_url(), subprotocols=[cp.JSON], open_timeout=5) as cable:  # type: ignore[list-item]
        assert cp.decode_frame(cable.recv(timeout=5), "json") == cp.Welcome()
        assert cable.ping().wait(timeout=5)
        # A command in three fragments is one message: a malformed one would be answered with
        # a disconnect, an unknown identifier's unsubscribe is only noted.
        cable.send(['{"command":"unsubscribe",', '"identifier":"{\\"channel\\":', '\\"x\\"}"}'])
        assert cable.ping().wait(timeout=5)  # still open
        cable.close(code=1000)
        assert cable.close_code == 1000
    with pytest.raises(ConnectionClosed):
        cable.recv(timeout=1)


def test_open_sockets_count_against_the_connection_cap(tmp_path: Path) -> None:
    with gateway_server(tmp_path, INBOXGATE_MAX_CONNECTIONS="3") as server:
        with contextlib.ExitStack() as stack:
            for _ in range(3):
                cable = stack.enter_context(
                    ws_connect(server.ws_url(), subprotocols=[cp.JSON], open_timeout=5)  # type: ignore[list-item]
                )
                assert cp.decode_frame(cable.recv(timeout=5), "json") == cp.Welcome()
            assert httpx.get(server.url("/health"), timeout=5).status_code == 503
        deadline = time.monotonic() + 10
        while httpx.get(server.url("/health"), timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "the closed sockets still count"
            time.sleep(0.05)
