"""A minimal websocket client fleet for the /cable benchmark: an asyncio Protocol per socket
with its own frame parser, stamping ``time.perf_counter()`` when bytes arrive, so a frame costs
the client microseconds and the client is not what is measured."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import cast

HOST = "127.0.0.1"

SUBPROTOCOL = "actioncable-v1-json"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ECHO_RE = re.compile(rb'"echo_id"\s*:\s*"([^"]+)"')
EVENT_RE = re.compile(rb'"(?:event|type)"\s*:\s*"([^"]+)"')


class BenchError(RuntimeError):
    """A server misbehaved; the message says what was seen."""


# --- the client ---------------------------------------------------------------------------


class Track:
    """One message in flight: which sockets got it, and when (seconds after ``t0``).

    ``got`` per socket index: 0 waiting, 1 received, 2 lost while waiting, 3 not expected (the
    socket was not open when the message was posted)."""

    def __init__(self, size: int, open_indices: list[int]) -> None:
        self.t0 = 0.0
        self.got = bytearray(b"\x03" * size)
        for index in open_indices:
            self.got[index] = 0
        self.remaining = len(open_indices)
        self.delays: list[float] = []
        self.duplicates = 0
        self.last = 0.0  # perf_counter of the latest arrival
        self.done = asyncio.Event()
        if self.remaining <= 0:
            self.done.set()

    def arrive(self, index: int, t: float) -> None:
        state = self.got[index]
        if state == 1:
            self.duplicates += 1
            return
        self.got[index] = 1
        self.delays.append(t - self.t0)
        self.last = max(self.last, t)
        if state == 0:
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()

    def lost(self, index: int) -> None:
        """Socket ``index`` closed: stop waiting for it."""
        if self.got[index] == 0:
            self.got[index] = 2
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()

    @property
    def received(self) -> int:
        return len(self.delays)


class Fleet:
    """N sockets and the messages being tracked across them."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.sockets: list[CableSocket] = []
        self.tracks: dict[bytes, Track] = {}
        self.phase = "setup"
        # text frames that are neither a ping nor a tracked message: (phase, event) -> count
        self.other: Counter[tuple[str, str]] = Counter()
        self.other_sample: dict[str, bytes] = {}
        self.last_other = 0.0  # perf_counter of the latest such frame
        self.frame_sizes: list[int] = []
        self.closed: list[tuple[int, str]] = []

    def track(self, echo_id: str) -> Track:
        live = [s.index for s in self.sockets if s.state == "open" and not s.closed]
        t = Track(self.n, live)
        self.tracks[echo_id.encode()] = t
        return t

    def frame(self, sock: CableSocket, payload: bytes, t: float) -> None:
        m = ECHO_RE.search(payload)
        if m is not None and b'"message.created"' in payload:
            track = self.tracks.get(m.group(1))
            if track is not None:
                track.arrive(sock.index, t)
                if len(self.frame_sizes) < 1000:
                    self.frame_sizes.append(len(payload))
                return
        if payload.startswith(b'{"type":"ping"'):
            return
        m = EVENT_RE.search(payload)
        event = m.group(1).decode(errors="replace") if m else "?"
        self.other[self.phase, event] += 1
        self.other_sample.setdefault(event, payload[:300])
        self.last_other = t

    async def quiet(self, seconds: float, timeout: float) -> float:
        """Wait until no untracked frame has arrived for ``seconds``; returns the time waited."""
        start = time.perf_counter()
        async with asyncio.timeout(timeout):
            while True:
                idle = time.perf_counter() - max(self.last_other, start)
                if idle >= seconds:
                    return time.perf_counter() - start
                await asyncio.sleep(seconds - idle + 0.01)

    def lost(self, sock: CableSocket, why: str) -> None:
        self.closed.append((sock.index, why))
        for track in self.tracks.values():
            track.lost(sock.index)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One unfragmented client frame, masked as RFC 6455 requires of clients."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return header + key + masked


