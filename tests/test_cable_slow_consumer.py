"""One connection that stops reading is dropped; a thousand others on its stream never notice.

1,000 "fast" ext-JSON connections share one contact's ``pubsub_token`` (as browser tabs do) and
one raw socket subscribes to the same stream and then never reads again. Its kernel buffers are
made small before it connects (``SO_RCVBUF`` 4096 and ``TCP_MAXSEG`` 536: loopback's 64 KiB MSS
otherwise lets the server's send buffer auto-tune to about 3 MiB), and the server runs with
``INBOXGATE_CABLE_SEND_BUFFER_BYTES=65536``, so the slow socket holds roughly 8 KiB (receive) +
~150 KiB (the server's send buffer) + 64 KiB (transport) + 64 KiB (the gateway's buffer) ≈
300 KiB before it overflows. ``M`` messages of ``CONTENT_BYTES`` each (``message.created``
carries the content twice, ~2x the frame size) are posted one after another, each once every
fast connection has the previous one.

Asserts: every fast connection receives every message, in order, once; each message reaches
the last of the 1,000 within ``MAX_DELAY`` of its POST starting; and the slow socket, when it
finally reads, gets some frames, then ``disconnect`` ``too_slow`` (``reconnect: true``) and/or
a close from the server. The slow socket subscribes after the fast ones, so that their
``presence.update`` broadcasts (transient, to the shared token) are not what overflows it.

Observed (2 CPUs, server and the 1,000 clients on one machine, 5-12 s in all): max delay
0.16 s, median 0.04 s; the slow socket got 17 of the 60 messages (~220 KB), then
``disconnect too_slow`` and a close frame with code 1013.
"""

from __future__ import annotations

import base64
import os
import resource
import socket
import struct
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from msgspec import UNSET
from websockets.asyncio.client import ClientConnection

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient, contact_identifier
from tests.cable_views import ok, wait_for
from tests.server_helpers import HOST, GatewayProcess

pytestmark = pytest.mark.slow  # a real process and real sockets (pyproject's marker)

FAST = 1000
M = 60
CONTENT_BYTES = 6000
SEND_BUFFER = 65536
MAX_DELAY = 2.0  # seconds, POST start -> the last fast connection has the message
CONNECT_CONCURRENCY = 50

ENV = {
    "INBOXGATE_MESSAGES_PER_MINUTE": "100000",
    "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1",
    "INBOXGATE_CABLE_SEND_BUFFER_BYTES": str(SEND_BUFFER),
}


def raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --------------------------------------------------------------------------------------------
# The slow consumer: a hand-made websocket client on a socket with tiny buffers
# --------------------------------------------------------------------------------------------


