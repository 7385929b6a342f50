"""The Action Cable wire protocol family spoken on ``/cable``: shapes, codecs, subprotocols.

Shared by the gateway (which decodes commands and encodes frames) and the SDK (which does the
reverse), so both directions have an encoder and a decoder here. It depends only on the standard
library and msgspec; encoders and decoders are built once, at module level.

Contract: ``reference/chatwoot-public-api.md`` §6 and ``reference/anycable-ext-protocol.md``.

* Four subprotocols: ``actioncable-v1-json`` and ``actioncable-v1-ext-json`` (text frames),
  ``actioncable-v1-msgpack`` and ``actioncable-v1-ext-msgpack`` (binary frames, the same maps as
  the JSON objects, reference §8.2). Protobuf is deliberately not supported.
* A frame on the wire is ``str`` (a text frame) or ``bytes`` (a binary frame); see ``WireFrame``.
* Decoders accept arbitrary input and only ever raise :class:`CableProtocolError`.

Exceptions (under the SDK's one root, :class:`~client_sdk.errors.InboxError`)::

    ProtocolError
    └── CableProtocolError   a frame that does not decode to a well-formed command or frame
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal, TypeAlias

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .errors import ProtocolError

Encoding = Literal["json", "msgpack"]
# str is sent as a text frame, bytes as a binary frame (the ASGI and websockets conventions).
WireFrame: TypeAlias = str | bytes


class CableProtocolError(ProtocolError, ValueError):
    """A frame that is not a well-formed command (or server frame). ``str(exc)`` says why.

    A :class:`~client_sdk.errors.ProtocolError`, so ``except InboxError`` catches it as it
    catches everything the SDK raises; still a ``ValueError`` for code written before."""


# --------------------------------------------------------------------------------------------
# Subprotocols
# --------------------------------------------------------------------------------------------

JSON: Final = "actioncable-v1-json"
EXT_JSON: Final = "actioncable-v1-ext-json"
MSGPACK: Final = "actioncable-v1-msgpack"
EXT_MSGPACK: Final = "actioncable-v1-ext-msgpack"


class Subprotocol(Struct, frozen=True):
    """A negotiated protocol. ``name`` is None when the client offered nothing (plain JSON,
    no ``Sec-WebSocket-Protocol`` header in the answer)."""

    name: str | None
    encoding: Encoding
    extended: bool

    @property
    def binary(self) -> bool:
        return self.encoding == "msgpack"


SUBPROTOCOLS: Final[dict[str, Subprotocol]] = {
    JSON: Subprotocol(JSON, "json", False),
    EXT_JSON: Subprotocol(EXT_JSON, "json", True),
    MSGPACK: Subprotocol(MSGPACK, "msgpack", False),
    EXT_MSGPACK: Subprotocol(EXT_MSGPACK, "msgpack", True),
}
NO_SUBPROTOCOL: Final = Subprotocol(None, "json", False)

# Real clients offer one of ours at most (@anycable/core a single name, plus an
# ``anycable-token.*`` entry; @rails/actioncable ``actioncable-v1-json, actioncable-unsupported``),
# so the order only matters to a client that offers several, which can by definition speak each:
# the extended protocol is a superset (resume, history), and JSON is what every client has built in.
SERVER_PREFERENCE: Final = (EXT_JSON, EXT_MSGPACK, JSON, MSGPACK)


def parse_offered(header_values: Iterable[str]) -> list[str]:
    """Offered names from raw ``Sec-WebSocket-Protocol`` header values (comma lists)."""
    return [name.strip() for value in header_values for name in value.split(",") if name.strip()]


def select_subprotocol(
    offered: Sequence[str], preference: Sequence[str] = SERVER_PREFERENCE
) -> Subprotocol | None:
    """The protocol to speak, by server preference among the names the client offered.

    Nothing offered: plain JSON without a header (what Chatwoot accepts). Offered names but none
    of ours (only ``actioncable-unsupported``, ``anycable-token.*``, protobuf...): None, and the
    handshake should be refused, because a client that offered protocols aborts the connection
    unless one of them is echoed (reference §1).
    """
    if not offered:
        return NO_SUBPROTOCOL
    offered_set = set(offered)
    for name in preference:
        if name in offered_set and name in SUBPROTOCOLS:
            return SUBPROTOCOLS[name]
    return None


# --------------------------------------------------------------------------------------------
# Client -> server commands
# --------------------------------------------------------------------------------------------


class StreamPosition(Struct, frozen=True, kw_only=True):
    """The last ``{epoch, offset}`` a client received on one ``stream_id``."""

    epoch: str
    offset: int


class HistoryRequest(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``history``: ``since`` is client-clock Unix seconds; ``streams`` maps stream ids (as the
    server sent them) to positions. Requested when ``since > 0`` or ``streams`` is present."""

    since: int | float | None = None
    streams: dict[str, StreamPosition] | None = None

    @property
    def requested(self) -> bool:
        return (self.since is not None and self.since > 0) or self.streams is not None


