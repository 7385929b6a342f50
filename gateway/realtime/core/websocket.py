"""RFC 6455 as ``/cable`` needs it, without I/O: the handshake's answer, server frames framed
once, and a reader of client frames.

Why not ``websockets``' sans-I/O ``ServerProtocol`` (or picows) behind the lean transport: the
parser state they keep per connection (4.4 KiB for ``ServerProtocol``, 7.3 KiB for picows'
protocol with its buffers) is most of the 8 KiB an idle socket may cost, and their framing
happens per send, per socket, where /cable sends the same bytes to thousands of sockets.
``benchmarks/cable_framing.py`` measures the three side by side. What /cable needs is narrow:
no extensions (permessage-deflate is never negotiated), server frames unmasked and never
fragmented, client frames small (commands of at most 64 KiB; the session answers anything
bigger with a protocol error, and this layer cuts only absurd ones).

A :class:`FrameReader` holds nothing between frames but an incomplete tail, if any.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Final

from .errors import RealtimeError

try:  # websockets' C helper when it was built, else its pure Python one
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask as _apply_mask

from client_sdk.cable_protocol import WireFrame

GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
_KNOWN_OPS: Final = frozenset({OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})

CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_INVALID_DATA: Final = 1007
CLOSE_TOO_BIG: Final = 1009


class WebSocketError(RealtimeError):
    """The client broke the protocol: close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---- the handshake ----------------------------------------------------------------------------


def accept_value(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()


def valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


def switching_protocols(key: str, subprotocol: str | None) -> bytes:
    """The ``101`` answer (``key`` valid, see :func:`valid_key`)."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_value(key)}",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_response(status: int, reason: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A plain HTTP answer instead of the upgrade, after which the connection closes."""
    head = {
        "content-type": "text/plain; charset=utf-8",
        "content-length": str(len(body)),
        "connection": "close",
        **headers,
    }
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in head.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# ---- server frames ----------------------------------------------------------------------------


def _header(first: int, size: int) -> bytes:
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


# Headers of the common sizes, built once: a broadcast frame is then one concatenation.
_CACHED: Final = 8192
_TEXT_HEADERS: Final = tuple(_header(0x80 | OP_TEXT, n) for n in range(_CACHED))
_BINARY_HEADERS: Final = tuple(_header(0x80 | OP_BINARY, n) for n in range(_CACHED))


def text_frame(payload: bytes) -> bytes:
    size = len(payload)
    return (_TEXT_HEADERS[size] if size < _CACHED else _header(0x81, size)) + payload


def binary_frame(payload: bytes) -> bytes:
    size = len(payload)
    return (_BINARY_HEADERS[size] if size < _CACHED else _header(0x82, size)) + payload


def wire(frame: WireFrame) -> bytes:
    """A cable frame on the wire: ``str`` as a text frame, ``bytes`` as a binary frame."""
    if isinstance(frame, str):
        return text_frame(frame.encode())
    return binary_frame(frame)


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    return _header(0x80 | opcode, len(payload)) + payload[:125]


def close_frame(code: int, reason: str = "") -> bytes:
    return control_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])


def close_code(payload: bytes) -> int:
    """The code of a client's close frame (1005: none given)."""
    return struct.unpack_from("!H", payload)[0] if len(payload) >= 2 else 1005


# ---- client frames ----------------------------------------------------------------------------


class FrameReader:
    """Client frames out of the bytes of one connection: ``feed`` returns complete messages as
    ``(opcode, payload)`` (text and binary messages reassembled from fragments, control frames
    as they come); it raises :class:`WebSocketError` on anything RFC 6455 forbids a client."""

    __slots__ = ("_buffer", "_fragments", "_opcode", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = b""
        self._fragments: list[bytes] | None = None
        self._opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self._buffer + data if self._buffer else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            if first & 0x70:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
            if not second & 0x80:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "unmasked client frame")
            size, start = second & 0x7F, pos + 6
            if size == 126:
                if end - pos < 4:
                    break
                size = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 8
            elif size == 127:
                if end - pos < 10:
                    break
                size = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 14
            if size > self.max_size:
                raise WebSocketError(CLOSE_TOO_BIG, f"frame of {size} bytes")
            if end < start + size:
                break
            payload = _apply_mask(buf[start : start + size], buf[start - 4 : start])
            pos = start + size
            message = self._frame(first & 0x80, first & 0x0F, payload)
            if message is not None:
                out.append(message)
        self._buffer = buf[pos:] if pos < end else b""
        return out

    def _frame(self, fin: int, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode not in _KNOWN_OPS:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "fragmented or long control frame")
            return opcode, payload
        fragments = self._fragments
        if opcode == OP_CONT:
            if fragments is None:
                raise WebSocketError(CLOSE_PROTOCOL_ERROR, "continuation of nothing")
            fragments.append(payload)
            if sum(map(len, fragments)) > self.max_size:
                raise WebSocketError(CLOSE_TOO_BIG, "message too big")
            if not fin:
                return None
            self._fragments = None
            return self._opcode, b"".join(fragments)
        if fragments is not None:
            raise WebSocketError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
        if not fin:
            self._fragments, self._opcode = [payload], opcode
            return None
        return opcode, payload