class CableSocket(asyncio.Protocol):
    """One Action Cable connection: handshake, welcome, subscribe, then frames to the fleet."""

    def __init__(
        self,
        fleet: Fleet,
        index: int,
        host: str,
        port: int,
        identifier: str,
        subprotocol: str = SUBPROTOCOL,
    ) -> None:
        self.fleet = fleet
        self.index = index
        self.host = host
        self.port = port
        self.identifier = identifier
        self.subprotocol = subprotocol
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.key = base64.b64encode(os.urandom(16))
        self.state = "handshake"  # -> welcome -> confirm -> open
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.fragments: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writer = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport = writer
        writer.write(
            b"GET /cable HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: %s\r\n\r\n"
            % (self.host.encode(), self.port, self.key, self.subprotocol.encode())
        )

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter()
        self.buf += data
        if self.state == "handshake" and not self._handshake():
            return
        buf = self.buf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if b1 & 0x80:
                return self._fail("server sent a masked frame")
            end = offset + length
            if len(buf) < end:
                return
            payload = bytes(buf[offset:end])
            del buf[:end]
            opcode = b0 & 0x0F
            if not b0 & 0x80 or opcode == 0:  # a fragment
                self.fragments.append(payload)
                if not b0 & 0x80:
                    continue
                payload, self.fragments = b"".join(self.fragments), []
                opcode = 0x1
            if opcode == 0x1 or opcode == 0x2:
                self._message(payload, t)
            elif opcode == 0x8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                reason = payload[2:].decode(errors="replace")
                return self._fail(f"server closed the socket: {code} {reason}".strip())
            elif opcode == 0x9:
                assert self.transport is not None
                self.transport.write(client_frame(0xA, payload))

    def _handshake(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > 65536:
                self._fail("no end of the handshake response")
            return False
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        status, *lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        if " 101 " not in status + " ":
            self._fail(f"handshake refused: {status!r} {bytes(self.buf[:200])!r}")
            return False
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            self._fail("bad Sec-WebSocket-Accept")
            return False
        if headers.get("sec-websocket-protocol") != self.subprotocol:
            self._fail(f"subprotocol not chosen: {headers.get('sec-websocket-protocol')!r}")
            return False
        self.state = "welcome"
        return True

    def _message(self, payload: bytes, t: float) -> None:
        if self.state == "open":
            self.fleet.frame(self, payload, t)
        elif self.state == "welcome":
            if payload.startswith(b'{"type":"ping"'):
                return
            if json.loads(payload).get("type") != "welcome":
                return self._fail(f"expected welcome, got {payload[:200]!r}")
            self.state = "confirm"
            command = {"command": "subscribe", "identifier": self.identifier}
            assert self.transport is not None
            self.transport.write(client_frame(0x1, json.dumps(command).encode()))
        elif self.state == "confirm":
            if payload.startswith(b'{"type":"ping"'):
                return
            frame = json.loads(payload)
            if frame.get("type") != "confirm_subscription":
                return self._fail(f"expected confirm_subscription, got {payload[:200]!r}")
            if frame.get("identifier") != self.identifier:
                return self._fail(f"confirmation echoes another identifier: {payload[:200]!r}")
            self.state = "open"
            if not self.ready.done():
                self.ready.set_result(None)

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(BenchError(why))
        self._lost(why)
        if self.transport is not None:
            self.transport.abort()

    def _lost(self, why: str) -> None:
        if not self.closed:
            self.closed = True
            self.fleet.lost(self, why)

    def connection_lost(self, exc: Exception | None) -> None:
        why = f"connection lost ({exc!r})" if exc else "connection closed by the server"
        if not self.ready.done():
            self.ready.set_exception(BenchError(f"{why} during the handshake ({self.state})"))
        self._lost(why)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.closed = True  # our doing: not a loss
            with contextlib.suppress(Exception):
                self.transport.write(client_frame(0x8, (1000).to_bytes(2, "big")))
            self.transport.close()


async def open_sockets(
    fleet: Fleet,
    count: int,
    port: int,
    identifier: str | Sequence[str],
    timeout: float,
    subprotocol: str = SUBPROTOCOL,
) -> None:
    """Open ``count`` more sockets and subscribe each: to ``identifier``, or to the i-th of a
    sequence of ``count`` identifiers."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(64)  # keep the listen backlog and the handshake queue sane
    start = len(fleet.sockets)

    async def one(index: int) -> None:
        async with gate:
            ident = identifier if isinstance(identifier, str) else identifier[index - start]
            sock = CableSocket(fleet, index, HOST, port, ident, subprotocol)
            fleet.sockets.append(sock)
            await loop.create_connection(lambda: sock, HOST, port)
            await sock.ready

    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(start + i) for i in range(count)))
    except TimeoutError:
        states: dict[str, int] = {}
        for sock in fleet.sockets[start:]:
            states[sock.state] = states.get(sock.state, 0) + 1
        raise BenchError(
            f"{count} sockets not all subscribed after {timeout}s; states: {states}"
        ) from None


def close_sockets(fleet: Fleet) -> None:
    for sock in fleet.sockets:
        sock.close()


# --- the servers ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used: a cost that other processes on the
    machine do not inflate, unlike wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")