class Subscribe(
    Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="command", tag="subscribe"
):
    identifier: str
    history: HistoryRequest | None = None


class Unsubscribe(Struct, frozen=True, kw_only=True, tag_field="command", tag="unsubscribe"):
    identifier: str


class Perform(Struct, frozen=True, kw_only=True, tag_field="command", tag="message"):
    """The ``message`` command. ``data`` is a JSON *string* in both encodings (reference §8.2)."""

    identifier: str
    data: str


class History(Struct, frozen=True, kw_only=True, tag_field="command", tag="history"):
    identifier: str
    history: HistoryRequest


class Pong(Struct, frozen=True, tag_field="command", tag="pong"):
    pass


class UnknownCommand(Struct, frozen=True, kw_only=True):
    """A command the server tolerates and ignores (``whisper``, ``join``, ``presence``...)."""

    command: str
    identifier: str | None = None


ClientCommand: TypeAlias = Subscribe | Unsubscribe | Perform | History | Pong | UnknownCommand


class _RawCommand(Struct, kw_only=True):
    command: str
    identifier: str | None = None
    data: Any = None
    history: HistoryRequest | None = None


# --------------------------------------------------------------------------------------------
# Server -> client frames. Field order follows the captures (reference §8.2, §11).
# --------------------------------------------------------------------------------------------


class Welcome(Struct, frozen=True, kw_only=True, tag_field="type", tag="welcome"):
    sid: str | UnsetType = UNSET
    restored: bool | UnsetType = UNSET
    restored_ids: list[str] | UnsetType = UNSET


class Ping(Struct, frozen=True, kw_only=True, tag_field="type", tag="ping"):
    message: int


class Disconnect(Struct, frozen=True, kw_only=True, tag_field="type", tag="disconnect"):
    reason: str
    reconnect: bool


class ConfirmSubscription(
    Struct, frozen=True, kw_only=True, tag_field="type", tag="confirm_subscription"
):
    identifier: str


class RejectSubscription(
    Struct, frozen=True, kw_only=True, tag_field="type", tag="reject_subscription"
):
    identifier: str


class ConfirmHistory(Struct, frozen=True, kw_only=True, tag_field="type", tag="confirm_history"):
    identifier: str


class RejectHistory(Struct, frozen=True, kw_only=True, tag_field="type", tag="reject_history"):
    identifier: str


class Broadcast(Struct, frozen=True, kw_only=True):
    """A data message. Logged broadcasts on the extended protocol carry the stream position."""

    identifier: str
    message: Any
    stream_id: str | UnsetType = UNSET
    epoch: str | UnsetType = UNSET
    offset: int | UnsetType = UNSET


class UnknownFrame(Struct, frozen=True, kw_only=True):
    """A server frame this SDK does not know (``presence``...): skipped, never an error."""

    type: str | None = None
    identifier: str | None = None


ServerFrame: TypeAlias = (
    Welcome
    | Ping
    | Disconnect
    | ConfirmSubscription
    | RejectSubscription
    | ConfirmHistory
    | RejectHistory
    | Broadcast
    | UnknownFrame
)


class _RawFrame(Struct, kw_only=True):
    type: str | None = None
    identifier: str | None = None
    message: Any = UNSET
    sid: str | None = None
    restored: bool | None = None
    restored_ids: list[str] | None = None
    reason: str | None = None
    reconnect: bool | None = None
    stream_id: str | None = None
    epoch: str | None = None
    offset: int | None = None


# --------------------------------------------------------------------------------------------
# Codecs, built once
# --------------------------------------------------------------------------------------------

