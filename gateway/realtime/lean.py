"""The lean /cable transport: the socket's own ``asyncio.Protocol``, behind uvicorn's port.

uvicorn takes a class as its websocket protocol (``ws=``); this one receives every websocket
upgrade that its HTTP protocol parsed. ``/cable`` stays here: the handshake is answered from the
headers uvicorn already parsed, frames are read in ``data_received`` and fed to the sans-I/O
:class:`~gateway.realtime.core.CableSession`, and frames go out with one ``transport.write``
each, framed once per event and subscription identifier for every socket
(:meth:`EncodedEvent.wired`). No task per socket: the hub's one timer pings and times
everyone, and a socket runs a short task (owned by the hub) only while the session waits on
I/O (the upgrade's rate limit, a session restore, a subscribe's authorization, a history read);
frames that arrive meanwhile wait their turn, in order. Any other websocket path is handed to
uvicorn's own protocol.

Backpressure is the transport's: its high-water mark is the send budget
(``INBOXGATE_CABLE_SEND_BUFFER_BYTES``), and ``pause_writing`` marks a slow consumer, told
``too_slow`` and cut ``ABORT_AFTER`` later if it never takes its goodbye.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from http import HTTPStatus
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, unquote

import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.utils import get_remote_addr
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from client_sdk import cable_protocol as cp
from client_sdk.cable_protocol import WireFrame

from ..http import error_response
from ..metrics import CABLE_BYTES, CABLE_CONNECTS, CABLE_FRAMES
from ..ratelimit import IpLimit
from .connection import ASYNC_ACTIONS, Connection
from .core import CableSession, Close, EncodedEvent, ping_frame, restore_sid
from .core import websocket as ws
from .hub import Hub

_HANDSHAKE, _OPENING, _OPEN, _CLOSING, _GONE = range(5)
# Frames received while the session waits on I/O; past this, the socket stops being read.
INBOX_PAUSE = 16
# A close that the client does not answer ends the connection after this long.
CLOSE_TIMEOUT = 10.0
_FORBIDDEN: Final = ws.http_response(403, "Forbidden", b"", {})


class CableHost(Protocol):
    """What the app under uvicorn offers the transport (``CableFirst``)."""

    @property
    def hub(self) -> Hub: ...
    @property
    def upgrades(self) -> IpLimit | None: ...


class LeanServer:
    """What every lean socket of one uvicorn server shares (built once, kept on the config)."""

    __slots__ = ("app_state", "config", "connections", "host", "proxy", "server_state")

    def __init__(
        self, config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any]
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.connections = server_state.connections  # the connection cap counts them
        self.app_state = app_state
        self.host = _find_host(config.loaded_app)
        self.proxy = (
            ProxyHeadersMiddleware(_as_is, trusted_hosts=config.forwarded_allow_ips)
            if config.proxy_headers
            else None
        )

    @classmethod
    def of(
        cls, config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any]
    ) -> LeanServer:
        found: LeanServer | None = config.__dict__.get("lean_cable")
        if found is None or found.server_state is not server_state:
            found = config.__dict__["lean_cable"] = cls(config, server_state, app_state)
        return found

    def client(self, peer: tuple[str, int] | None, headers: list[tuple[bytes, bytes]]) -> Any:
        """The client address as the ASGI app would see it: the peer, or what a trusted proxy
        forwarded (uvicorn's own proxy-headers logic, run on a scope of our own)."""
        scope: dict[str, Any] = {"type": "websocket", "client": peer, "headers": headers}
        if self.proxy is not None:
            step = self.proxy(scope, _never, _never)  # type: ignore[arg-type]
            try:
                step.send(None)
            except StopIteration:
                pass
            else:  # pragma: no cover - the middleware does not wait on anything
                step.close()
        return scope.get("client")


def _find_host(app: Any) -> CableHost | None:
    """The ``cable`` endpoint of the app, through uvicorn's middleware wrappers."""
    while app is not None:
        found = getattr(app, "cable", None)
        if found is not None and hasattr(found, "hub"):
            return found  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
    return None


async def _as_is(scope: Any, receive: Any, send: Any) -> None:
    pass


async def _never() -> Any:  # pragma: no cover
    raise RuntimeError("not an ASGI app")


def _request(data: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Method, target and headers of the request uvicorn re-serialised from what it parsed
    (names lower-cased, one ``name: value`` per line)."""
    lines = data.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b": ")
            headers.append((name, value))
    return method, target, headers


_PINGS: dict[cp.Encoding, tuple[int, bytes]] = {}


def wired_ping(now: float, encoding: cp.Encoding) -> bytes:
    """This second's ping, framed: once per tick for every socket."""
    second = int(now)
    cached = _PINGS.get(encoding)
    if cached is None or cached[0] != second:
        cached = _PINGS[encoding] = (second, ws.wire(ping_frame(now, encoding)))
    return cached[1]


class LeanConnection(Connection, asyncio.Protocol):
    """One websocket: uvicorn's ``ws`` protocol class (built for every upgrade)."""

    __slots__ = (
        "_head",
        "_inbox",
        "_paused",
        "_reader",
        "_server",
        "_state",
        "_work",
        "transport",
    )

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        server = LeanServer.of(config, server_state, app_state)
        host = server.host
        super().__init__(host.hub if host is not None else None)  # type: ignore[arg-type]
        self._server = server
        self._state = _HANDSHAKE
        self._reader: ws.FrameReader | None = None
        self._inbox: deque[WireFrame] | None = None
        self._work: asyncio.Task[None] | None = None
        self._paused = False
        # The 101 answer, until the first frame goes out with it: one write (one system call)
        # instead of two for every socket opened.
        self._head = b""
        self.transport: asyncio.Transport = None  # type: ignore[assignment]

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._server.connections.add(self)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        opened = self._state >= _OPENING
        self._state = _GONE
        if self._work is not None:
            self._work.cancel()
            self._work = None
        if opened:
            self.closed()

    def data_received(self, data: bytes) -> None:
        if self._state == _HANDSHAKE:
            self._handshake(data)
            return
        reader = self._reader
        if reader is None or self._state >= _GONE:
            return
        try:
            messages = reader.feed(data)
        except ws.WebSocketError as exc:
            self._fail(exc.code, exc.reason)
            return
        for opcode, payload in messages:
            if opcode == ws.OP_TEXT:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    self._fail(ws.CLOSE_INVALID_DATA, "invalid UTF-8")
                    return
                self._frame(text)
            elif opcode == ws.OP_BINARY:
                self._frame(payload)
            elif opcode == ws.OP_PING:
                if self._state == _OPEN:
                    self._write(ws.control_frame(ws.OP_PONG, payload))
            elif opcode == ws.OP_CLOSE:
                self._close_received(payload)
                return

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def pause_writing(self) -> None:
        """The transport holds more than the send budget: a slow consumer."""
        if self._state == _OPEN:
            self.too_slow()

    def resume_writing(self) -> None:
        pass

    def shutdown(self) -> None:
        """uvicorn's shutdown (after the hub's drain, which said ``server_restart``)."""
        if self._state == _OPEN:
            super().shutdown()
        elif self._state < _OPEN:
            self.transport.close()

    # ---- the upgrade ---------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> None:
        method, target, headers = _request(data)
        raw_path, _, query = target.partition(b"?")
        host = self._server.host
        if host is None or unquote(raw_path.decode("latin-1")) != "/cable":
            self._hand_over(data)
            return
        values: dict[bytes, bytes] = dict(headers)
        key = values.get(b"sec-websocket-key", b"").decode("latin-1").strip()
        if method != b"GET" or not ws.valid_key(key):
            self._refuse(ws.http_response(400, "Bad Request", b"Invalid websocket upgrade\n", {}))
            return
        if values.get(b"sec-websocket-version", b"").strip() != b"13":
            self._refuse(
                ws.http_response(426, "Upgrade Required", b"", {"sec-websocket-version": "13"})
            )
            return
        offered = cp.parse_offered(
            v.decode("latin-1") for k, v in headers if k == b"sec-websocket-protocol"
        )
        query_sid = parse_qs(query.decode("latin-1")).get("sid")
        header_sid = values.get(b"x-anycable-restore-sid")
        sid = restore_sid(
            query_sid[0] if query_sid else None,
            header_sid.decode("latin-1") if header_sid is not None else None,
        )
        client = self._server.client(get_remote_addr(self.transport), headers)
        self._state = _OPENING
        self._work = self.hub.spawn(self._open(cp.select_subprotocol(offered), key, client, sid))

    async def _open(
        self, protocol: cp.Subprotocol | None, key: str, client: Any, sid: str | None
    ) -> None:
        hub = self.hub
        upgrades = self._server.host.upgrades if self._server.host is not None else None
        refused = await upgrades.check({"client": client}) if upgrades is not None else None
        if self._state != _OPENING:
            return
        if refused is not None:
            self._refuse(_http(error_response(refused)))
            return
        if protocol is None or not hub.accepting:
            # A client that offered only protocols we do not speak would abort on any answer
            # without one of them; refusing the handshake (403) says so at once.
            self._refuse(_FORBIDDEN)
            return
        self._head = ws.switching_protocols(key, protocol.name)
        self.transport.set_write_buffer_limits(high=hub.send_buffer_bytes)
        self._reader = ws.FrameReader(self._server.config.ws_max_size)
        self._state = _OPEN
        CABLE_CONNECTS.inc()
        session = CableSession(
            protocol, stream_ids=hub.stream_ids, now=hub.clock(), limits=hub.limits
        )
        try:
            await self._serve(self.open(session, sid))
        finally:
            if self._head and self._state < _GONE:  # nothing was said: the 101 alone
                self._write(b"")

    def _hand_over(self, data: bytes) -> None:
        """Not /cable: uvicorn's own websocket protocol takes the socket as it would have."""
        server = self._server
        server.connections.discard(self)
        self._state = _GONE
        other = WebSocketsSansIOProtocol(
            config=server.config, server_state=server.server_state, app_state=server.app_state
        )
        other.connection_made(self.transport)
        self.transport.set_protocol(other)
        other.data_received(data)

    def _refuse(self, response: bytes) -> None:
        self._state = _CLOSING
        self.transport.write(response)
        self.transport.close()

    # ---- frames in -----------------------------------------------------------------------------

    def _frame(self, frame: WireFrame) -> None:
        if self._work is not None:
            self._wait(frame)
            return
        session = self.session
        if session.closed:
            return
        actions = session.receive(frame, self.hub.clock())
        if any(isinstance(a, ASYNC_ACTIONS) for a in actions):
            self._work = self.hub.spawn(self._serve(self._run(actions)))
        else:
            self._run_now(actions)

    def _wait(self, frame: WireFrame) -> None:
        inbox = self._inbox
        if inbox is None:
            inbox = self._inbox = deque()
        inbox.append(frame)
        if len(inbox) >= INBOX_PAUSE and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    async def _serve(self, first: Awaitable[None]) -> None:
        """Await ``first``, then the frames that came meanwhile, in order; then reading goes
        on. A failure closes the socket (1011), as an ASGI app's would."""
        try:
            await first
            inbox = self._inbox
            while inbox and self._state == _OPEN:
                frame = inbox.popleft()
                if not self.session.closed:
                    await self._run(self.session.receive(frame, self.hub.clock()))
            self._inbox = None
        except Exception:
            self._fail(1011, "internal error")
            raise
        finally:
            self._work = None
            if self._paused and self._state < _GONE:
                self._paused = False
                self.transport.resume_reading()

    def _close_received(self, payload: bytes) -> None:
        if self._state == _OPEN:  # the client closes first: answer, then end
            self._write(ws.close_frame(ws.close_code(payload)))
        self._state = _GONE
        self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        if self._state == _OPEN:
            self._write(ws.close_frame(code, reason))
        self._state = _GONE
        self.transport.close()

    # ---- frames out ----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """A write off the fan-out's path: the 101 goes first, with it. (The fan-out and the
        pings need no check: they follow the welcome, which took the 101.)"""
        if self._head:
            data, self._head = self._head + data, b""
        self.transport.write(data)

    def deliver(self, event: EncodedEvent) -> None:
        """The fan-out's hot path (:meth:`Connection.deliver` inlined for the common case: no
        history hold, socket open)."""
        if self._held is not None or self._state != _OPEN:
            super().deliver(event)
            return
        position = event.position
        if position is not None:
            sent = self._sent
            last = sent.get(event.stream)
            if last is not None and last[0] == position[0] and position[1] <= last[1]:
                return
            sent[event.stream] = position
        hub = self.hub
        data = self.session.wired_frame(event)
        if data is None:  # no subscription holds the stream any more, or several do
            for data in self.session.deliver_wired(event):
                self.transport.write(data)
                hub.frames_out += 1
                hub.bytes_out += len(data)
            return
        self.transport.write(data)
        hub.frames_out += 1
        hub.bytes_out += len(data)

    def deliver_all(self, events: Sequence[EncodedEvent]) -> None:
        """Several events of one turn of the loop: their frames in one write."""
        if len(events) == 1 or self._held is not None or self._state != _OPEN:
            super().deliver_all(events)
            return
        sent = self._sent
        session = self.session
        frames: list[bytes] = []
        for event in events:
            position = event.position
            if position is not None:
                last = sent.get(event.stream)
                if last is not None and last[0] == position[0] and position[1] <= last[1]:
                    continue
                sent[event.stream] = position
            frames += session.deliver_wired(event)
        if frames:
            data = b"".join(frames)
            self.transport.write(data)
            self.hub.frames_out += len(frames)
            self.hub.bytes_out += len(data)

    def _emit(self, event: EncodedEvent) -> None:
        if self._state != _OPEN:
            return
        for data in self.session.deliver_wired(event):
            self.transport.write(data)
            _count(data)

    def _push_control(self, item: WireFrame | Close) -> None:
        if self._state != _OPEN:
            return
        if isinstance(item, Close):
            self._write(ws.close_frame(item.code, item.reason))
            self._state = _CLOSING
            if self._abort_at is None:
                self._abort_at = self.hub.clock() + CLOSE_TIMEOUT
                self.hub.watch(self)
            return
        data = ws.wire(item)
        self._write(data)
        _count(data)

    def ping(self, now: float) -> None:
        """Ten thousand sockets are 3,300 of these a second: the write, and little else."""
        if self._state != _OPEN:
            return
        session = self.session
        if session.ping(now):
            data = wired_ping(now, session.protocol.encoding)
            self.transport.write(data)
            hub = self.hub
            hub.frames_out += 1
            hub.bytes_out += len(data)
            if session.awaiting_pong:
                hub.watch(self)

    def abort(self) -> None:
        self._state = _GONE
        self.transport.abort()


def _count(data: bytes) -> None:
    """A frame off the fan-out's path, counted at once (the fan-out's are added up by the hub
    once per fan-out or tick)."""
    CABLE_FRAMES.inc()
    CABLE_BYTES.inc(len(data))


def _http(response: Any) -> bytes:
    """A Starlette response as bytes on the wire (the 429 of the upgrade limit)."""
    status = response.status_code
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    head += [name + b": " + value for name, value in response.raw_headers]
    return b"\r\n".join([*head, b"connection: close", b"", response.body])
