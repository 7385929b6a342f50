"""A response whose length is known leaves in one write.

uvicorn's request cycle writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body when ``http.response.body`` comes: two ``send`` system
calls per response, each a TCP segment, and on loopback each segment's receive processing runs
in the sender's system call too. :class:`OneWriteCycle` holds the head of a response that
announces its ``Content-Length`` until its body arrives, and writes both at once when the body
is whole. Everything else (a streamed or chunked body, ``HEAD``, the access log, a paused
transport) goes through uvicorn's own ``send``, unchanged.

The head is checked as uvicorn checks it (no control character in a value, no separator in a
name), with one search over all names and one over all values instead of two per header.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's cycle with the head held until the body (see the module's docstring).

    Made from a cycle uvicorn built, by changing its class when its task starts
    (:meth:`gateway.connections.GuardedHttpProtocol._start_asgi_task`): uvicorn builds the
    cycle inside its header callback, which would otherwise have to be copied whole."""

    head: bytes | None = None  # the held status line and headers

    async def send(self, message: Any) -> None:
        head = self.head
        if head is not None:
            self.head = None
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()  # as uvicorn waits before any write
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and len(message.get("body", b"")) == self.expected_content_length
                and not self.disconnected
            ):
                self.expected_content_length = 0
                self.transport.write(head + message.get("body", b""))
                self.response_complete = True
                self.message_event.set()
                if not self.keep_alive:
                    self.transport.close()
                self.on_response()
                return
            # Anything else: the head goes as uvicorn would have written it, then the rest.
            if not self.disconnected:
                self.transport.write(head)
            await super().send(message)
            return
        if not self.response_started and self._holds(message):
            self.head = self._head(message)
            if self.head is not None:
                return
        await super().send(message)

    def _holds(self, message: Any) -> bool:
        return (
            message["type"] == "http.response.start"
            and not self.access_log
            and not self.disconnected
            and not self.flow.write_paused
            and self.scope["method"] != "HEAD"
            and self.chunked_encoding is None
        )

    def _head(self, message: Any) -> bytes | None:
        """The start's head as uvicorn writes it, with the cycle's state as uvicorn leaves it;
        None (nothing changed) when uvicorn's own path must run: no Content-Length, a header
        it would refuse, a ``Connection`` header, or a status it has no line for."""
        line = STATUS_LINE.get(message["status"])
        defaults = _rendered(self.default_headers)
        if line is None or defaults is None:
            return None
        length: int | None = None
        parts = [line, defaults]
        names = []
        values = []
        for name, value in message.get("headers", ()):
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" or name == b"connection":
                return None
            names.append(name)
            values.append(value)
            parts += (name, b": ", value, b"\r\n")
        if length is None or HEADER_RE.search(b"".join(names)):
            return None
        if HEADER_VALUE_RE.search(b"".join(values)):
            return None  # uvicorn's path raises its own error
        self.response_started = True
        self.waiting_for_100_continue = False
        self.chunked_encoding = False
        self.expected_content_length = length
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


# The server's default headers (server, date), rendered once per list: uvicorn builds a new
# list when the date changes, once a second.
_DEFAULTS: tuple[list[tuple[bytes, bytes]] | None, bytes | None] = (None, None)


def _rendered(defaults: list[tuple[bytes, bytes]]) -> bytes | None:
    """``defaults`` as head lines; None when uvicorn would refuse one of them."""
    global _DEFAULTS
    held, rendered = _DEFAULTS
    if held is defaults:
        return rendered
    rendered = b"".join(name.lower() + b": " + value + b"\r\n" for name, value in defaults)
    for name, value in defaults:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            rendered = None
    _DEFAULTS = (defaults, rendered)
    return rendered