_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_json_command = msgspec.json.Decoder(_RawCommand)
_msgpack_command = msgspec.msgpack.Decoder(_RawCommand)
_json_frame = msgspec.json.Decoder(_RawFrame)
_msgpack_frame = msgspec.msgpack.Decoder(_RawFrame)

# What a decoder may raise on hostile input: malformed or mistyped data, lone surrogates in a
# str, nesting deeper than the C stack allows.
_DECODE_FAILURES = (msgspec.DecodeError, UnicodeError, RecursionError, ValueError)


def encode(value: ClientCommand | ServerFrame, encoding: Encoding) -> WireFrame:
    """One command or frame, as the frame to send: ``str`` for JSON, ``bytes`` for msgpack."""
    if encoding == "json":
        return _json_encoder.encode(value).decode()
    return _msgpack_encoder.encode(value)


def _decode_raw(frame: WireFrame, encoding: Encoding, json_dec: Any, msgpack_dec: Any) -> Any:
    try:
        if encoding == "json":
            return json_dec.decode(frame)
        if not isinstance(frame, bytes):
            # A text frame on a binary protocol: the JS client would drop it too (§8.2).
            raise CableProtocolError("text frame on a msgpack connection")
        return msgpack_dec.decode(frame)
    except _DECODE_FAILURES as exc:
        if isinstance(exc, CableProtocolError):
            raise
        raise CableProtocolError(f"malformed frame: {exc}") from None


def decode_command(frame: WireFrame, encoding: Encoding) -> ClientCommand:
    """A client frame as a command. Raises :class:`CableProtocolError` if it is not one."""
    raw: _RawCommand = _decode_raw(frame, encoding, _json_command, _msgpack_command)
    name = raw.command
    if name == "pong":
        return Pong()
    if name not in ("subscribe", "unsubscribe", "message", "history"):
        return UnknownCommand(command=name, identifier=raw.identifier)
    if raw.identifier is None:
        raise CableProtocolError(f"{name}: identifier missing")
    if name == "subscribe":
        return Subscribe(identifier=raw.identifier, history=raw.history)
    if name == "unsubscribe":
        return Unsubscribe(identifier=raw.identifier)
    if name == "message":
        if not isinstance(raw.data, str):
            raise CableProtocolError("message: data must be a JSON-encoded string")
        return Perform(identifier=raw.identifier, data=raw.data)
    if raw.history is None:
        raise CableProtocolError("history: history missing")
    return History(identifier=raw.identifier, history=raw.history)


def decode_frame(frame: WireFrame, encoding: Encoding) -> ServerFrame:
    """A server frame (the SDK side). Unknown types decode to :class:`UnknownFrame`.

    Lenient where the JS clients are: a ``disconnect`` without ``reconnect`` means reconnect.
    """
    raw: _RawFrame = _decode_raw(frame, encoding, _json_frame, _msgpack_frame)
    ident = raw.identifier
    kind = raw.type
    if kind == "welcome":
        return Welcome(
            sid=UNSET if raw.sid is None else raw.sid,
            restored=UNSET if raw.restored is None else raw.restored,
            restored_ids=UNSET if raw.restored_ids is None else raw.restored_ids,
        )
    if kind == "ping":
        msg = raw.message
        ok = isinstance(msg, int | float) and not isinstance(msg, bool)
        return Ping(message=int(msg) if ok else 0)
    if kind == "disconnect":
        reconnect = True if raw.reconnect is None else raw.reconnect
        return Disconnect(reason=raw.reason or "", reconnect=reconnect)
    if ident is not None:
        if kind in _IDENTIFIER_FRAMES:
            return _IDENTIFIER_FRAMES[kind](identifier=ident)
        if kind is None and raw.message is not UNSET:
            return Broadcast(
                identifier=ident,
                message=raw.message,
                stream_id=UNSET if raw.stream_id is None else raw.stream_id,
                epoch=UNSET if raw.epoch is None else raw.epoch,
                offset=UNSET if raw.offset is None else raw.offset,
            )
    return UnknownFrame(type=kind, identifier=ident)


_IDENTIFIER_FRAMES: Final[
    dict[
        str,
        type[ConfirmSubscription]
        | type[RejectSubscription]
        | type[ConfirmHistory]
        | type[RejectHistory],
    ]
] = {
    "confirm_subscription": ConfirmSubscription,
    "reject_subscription": RejectSubscription,
    "confirm_history": ConfirmHistory,
    "reject_history": RejectHistory,
}