class RawSocket:
    """Just enough RFC 6455 to subscribe, stop reading, and later read what the server sent."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
        self.sock.settimeout(10.0)
        self.sock.connect((HOST, port))
        self.buffer = b""
        self.eof = False

    def handshake(self) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /cable HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {cp.EXT_JSON}\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        self.sock.sendall(header + mask + masked)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            raise EOFError
        self.buffer += chunk

    def frame(self) -> tuple[int, bytes]:
        """The next (opcode, payload); server frames are unmasked and, here, unfragmented."""
        while True:
            buf = self.buffer
            if len(buf) >= 2:
                opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
                start = 2
                if n == 126 and len(buf) >= 4:
                    n, start = struct.unpack("!H", buf[2:4])[0], 4
                elif n == 127 and len(buf) >= 10:
                    n, start = struct.unpack("!Q", buf[2:10])[0], 10
                if (n < 126 or start > 2) and len(buf) >= start + n:
                    self.buffer = buf[start + n :]
                    return opcode, buf[start : start + n]
            self._fill()

    def message(self) -> Any:
        """The next text frame, decoded (pings and pongs skipped)."""
        while True:
            opcode, payload = self.frame()
            if opcode == 0x1:
                return cp.decode_frame(payload.decode(), "json")

    def close(self) -> None:
        self.sock.close()


class Drained:
    def __init__(self) -> None:
        self.broadcasts = 0  # logged ones (messages), not presence
        self.bytes = 0
        self.disconnect: cp.Disconnect | None = None
        self.close_code: int | None = None
        self.ending = "nothing"  # how the stream ended: close frame, EOF, reset


def drain(raw: RawSocket, timeout: float) -> Drained:
    """Read everything the server sent until it closes (close frame, EOF or reset)."""
    got = Drained()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw.sock.settimeout(max(0.1, deadline - time.monotonic()))
            opcode, payload = raw.frame()
            if opcode == 0x8:
                got.close_code = struct.unpack("!H", payload[:2])[0] if payload else None
                got.ending = "close frame"
                return got
            if opcode != 0x1:
                continue
            frame = cp.decode_frame(payload.decode(), "json")
            if isinstance(frame, cp.Broadcast) and frame.offset is not UNSET:
                got.broadcasts += 1
                got.bytes += len(payload)
            elif isinstance(frame, cp.Disconnect):
                got.disconnect = frame
    except EOFError:
        got.ending = "EOF"
    except ConnectionResetError:
        got.ending = "reset"
    except TimeoutError:
        got.ending = "timeout"
    return got


# --------------------------------------------------------------------------------------------
# The fast ones
# --------------------------------------------------------------------------------------------


class Fanout:
    """Arrivals of every logged offset over the fast connections, and per-connection order."""

    def __init__(self) -> None:
        self.count: defaultdict[int, int] = defaultdict(int)
        self.last_at: dict[int, float] = {}
        self.complete: defaultdict[int, anyio.Event] = defaultdict(anyio.Event)
        self.offset_of: dict[int, int] = {}  # message id -> offset (read by connection 0)
        self.seen: defaultdict[int, anyio.Event] = defaultdict(anyio.Event)
        self.last: list[int] = [0] * FAST
        self.received: list[int] = [0] * FAST
        self.errors: list[str] = []

    def arrived(self, index: int, raw: str) -> None:
        at = raw.rfind('"offset":')
        if not raw.startswith('{"identifier"') or at < 0:
            return  # a ping, or a transient broadcast (presence): no position
        offset = int(raw[at + 9 : -1])
        if self.last[index] and offset != self.last[index] + 1:
            self.errors.append(f"connection {index}: offset {offset} after {self.last[index]}")
        self.last[index] = offset
        self.received[index] += 1
        self.count[offset] += 1
        self.last_at[offset] = time.monotonic()
        if self.count[offset] == FAST:
            self.complete[offset].set()
        if index == 0:
            message = msgspec.json.decode(raw)["message"]
            if message["event"] == "message.created":
                self.offset_of[message["data"]["id"]] = offset
                self.seen[message["data"]["id"]].set()


async def fast_connection(
    index: int, url: str, identifier: str, fanout: Fanout, limit: anyio.CapacityLimiter,
    sockets: list[ClientConnection], ready: list[int],
) -> None:  # fmt: skip
    async with AsyncExitStack() as stack:
        async with limit:  # bounds concurrent handshakes only; the socket outlives the slot
            cable = await stack.enter_async_context(CableClient.connect(url, protocol=cp.EXT_JSON))
            sockets.append(cable.ws)
            await cable.expect(cp.Welcome, timeout=30)
            await cable.subscribe(identifier)
            await cable.expect(cp.ConfirmSubscription, timeout=30)
            ready.append(index)
        async for raw in cable.ws:
            assert isinstance(raw, str)
            fanout.arrived(index, raw)


def subscribe_slow(raw: RawSocket, identifier: str) -> None:
    raw.handshake()
    assert isinstance(raw.message(), cp.Welcome)
    frame = cp.encode(cp.Subscribe(identifier=identifier), "json")
    assert isinstance(frame, str)
    raw.send_text(frame)
    while not isinstance(raw.message(), cp.ConfirmSubscription):
        pass


@pytest.mark.anyio
@pytest.mark.timeout(180)
async def test_slow_consumer_is_dropped_and_the_others_keep_up(tmp_path: Path) -> None:
    raise_nofile(4 * FAST + 512)  # the server process inherits the limit
    server = GatewayProcess(tmp_path, **ENV)
    slow: RawSocket | None = None
    try:
        await anyio.to_thread.run_sync(server.start)
        inbox = server.provision_inbox(name="Slow")["identifier"]
        async with httpx.AsyncClient(timeout=30.0) as http:
            contact = ok(await http.post(server.url(f"/public/api/v1/inboxes/{inbox}/contacts")))
            api = f"/public/api/v1/inboxes/{inbox}/contacts/{contact['source_id']}"
            conv = ok(await http.post(server.url(f"{api}/conversations")))["id"]
            identifier = contact_identifier(contact["pubsub_token"])

            fanout = Fanout()
            sockets: list[ClientConnection] = []
            ready: list[int] = []
            limit = anyio.CapacityLimiter(CONNECT_CONCURRENCY)
            url = server.ws_url("/cable")
            delays: list[float] = []
            async with anyio.create_task_group() as tg:
                for i in range(FAST):
                    tg.start_soon(
                        fast_connection, i, url, identifier, fanout, limit, sockets, ready
                    )
                await wait_for(lambda: len(ready) == FAST, 90, f"{FAST} subscriptions")
                connected_at = time.monotonic()
                # Last, so that the presence.update of each fast subscribe (transient, to the
                # shared token) is not what overflows it: the messages must.
                slow = RawSocket(server.port)
                await anyio.to_thread.run_sync(subscribe_slow, slow, identifier)
                slow_since = time.monotonic()
                padding = "x" * CONTENT_BYTES
                for i in range(M):
                    started = time.monotonic()
                    message = ok(
                        await http.post(
                            server.url(f"{api}/conversations/{conv}/messages"),
                            json={"content": f"{i:03d} {padding}", "echo_id": f"slow-{i}"},
                        )
                    )
                    with anyio.fail_after(30):
                        await fanout.seen[message["id"]].wait()
                        offset = fanout.offset_of[message["id"]]
                        await fanout.complete[offset].wait()
                    delays.append(fanout.last_at[offset] - started)
                posted_in = time.monotonic() - connected_at
                for ws in sockets:
                    tg.start_soon(ws.close)

        drained = await anyio.to_thread.run_sync(drain, slow, 20.0)
        slow_for = time.monotonic() - slow_since
    finally:
        if slow is not None:
            slow.close()
        server.kill()

    figures = (
        f"max delay {max(delays):.3f} s, median {sorted(delays)[M // 2]:.3f} s over {M} "
        f"messages to {FAST} connections (posted in {posted_in:.1f} s); slow socket: "
        f"{drained.broadcasts} broadcasts, {drained.bytes} bytes, disconnect {drained.disconnect}, "
        f"ended by {drained.ending} (code {drained.close_code}) after {slow_for:.1f} s"
    )
    print(figures)
    assert not fanout.errors, fanout.errors[:10]
    assert all(n == M for n in fanout.received), sorted(set(fanout.received))
    assert max(delays) < MAX_DELAY, figures
    # The server closed it (not our timeout), for being slow: either the disconnect frame made
    # it out before the close, or the close/EOF/reset itself. uvicorn's keepalive (a ping every
    # 20 s, 20 s to answer) could also close a socket that never reads: rule that out.
    assert drained.ending in ("close frame", "EOF", "reset"), figures
    assert slow_for < 40, figures
    if drained.disconnect is not None:
        assert drained.disconnect == cp.Disconnect(reason="too_slow", reconnect=True), figures
    assert drained.broadcasts < M, figures
