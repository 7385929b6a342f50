"""The lean transport's RFC 6455 layer (``gateway.realtime.core.websocket``), sans I/O: server
frames byte-identical to what ``websockets`` builds, client frames as ``websockets`` clients
mask and fragment them, and every frame a client may not send refused with the right close code."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from gateway.realtime.core import EncodedEvent, splicer_for
from gateway.realtime.core import websocket as ws
from gateway.realtime.core.frames import JsonSplicer


def masked(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    return head + mask + body


def test_accept_value_of_the_rfc_example() -> None:
    assert ws.accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert ws.valid_key("dGhlIHNhbXBsZSBub25jZQ==")
    assert not ws.valid_key("short")
    assert not ws.valid_key("not base64 at all!!!!!==")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 8191, 8192, 65535, 65536, 70000])
def test_server_frames_match_websockets(size: int) -> None:
    payload = b"x" * size
    assert ws.text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
    assert ws.binary_frame(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False)


def test_wire_and_close_frames() -> None:
    assert ws.wire('{"type":"ping"}') == b"\x81\x0f" + b'{"type":"ping"}'
    assert ws.wire(b"\x81\xa1a") == b"\x82\x03\x81\xa1a"
    assert ws.close_frame(1013, "too_slow") == b"\x88\x0a\x03\xf5too_slow"
    assert ws.close_code(b"\x03\xe8") == 1000
    assert ws.close_code(b"") == 1005


@settings(max_examples=100)
@given(
    payloads=st.lists(st.binary(max_size=70_000), min_size=1, max_size=4),
    cut=st.integers(min_value=1, max_value=200),
)
def test_client_frames_come_back_whole_however_the_bytes_are_cut(
    payloads: list[bytes], cut: int
) -> None:
    data = b"".join(masked(ws.OP_BINARY, p) for p in payloads)
    reader = ws.FrameReader(1 << 20)
    got: list[tuple[int, bytes]] = []
    for start in range(0, len(data), cut * 97):
        got += reader.feed(data[start : start + cut * 97])
    assert got == [(ws.OP_BINARY, p) for p in payloads]


def test_fragments_and_control_frames_in_between() -> None:
    reader = ws.FrameReader(1024)
    data = (
        masked(ws.OP_TEXT, b"hel", fin=False)
        + masked(ws.OP_PING, b"p")
        + masked(ws.OP_CONT, b"lo", fin=False)
        + masked(ws.OP_CONT, b"!")
        + masked(ws.OP_CLOSE, b"\x03\xe8")
    )
    assert reader.feed(data) == [
        (ws.OP_PING, b"p"),
        (ws.OP_TEXT, b"hello!"),
        (ws.OP_CLOSE, b"\x03\xe8"),
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (Frame(Opcode.TEXT, b"x").serialize(mask=False), ws.CLOSE_PROTOCOL_ERROR),  # unmasked
        (bytes((0xC1, 0x80)) + b"\0\0\0\0", ws.CLOSE_PROTOCOL_ERROR),  # rsv1: no extension
        (bytes((0x83, 0x80)) + b"\0\0\0\0", ws.CLOSE_PROTOCOL_ERROR),  # opcode 3
        (masked(ws.OP_CONT, b"x"), ws.CLOSE_PROTOCOL_ERROR),  # a continuation of nothing
        (masked(ws.OP_PING, b"x", fin=False), ws.CLOSE_PROTOCOL_ERROR),
        (masked(ws.OP_PING, b"x" * 126), ws.CLOSE_PROTOCOL_ERROR),
        (masked(ws.OP_TEXT, b"a", fin=False) + masked(ws.OP_TEXT, b"b"), ws.CLOSE_PROTOCOL_ERROR),
        (masked(ws.OP_TEXT, b"x" * 1025), ws.CLOSE_TOO_BIG),
        (masked(ws.OP_TEXT, b"x" * 600, fin=False) + masked(ws.OP_CONT, b"x" * 600), 1009),
    ],
)
def test_what_a_client_may_not_send(data: bytes, code: int) -> None:
    with pytest.raises(ws.WebSocketError) as raised:
        ws.FrameReader(1024).feed(data)
    assert raised.value.code == code


def test_an_announced_oversized_frame_is_refused_before_it_arrives() -> None:
    head = struct.pack("!BBQ", 0x81, 0x80 | 127, 1 << 40)
    with pytest.raises(ws.WebSocketError) as raised:
        ws.FrameReader(1 << 20).feed(head)
    assert raised.value.code == ws.CLOSE_TOO_BIG


def test_an_event_is_framed_once_per_identifier_for_every_socket() -> None:
    identifier = '{"channel":"RoomChannel","pubsub_token":"tab"}'
    first = splicer_for("json", identifier, positions=False)
    assert splicer_for("json", identifier, positions=False) is first  # shared by the tabs
    assert splicer_for("json", identifier, positions=True) is not first
    event = EncodedEvent("s", "e", 1, b'{"event":"message.created","data":{}}')
    framed = event.wired(first, "sid")
    assert event.wired(first, "sid") is framed
    assert framed == ws.wire(JsonSplicer(identifier, positions=False).frame(event, "sid"))
