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
        self.header_timer: asyncio.TimerHandle | None = None
        # When the headers being read are late; None while none are read. The timer above
        # fires at or before it and is moved on when it fires early (see ``_arm``).
        self.header_deadline: float | None = None
        # The same for uvicorn's keep-alive timeout: when an idle connection closes.
        self.idle_timer: asyncio.TimerHandle | None = None
        self.idle_deadline: float | None = None
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
        # uvicorn's own, but for its keep-alive timer, which is ``_wait_idle``'s.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.idle_deadline = None
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._wait_idle()

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn calls this for every chunk that arrives: the timer stays (``_wait_idle``).
        self.idle_deadline = None

    def _wait_idle(self) -> None:
        """uvicorn's keep-alive timeout with one timer per connection, as ``_arm``'s: uvicorn
        makes a timer after each response and cancels it when the next request arrives."""
        deadline = self.loop.time() + self.timeout_keep_alive
        self.idle_deadline = deadline
        if self.idle_timer is None:
            self.idle_timer = self.loop.call_at(deadline, self._idle_over)

    def _idle_over(self) -> None:
        self.idle_timer = None
        deadline = self.idle_deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self.idle_timer = self.loop.call_at(deadline, self._idle_over)
            return
        self.idle_deadline = None
        self.timeout_keep_alive_handler()

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
        self.header_timer = self.loop.call_later(LINGER, transport.close)

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
        self.header_timer = self.loop.call_later(LINGER, self.transport.close)

    def _arm(self) -> None:
        """The headers now read are due within ``header_timeout``. A keep-alive connection
        reads a request's headers many times a second: a timer made and cancelled for each
        (``call_later``, ``cancel``: about 2 µs, a tenth of a GET's own work in the loop)
        would cost more than the rest of the guard. So the connection keeps one timer, which
        ``_disarm`` leaves running: when it fires it finds the deadline gone (no headers
        due, and the next ``_arm`` makes a timer again) or later (a request begun since: the
        timer moves on to it), and only a deadline that passed is late. A deadline already
        counting stays (a first request's runs from the connection's start)."""
        if self.header_deadline is not None:
            return
        deadline = self.loop.time() + self.guard.header_timeout
        self.header_deadline = deadline
        if self.header_timer is None:
            self.header_timer = self.loop.call_at(deadline, self._late)

    def _disarm(self) -> None:
        self.header_deadline = None

    def _cancel(self) -> None:
        """No deadline and no timer: the connection is closing or its timer is reused."""
        self.header_deadline = self.idle_deadline = None
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None

    def _late(self) -> None:
        self.header_timer = None
        deadline = self.header_deadline
        if deadline is None:
            return
        if self.loop.time() < deadline:
            self.header_timer = self.loop.call_at(deadline, self._late)
            return
        self.header_deadline = None
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
