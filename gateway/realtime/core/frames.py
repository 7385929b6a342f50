"""Broadcast frames, encoded once: per-event caches, per-subscription splicers, stream ids.

A logged event's payload (``{"event","data"}`` JSON bytes, as the store keeps it) is the
``message`` of every frame that carries it. It is decoded to text at most once per node and
re-encoded to MessagePack at most once per node (:class:`EncodedEvent`). Everything after the
identifier (the body, the stream position, the closing brace) is the same for every subscriber,
so the event caches it too; each subscription only prepends its own head, the identifier
JSON-string-encoded once when the subscription is confirmed. The fan-out path does one string
concatenation per subscriber and no serialisation.

Spliced frames are exactly the frames :func:`client_sdk.cable_protocol.encode` would produce for
the equivalent :class:`~client_sdk.cable_protocol.Broadcast` (the tests prove it), with the keys
in the captured order: ``identifier``, ``message``, ``stream_id``, ``epoch``, ``offset``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final, Protocol

import msgspec

from client_sdk import cable_protocol as cp
from client_sdk.cable_protocol import Encoding, WireFrame

from .websocket import wire

_json_encode = msgspec.json.encode
_msgpack_encode = msgspec.msgpack.encode


_K_IDENTIFIER: Final = _msgpack_encode("identifier")
_K_MESSAGE: Final = _msgpack_encode("message")
_K_STREAM_ID: Final = _msgpack_encode("stream_id")
_K_EPOCH: Final = _msgpack_encode("epoch")
_K_OFFSET: Final = _msgpack_encode("offset")
_FIXMAP_2: Final = b"\x82"
_FIXMAP_5: Final = b"\x85"


class StreamEvent(Protocol):
    """An event at a stream position, as the shell hands it over: a broker message or a logged
    entry fits (``epoch`` None: a transient event). The core knows no broker or store type."""

    @property
    def stream(self) -> str: ...
    @property
    def epoch(self) -> str | None: ...
    @property
    def offset(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


class EncodedEvent:
    """One event on one stream as fanned out on this node, with lazily built, cached encodings.

    Everything after the identifier is the same for every subscriber of the stream (stream ids
    are node-wide), so the event caches that whole tail (``message`` value, position, closing
    brace) per encoding; a subscriber's frame is then its cached head plus this tail.

    ``epoch`` None marks a transient event (typing, presence): no stream position is sent.
    The payload is trusted (the gateway encoded it); the msgpack forms of a payload that is not
    JSON raise ``msgspec.DecodeError``.
    """

    __slots__ = (
        "_json_tail",
        "_json_tail_pos",
        "_mp_tail",
        "_mp_tail_pos",
        "_msgpack",
        "_stream_id",
        "_text",
        "_wired",
        "epoch",
        "offset",
        "payload",
        "position",
        "stream",
    )

    def __init__(self, stream: str, epoch: str | None, offset: int, payload: bytes) -> None:
        self.stream = stream
        self.epoch = epoch
        self.offset = offset
        self.payload = payload
        # ``(epoch, offset)``, one tuple for every socket that remembers it sent this event.
        self.position = (epoch, offset) if epoch is not None else None
        self._text: str | None = None
        self._msgpack: bytes | None = None
        self._json_tail: str | None = None
        self._mp_tail: bytes | None = None
        # Position tails are valid for one stream id; a second StreamIds instance (tests) simply
        # rebuilds them.
        self._stream_id: str | None = None
        self._json_tail_pos: str | None = None
        self._mp_tail_pos: bytes | None = None
        self._wired: dict[Splicer, bytes] | None = None

    @classmethod
    def of(cls, entry: StreamEvent) -> EncodedEvent:
        return cls(entry.stream, entry.epoch, entry.offset, entry.payload)

    @property
    def text(self) -> str:
        """The payload as ``str``: text frames are ``str`` in ASGI, so decode once, here."""
        if self._text is None:
            self._text = self.payload.decode()
        return self._text

    @property
    def msgpack(self) -> bytes:
        """The payload re-encoded as a native MessagePack value (reference §8.2)."""
        if self._msgpack is None:
            self._msgpack = _msgpack_encode(msgspec.json.decode(self.payload))
        return self._msgpack

    def json_tail(self, stream_id: str, positions: bool) -> str:
        """``<message>[,"stream_id":…,"epoch":…,"offset":…]}``"""
        epoch = self.epoch
        if not positions or epoch is None:
            if self._json_tail is None:
                self._json_tail = self.text + "}"
            return self._json_tail
        if self._json_tail_pos is None or self._stream_id != stream_id:
            self._reset_positions(stream_id)
            self._json_tail_pos = (
                f'{self.text},"stream_id":{_json_encode(stream_id).decode()}'
                f',"epoch":{_json_encode(epoch).decode()},"offset":{self.offset}}}'
            )
        return self._json_tail_pos

    def msgpack_tail(self, stream_id: str, positions: bool) -> bytes:
        """The ``message`` value, then the position entries of a 5-entry map when sent."""
        epoch = self.epoch
        if not positions or epoch is None:
            return self.msgpack
        if self._mp_tail_pos is None or self._stream_id != stream_id:
            self._reset_positions(stream_id)
            self._mp_tail_pos = b"".join(
                (
                    self.msgpack,
                    _K_STREAM_ID,
                    _msgpack_encode(stream_id),
                    _K_EPOCH,
                    _msgpack_encode(epoch),
                    _K_OFFSET,
                    _msgpack_encode(self.offset),
                )
            )
        return self._mp_tail_pos

    def wired(self, splicer: Splicer, stream_id: str) -> bytes:
        """The websocket frame of this event for ``splicer``'s subscriptions: framed once per
        subscription identifier (splicers are shared, see :func:`splicer_for`), then the same
        bytes for every socket that holds one."""
        cache = self._wired
        if cache is None:
            cache = self._wired = {}
        framed = cache.get(splicer)
        if framed is None:
            framed = cache[splicer] = wire(splicer.frame(self, stream_id))
        return framed

    def _reset_positions(self, stream_id: str) -> None:
        if self._stream_id != stream_id:
            self._stream_id = stream_id
            self._json_tail_pos = None
            self._mp_tail_pos = None
            self._wired = None

    def __repr__(self) -> str:
        return f"EncodedEvent({self.stream!r}, {self.epoch!r}, {self.offset}, {self.payload!r})"


class JsonSplicer:
    """Text frames for one subscription: ``{"identifier":…,"message":<payload>[,position]}``."""

    __slots__ = ("_head", "_positions")

    def __init__(self, identifier: str, *, positions: bool) -> None:
        self._head = '{"identifier":' + _json_encode(identifier).decode() + ',"message":'
        self._positions = positions

    def frame(self, event: EncodedEvent, stream_id: str) -> str:
        return self._head + event.json_tail(stream_id, self._positions)


class MsgpackSplicer:
    """Binary frames for one subscription: a fixmap of 2 (or 5, with the position) entries."""

    __slots__ = ("_head2", "_head5", "_positions")

    def __init__(self, identifier: str, *, positions: bool) -> None:
        body = _K_IDENTIFIER + _msgpack_encode(identifier) + _K_MESSAGE
        self._head2 = _FIXMAP_2 + body
        self._head5 = _FIXMAP_5 + body
        self._positions = positions

    def frame(self, event: EncodedEvent, stream_id: str) -> bytes:
        head = self._head5 if self._positions and event.epoch is not None else self._head2
        return head + event.msgpack_tail(stream_id, self._positions)


Splicer = JsonSplicer | MsgpackSplicer


# Splicers by (encoding, identifier, positions): the tabs of one contact subscribe with the same
# identifier, and share one splicer and so one framed copy of each event. Bounded: a full cache
# starts over, which costs sharing, never correctness.
_SPLICERS: dict[tuple[Encoding, str, bool], Splicer] = {}
SPLICER_CACHE = 65_536


def splicer_for(encoding: Encoding, identifier: str, *, positions: bool) -> Splicer:
    """The splicer of one subscription; ``positions`` on the extended protocol only (plain
    clients ignore them, and Chatwoot's frames carry none)."""
    key = (encoding, identifier, positions)
    found = _SPLICERS.get(key)
    if found is None:
        if len(_SPLICERS) >= SPLICER_CACHE:
            _SPLICERS.clear()
        if encoding == "json":
            found = JsonSplicer(identifier, positions=positions)
        else:
            found = MsgpackSplicer(identifier, positions=positions)
        _SPLICERS[key] = found
    return found


def splice(
    encoding: Encoding, identifier: str, event: EncodedEvent, stream_id: str, *, positions: bool
) -> WireFrame:
    """One frame without a cached splicer (tests, one-offs); the fan-out path keeps splicers."""
    return splicer_for(encoding, identifier, positions=positions).frame(event, stream_id)


_PING_CACHE: dict[str, tuple[int, WireFrame]] = {}


def ping_frame(now: float, encoding: Encoding) -> WireFrame:
    """The ping for this second: the same bytes for every connection, so built once."""
    second = int(now)
    cached = _PING_CACHE.get(encoding)
    if cached is not None and cached[0] == second:
        return cached[1]
    frame = cp.encode(cp.Ping(message=second), encoding)
    _PING_CACHE[encoding] = (second, frame)
    return frame


class StreamIds:
    """Opaque, stable ``stream_id`` values: HMAC-SHA256(secret, stream name), 128 bits, base64url.

    Clients echo these in ``history.streams``; they reveal neither the stream name nor any
    pubsub token, and cannot be forged for a stream. Stable for as long as ``secret`` is, which
    history across a restart needs (our epochs persist with the log). Sessions keep the reverse
    map for the streams they hold.
    """

    __slots__ = ("_cache", "_cache_max", "_key")

    def __init__(self, secret: bytes, *, cache_max: int = 65_536) -> None:
        if len(secret) < 16:
            raise ValueError("stream id secret must be at least 16 bytes")
        self._key = hmac.new(secret, b"inboxgate cable stream ids", hashlib.sha256).digest()
        self._cache: dict[str, str] = {}
        self._cache_max = cache_max

    def __call__(self, stream: str) -> str:
        found = self._cache.get(stream)
        if found is None:
            digest = hmac.new(self._key, stream.encode(), hashlib.sha256).digest()[:16]
            found = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if len(self._cache) >= self._cache_max:
                self._cache.clear()
            self._cache[stream] = found
        return found
