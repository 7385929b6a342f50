"""When frames reach a /cable client, read by read, over a raw socket.

Chatwoot's ``presence.update`` on subscribe is a broadcast: it reaches the client a pub/sub round
trip after ``confirm_subscription``, never in the same TCP read. Clients that register a
subscription only once they have processed its confirmation lose (or crash on) a message that
arrives in the same read, so the confirmation must go out in a write of its own and the
subscribe-time ``presence.update`` must come in a later one.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_socket_helpers import Tenant
from tests.server_helpers import HOST, GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

# How late the client reads: frames written within this long of each other share its read.
LAG = 0.01


@pytest.fixture(scope="module", params=["lean", "asgi"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GatewayProcess]:
    """Both /cable transports (INBOXGATE_CABLE_TRANSPORT): the default, and the fallback."""
    root = tmp_path_factory.mktemp("cable-timing")
    with gateway_server(root, INBOXGATE_CABLE_TRANSPORT=request.param) as started:
        yield started


class Reads:
    """A websocket client that keeps the frames of each ``recv`` apart."""

    def __init__(self, port: int, protocol: str) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10.0)
        self.protocol = protocol
        self.rest = b""

    def handshake(self) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /cable HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {self.protocol}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, "closed during the handshake"
            data += chunk
        head, self.rest = data.split(b"\r\n\r\n", 1)
        return head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 65536
        header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.sock.sendall(header + mask + masked)

    def read(self, lag: float = 0.0) -> list[cp.ServerFrame]:
        """The frames completed by one ``recv`` (with what an earlier read left); ``lag``: wait
        that long once bytes are there, as a busy client would, so that whatever the server
        wrote together lands in this one read."""
        if lag:
            select.select([self.sock], [], [], 10.0)
            time.sleep(lag)
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection"
        self.rest += chunk
        return self.parse()

    def parse(self) -> list[cp.ServerFrame]:
        """The complete frames received so far and not yet returned."""
        frames: list[cp.ServerFrame] = []
        buf = self.rest
        while len(buf) >= 2:
            n, start = buf[1] & 0x7F, 2
            if n == 126:
                n, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                n, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + n:
                break
            frames.append(cp.decode_frame(buf[start : start + n].decode(), "json"))
            buf = buf[start + n :]
        self.rest = buf
        return frames

    def close(self) -> None:
        self.sock.close()


def not_pings(frames: list[cp.ServerFrame]) -> list[cp.ServerFrame]:
    return [f for f in frames if not isinstance(f, cp.Ping)]


@pytest.mark.parametrize("protocol", [cp.JSON, cp.EXT_JSON])
async def test_confirmation_is_alone_in_its_read_and_presence_follows(
    server: GatewayProcess, http: httpx.AsyncClient, protocol: str
) -> None:
    tenant = Tenant.create(server)
    customer = await tenant.customer(http)
    identifier = customer.ident()
    client = Reads(server.port, protocol)
    try:
        assert client.handshake().startswith(b"HTTP/1.1 101")
        frames = client.parse() or client.read()  # the welcome may come with the 101
        assert isinstance(not_pings(frames)[0], cp.Welcome)

        client.send_text(msgspec.json.encode(cp.Subscribe(identifier=identifier)).decode())
        first: list[cp.ServerFrame] = []
        while not first:
            first = not_pings(client.read(lag=LAG))
        # The first read with anything in it holds the confirmation and nothing else.
        assert first == [cp.ConfirmSubscription(identifier=identifier)]

        later: list[cp.ServerFrame] = []
        while not later:
            later = not_pings(client.read())
        assert len(later) == 1, later
        presence = later[0]
        assert isinstance(presence, cp.Broadcast)
        assert presence.identifier == identifier
        assert presence.message["event"] == "presence.update"
    finally:
        client.close()
