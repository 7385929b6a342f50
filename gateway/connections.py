"""Connections before the app sees them: a deadline for request headers, and a cap on open
connections that refuses clearly instead of running the process out of file descriptors.

uvicorn closes a connection left idle *between* requests (``timeout_keep_alive``), but waits
forever for the first request's headers, and for the rest of any request's headers once a byte
of them came: a socket that sends nothing, or a header byte every few seconds (slowloris),
holds a file descriptor for good, and 1,100 of them took a server with the common limit of
1,024 offline. :class:`GuardedHttpProtocol` (uvicorn's httptools protocol) gives each request
``header_timeout`` seconds, counted from the connection's start or the previous response, to
complete its headers, and ``MAX_HEADER_BYTES`` for them; and answers a connection over the cap
with a ``503`` and closes it.

The cap counts every open HTTP and websocket connection of the process (uvicorn's own set):
``limit_concurrency`` is no help, as it answers only requests whose headers arrived, so idle
sockets pile up under it unrefused.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from client_sdk import protocol as p

from .http_cycle import OneWriteCycle

log = logging.getLogger("inboxgate.connections")

DEFAULT_HEADER_TIMEOUT = 10.0
# The request line and headers of one request (Puma allows 112 KiB, nginx 32 KiB): httptools
# sets no limit, and one endless header line would grow in memory until the deadline.
MAX_HEADER_BYTES = 64 * 1024
# File descriptors kept out of the cap for what the process opens itself: the listening
# socket, database and Redis connections, attachment files, logs, webhook deliveries.
FD_RESERVE = 64
# An unlimited descriptor limit still needs a finite cap.
FD_UNLIMITED = 1 << 20
# After a refusal (503, 408, 431) the rest of the request is read and dropped for this long
# at most, or until the client closes: closing on unread data would reset the connection, and
# the client could lose the answer. Connections over the cap linger only so many at once: they
# hold descriptors of the reserve.
LINGER = 1.0


def fd_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FD_UNLIMITED if soft == resource.RLIM_INFINITY else int(soft)


def connection_cap(configured: int, fds: int | None = None) -> int:
    """The most connections one process keeps open: ``configured``, or (0) what the file
    descriptor limit ``fds`` leaves after a reserve of a tenth (at least ``FD_RESERVE``)."""
    fds = fd_limit() if fds is None else fds
    derived = max(16, fds - max(FD_RESERVE, fds // 10))
    if not configured:
        return derived
    if configured > derived:
        log.warning(
            "INBOXGATE_MAX_CONNECTIONS=%d leaves too few of the %d file descriptors this "
            "process may open (ulimit -n): past %d connections it may fail to open files, "
            "database connections or new sockets",
            configured, fds, derived,
        )  # fmt: skip
    return configured


def _response(status: int, reason: str, description: str, extra: dict[str, str]) -> bytes:
    body = p.encode(p.DetailedError(status=status, error=reason, description=description))
    headers = {
        "content-type": "application/json; charset=utf-8",
        "content-length": str(len(body)),
        "connection": "close",
        **extra,
    }
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


class ConnectionGuard:
    """One process's limits, and whether it is over its cap (logged once per change, not once
    per refused socket)."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max(1, max_connections)
        self.header_timeout = header_timeout
        # "Back under the limit" only once well under it, so a count that hovers at the cap
        # does not log a line per connection.
        self.resume_below = max(1, self.max_connections * 9 // 10)
        self.full = False
        self.refused = 0
        self.lingering = 0
        self.max_lingering = max(8, self.max_connections // 20)
        # By then connections that were only holding a socket have timed out.
        retry_after = max(1, min(30, math.ceil(header_timeout)))
        self.refusal = _response(
            503, "Service Unavailable",
            "The server has too many open connections; retry shortly",
            {"retry-after": str(retry_after)},
        )  # fmt: skip
        self.too_large = _response(
            431, "Request Header Fields Too Large",
            f"The request headers are larger than {MAX_HEADER_BYTES} bytes", {},
        )  # fmt: skip
        self.timeout = _response(
            408, "Request Timeout",
            f"The request headers did not arrive within {header_timeout:g} s", {},
        )  # fmt: skip

    def admit(self, open_connections: int) -> bool:
        if open_connections < self.max_connections:
            self.settle(open_connections)
            return True
        self.refused += 1
        if not self.full:
            self.full = True
            log.warning(
                "connection limit reached: %d connections open; new connections are answered "
                "503 until fewer than %d are (INBOXGATE_MAX_CONNECTIONS)",
                open_connections, self.resume_below,
            )  # fmt: skip
        return False

    def settle(self, open_connections: int) -> None:
        if self.full and open_connections < self.resume_below:
            self.full = False
            log.warning(
                "back under the connection limit: %d connections open; %d were refused",
                open_connections, self.refused,
            )  # fmt: skip
            self.refused = 0


class Deadline:
    """A time by which something must have happened, kept by one timer that outlives it.

    A connection sets and clears its deadlines once per request (its headers' and, between
    requests, uvicorn's keep-alive timeout). A timer made and cancelled each time
    (``call_later``, ``cancel``: about 1.8 µs on uvloop, a twentieth of a GET's work in the
    loop) costs more than the rest of the guard, so clearing it (``due = None``, a store, no
    call: it happens for every chunk a connection reads) leaves the timer running:
    when it fires it finds no deadline (it stops; the next :meth:`start` makes one again), a
    later one (it moves on to it), or one that passed (``expired`` runs). The timer holds the
    callback, this object does not: no reference cycle outlives a cancelled timer."""

    __slots__ = ("_loop", "_timer", "due")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self.due: float | None = None  # loop time; None: nothing is due

    def start(self, seconds: float, expired: Callable[[], None]) -> None:
        due = self._loop.time() + seconds
        self.due = due
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._fire, expired)

    def cancel(self) -> None:
        self.due = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self, expired: Callable[[], None]) -> None:
        self._timer = None
        due = self.due
        if due is None:
            return
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._fire, expired)
            return
        self.due = None
        expired()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header deadline and the connection cap of the
    :class:`ConnectionGuard` found on its config (``config.connection_guard``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        guard: ConnectionGuard | None = getattr(config, "connection_guard", None)
        if guard is None:  # a plain uvicorn config (the benchmark baseline): the defaults
            guard = ConnectionGuard(connection_cap(0), DEFAULT_HEADER_TIMEOUT)
            config.__dict__["connection_guard"] = guard  # one guard per server, not per socket
        self.guard = guard
        self.headers_due = Deadline(self.loop)  # the headers being read are late then
        self.idle_due = Deadline(self.loop)  # uvicorn's keep-alive timeout, between requests
        self.linger_timer: asyncio.TimerHandle | None = None  # the close after a refusal
        self.in_headers = False
        # Whether what arrives now is a request's line and headers (or nothing yet), and how
        # many bytes of them came.
        self.reading_headers = True
        self.header_bytes = 0
        self.refused = False  # over the cap: never counted, never parsed
        self.draining = False  # answered: what else arrives is dropped
        self.pending: bytes | None = None  # the 503, sent when the request starts to arrive
        self.lingers = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.guard.admit(len(self.connections)):
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.draining:
            if self.pending is not None:
                self.transport.write(self.pending)
                self.transport.write_eof()
                self.pending = None
            return
        reading = self.reading_headers
        super().data_received(data)
        if reading and self.reading_headers and not self.transport.is_closing():
            # Only chunks wholly within the headers count: a chunk that completes them may
            # carry a body, and is at most one read (256 KiB) anyway.
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES:
                self._goodbye(self.guard.too_large)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if self.refused:
            if self.lingers:
                self.guard.lingering -= 1
            return
        super().connection_lost(exc)
        self.guard.settle(len(self.connections))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_headers = True
        self._arm()

    def on_headers_complete(self) -> None:
        self.in_headers = self.reading_headers = False
        self.header_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_headers = True  # the next request, if any

    def on_response_complete(self) -> None:
        # uvicorn's own, but for its keep-alive timer (made after every response, cancelled
        # by the next request), which is a ``Deadline`` here.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.idle_due.due = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.idle_due.start(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def _unset_keepalive_if_required(self) -> None:
        self.idle_due.due = None  # uvicorn calls this for every chunk that arrives

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # The one place every request's cycle passes (pipelined ones too) before the app sees
        # it: from here on it writes a response of known length in one write.
        cycle.__class__ = OneWriteCycle
        super()._start_asgi_task(cycle, app)

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self._cancel()  # the socket is the websocket's: no timer holds this protocol on
        # The socket is the websocket protocol's now. The parser holds this protocol's bound
        # callbacks and this protocol holds the parser: a cycle of ~23 objects per upgrade, left
        # to the garbage collector (10,000 sockets opening made every young collection sweep
        # some 10,000 of them). Without the parser, reference counting frees it at once.
        del self.parser

    def _refuse(self, transport: asyncio.Transport) -> None:
        """Answer 503 when the request starts to arrive (a response before the request
        confuses some clients), then drop the rest; ``LINGER`` seconds in all."""
        self.refused = self.draining = True
        self.transport = transport
        if self.guard.lingering >= self.guard.max_lingering or not transport.can_write_eof():
            # A flood: the descriptors matter more than a clean goodbye.
            transport.write(self.guard.refusal)
            transport.close()
            return
        self.guard.lingering += 1
        self.lingers = True
        self.pending = self.guard.refusal
        self.linger_timer = self.loop.call_later(LINGER, transport.close)

    def _goodbye(self, response: bytes) -> None:
        """Answer, half-close, and drop what else arrives until the client closes or
        ``LINGER`` passes."""
        self._cancel()
        self.draining = True
        self.transport.write(response)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger_timer = self.loop.call_later(LINGER, self.transport.close)

    def _arm(self) -> None:
        """The headers now read are due within ``header_timeout``; a deadline already counting
        stays (a first request's runs from the connection's start)."""
        if self.headers_due.due is None:
            self.headers_due.start(self.guard.header_timeout, self._late)

    def _disarm(self) -> None:
        self.headers_due.due = None

    def _cancel(self) -> None:
        """No deadline and no timer: the connection is closing, or is no longer HTTP."""
        self.headers_due.cancel()
        self.idle_due.cancel()
        if self.linger_timer is not None:
            self.linger_timer.cancel()
            self.linger_timer = None

    def _late(self) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request waits on the one being answered, not on its client.
            self._arm()
            return
        if self.in_headers:
            self._goodbye(self.guard.timeout)
        else:
            self.transport.close()  # nothing came: nobody to tell
