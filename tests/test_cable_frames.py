"""The cable wire protocol: subprotocol selection, codecs in both encodings, encode-once splicing,
opaque stream ids. Golden vectors come from ``reference/anycable-ext-protocol.md`` §8.2."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from client_sdk import cable_protocol as cp
from gateway.realtime.core import EncodedEvent, StreamIds, splice, splicer_for

ENCODINGS: tuple[cp.Encoding, ...] = ("json", "msgpack")
IDENT = '{"channel":"ChatChannel","id":42}'

# ---- strategies ----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
texts = st.text(max_size=40)
offsets = st.integers(min_value=0, max_value=2**63 - 1)
positions = st.builds(cp.StreamPosition, epoch=texts, offset=offsets)
histories = st.builds(
    cp.HistoryRequest,
    since=st.none() | st.integers(min_value=0, max_value=2**40) | st.floats(0, 2e9),
    streams=st.none() | st.dictionaries(texts, positions, max_size=3),
)
commands = st.one_of(
    st.builds(cp.Subscribe, identifier=texts, history=st.none() | histories),
    st.builds(cp.Unsubscribe, identifier=texts),
    st.builds(cp.Perform, identifier=texts, data=texts),
    st.builds(cp.History, identifier=texts, history=histories),
    st.just(cp.Pong()),
    st.builds(
        cp.UnknownCommand,
        command=st.sampled_from(["whisper", "join", "leave", "presence", "x"]),
        identifier=st.none() | texts,
    ),
)


def unset_or(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(msgspec.UNSET) | values


frames = st.one_of(
    st.builds(
        cp.Welcome,
        sid=unset_or(texts),
        restored=unset_or(st.booleans()),
        restored_ids=unset_or(st.lists(texts, max_size=3)),
    ),
    st.builds(cp.Ping, message=st.integers(min_value=0, max_value=2**40)),
    st.builds(cp.Disconnect, reason=texts, reconnect=st.booleans()),
    st.builds(cp.ConfirmSubscription, identifier=texts),
    st.builds(cp.RejectSubscription, identifier=texts),
    st.builds(cp.ConfirmHistory, identifier=texts),
    st.builds(cp.RejectHistory, identifier=texts),
    st.builds(
        cp.Broadcast,
        identifier=texts,
        message=json_values,
        stream_id=unset_or(texts),
        epoch=unset_or(texts),
        offset=unset_or(offsets),
    ),
)


# ---- subprotocols --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], None),  # nothing offered: plain JSON, no header
        (["actioncable-v1-json", "actioncable-unsupported"], cp.JSON),  # @rails/actioncable
        (["actioncable-v1-ext-json"], cp.EXT_JSON),  # @anycable/core
        (["actioncable-v1-ext-json", "anycable-token.abc"], cp.EXT_JSON),
        (["actioncable-v1-ext-msgpack"], cp.EXT_MSGPACK),
        (["actioncable-v1-msgpack"], cp.MSGPACK),
        (["actioncable-v1-json", "actioncable-v1-ext-json"], cp.EXT_JSON),
        (["actioncable-v1-msgpack", "actioncable-v1-json"], cp.JSON),
        (["actioncable-v1-ext-msgpack", "actioncable-v1-json"], cp.EXT_MSGPACK),
    ],
)
def test_select_subprotocol(offered: list[str], chosen: str | None) -> None:
    selected = cp.select_subprotocol(offered)
    assert selected is not None
    assert selected.name == chosen
    if chosen is None:
        assert selected == cp.NO_SUBPROTOCOL and selected.encoding == "json"


@pytest.mark.parametrize(
    "offered",
    [
        ["actioncable-unsupported"],
        ["anycable-token.actioncable-v1-json"],
        ["actioncable-v1-protobuf"],
        ["actioncable-v1-ext-protobuf", "actioncable-unsupported"],
        ["chat"],
    ],
)
def test_never_selects_what_we_do_not_speak(offered: list[str]) -> None:
    assert cp.select_subprotocol(offered) is None


def test_subprotocol_properties_and_header_parsing() -> None:
    ext_mp = cp.SUBPROTOCOLS[cp.EXT_MSGPACK]
    assert ext_mp.extended and ext_mp.binary
    assert not cp.SUBPROTOCOLS[cp.JSON].extended and not cp.SUBPROTOCOLS[cp.JSON].binary
    header = ["actioncable-v1-json, actioncable-unsupported", " x ,,"]
    assert cp.parse_offered(header) == ["actioncable-v1-json", "actioncable-unsupported", "x"]
    assert cp.select_subprotocol(["x", "y"], preference=["y", "actioncable-v1-json"]) is None


# ---- codecs: round trips and hostile input -------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(command=commands)
def test_command_round_trip(encoding: cp.Encoding, command: cp.ClientCommand) -> None:
    wire = cp.encode(command, encoding)
    assert isinstance(wire, str if encoding == "json" else bytes)
    assert cp.decode_command(wire, encoding) == command


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(frame=frames)
def test_frame_round_trip(encoding: cp.Encoding, frame: cp.ServerFrame) -> None:
    assert cp.decode_frame(cp.encode(frame, encoding), encoding) == frame


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(data=st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_input_only_raises_protocol_errors(encoding: cp.Encoding, data: Any) -> None:
    for decode in (cp.decode_command, cp.decode_frame):
        with contextlib.suppress(cp.CableProtocolError):
            decode(data, encoding)


keys = st.sampled_from(
    ["command", "type", "identifier", "data", "history", "message", "sid", "reconnect", "offset"]
)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(obj=st.dictionaries(keys, json_values, max_size=5) | json_values)
def test_well_formed_but_wrong_shapes_only_raise_protocol_errors(
    encoding: cp.Encoding, obj: Any
) -> None:
    wire: cp.WireFrame = json.dumps(obj) if encoding == "json" else msgspec.msgpack.encode(obj)
    for decode in (cp.decode_command, cp.decode_frame):
        with contextlib.suppress(cp.CableProtocolError):
            decode(wire, encoding)


@pytest.mark.parametrize(
    "wire",
    [
        '{"command":"subscribe"}',
        '{"command":"message","identifier":"x","data":{"action":"a"}}',
        '{"command":"history","identifier":"x"}',
        '{"identifier":"x"}',
        "[1,2]",
        '{"command":"subscribe","identifier":"x"',
        "[" * 50_000,
        '"\ud800"',
    ],
)
def test_malformed_commands_are_clear_errors(wire: str) -> None:
    with pytest.raises(cp.CableProtocolError):
        cp.decode_command(wire, "json")


def test_text_frame_on_msgpack_is_an_error() -> None:
    with pytest.raises(cp.CableProtocolError, match="text frame"):
        cp.decode_command('{"command":"pong"}', "msgpack")


def test_commands_tolerate_unknown_keys_and_commands() -> None:
    wire = '{"command":"subscribe","identifier":"i","presence":{"id":"1"},"extra":[1]}'
    assert cp.decode_command(wire, "json") == cp.Subscribe(identifier="i")
    assert cp.decode_command('{"command":"whisper","identifier":"i","data":{"x":1}}', "json") == (
        cp.UnknownCommand(command="whisper", identifier="i")
    )


def test_server_frame_decoding_is_lenient() -> None:
    assert cp.decode_frame('{"type":"disconnect","reason":"remote"}', "json") == cp.Disconnect(
        reason="remote", reconnect=True
    )
    assert cp.decode_frame('{"type":"ping","message":1.5e9}', "json") == cp.Ping(message=1500000000)
    assert cp.decode_frame('{"type":"presence","identifier":"i","message":{}}', "json") == (
        cp.UnknownFrame(type="presence", identifier="i")
    )
    assert cp.decode_frame('{"identifier":"i"}', "json") == cp.UnknownFrame(identifier="i")


# ---- golden vectors (reference §8.2, §11) --------------------------------------------------


def test_golden_msgpack_server_frames() -> None:
    assert cp.encode(cp.Welcome(sid="s1"), "msgpack") == bytes.fromhex(
        "82a474797065a777656c636f6d65a3736964a27331"
    )
    assert cp.encode(cp.Ping(message=1700000000), "msgpack") == bytes.fromhex(
        "82a474797065a470696e67a76d657373616765ce6553f100"
    )
    event = EncodedEvent("chat", "x123", 3, b'{"text":"hi"}')
    assert splice("msgpack", IDENT, event, "chat_42", positions=True) == bytes.fromhex(
        "85aa6964656e746966696572d9217b226368616e6e656c223a22436861744368616e6e656c222c226964223a"
        "34327da76d65737361676581a474657874a26869a973747265616d5f6964a7636861745f3432a565706f6368"
        "a478313233a66f666673657403"
    )


def test_golden_msgpack_client_commands() -> None:
    assert cp.decode_command(bytes.fromhex("81a7636f6d6d616e64a4706f6e67"), "msgpack") == cp.Pong()
    ident = msgspec.msgpack.encode(IDENT).hex()
    wire = bytes.fromhex(
        "83a7636f6d6d616e64a7686973746f7279aa6964656e746966696572"
        + ident
        + "a7686973746f727982a573696e6365ce6553f100a773747265616d7381a7636861745f343282a565706f6368"
        "a478313233a66f666673657402"
    )
    assert cp.decode_command(wire, "msgpack") == cp.History(
        identifier=IDENT,
        history=cp.HistoryRequest(
            since=1700000000, streams={"chat_42": cp.StreamPosition(epoch="x123", offset=2)}
        ),
    )


def test_json_frames_match_the_captures() -> None:
    assert cp.encode(cp.Disconnect(reason="server_restart", reconnect=True), "json") == (
        '{"type":"disconnect","reason":"server_restart","reconnect":true}'
    )
    assert cp.encode(cp.Welcome(), "json") == '{"type":"welcome"}'
    captured = (
        '{"command":"subscribe","identifier":"{\\"channel\\":\\"ChatChannel\\",\\"id\\":42}",'
        '"history":{"since":1795255071,"streams":{}}}'
    )
    assert cp.decode_command(captured, "json") == cp.Subscribe(
        identifier=IDENT, history=cp.HistoryRequest(since=1795255071, streams={})
    )
    event = EncodedEvent("chat", "zs67", 1, b'{"text":"one"}')
    assert splice("json", IDENT, event, "chat_42", positions=True) == (
        '{"identifier":"{\\"channel\\":\\"ChatChannel\\",\\"id\\":42}","message":{"text":"one"},'
        '"stream_id":"chat_42","epoch":"zs67","offset":1}'
    )


# ---- encode once: the splice property ------------------------------------------------------


def naive(
    encoding: cp.Encoding, identifier: str, event: EncodedEvent, stream_id: str, positions: bool
) -> cp.WireFrame:
    with_position = positions and event.epoch is not None
    frame = cp.Broadcast(
        identifier=identifier,
        message=msgspec.json.decode(event.payload),
        stream_id=stream_id if with_position else msgspec.UNSET,
        epoch=event.epoch if with_position and event.epoch is not None else msgspec.UNSET,
        offset=event.offset if with_position else msgspec.UNSET,
    )
    return cp.encode(frame, encoding)


event_bodies = st.builds(
    lambda name, data: msgspec.json.encode({"event": name, "data": data}), texts, json_values
)


@pytest.mark.parametrize("encoding", ENCODINGS)
@given(
    identifier=texts,
    payload=event_bodies,
    stream_id=texts,
    epoch=st.none() | texts,
    offset=offsets,
    positions=st.booleans(),
)
def test_spliced_frames_equal_naive_encoding(
    encoding: cp.Encoding,
    identifier: str,
    payload: bytes,
    stream_id: str,
    epoch: str | None,
    offset: int,
    positions: bool,
) -> None:
    splicer = splicer_for(encoding, identifier, positions=positions)
    event = EncodedEvent("s", epoch, offset, payload)
    expected = naive(encoding, identifier, event, stream_id, positions)
    for _ in range(2):  # the second frame comes from the caches
        spliced = splicer.frame(event, stream_id)
        assert spliced == expected
        assert cp.decode_frame(spliced, encoding) == cp.decode_frame(expected, encoding)


@given(data=json_values, identifier=texts)
def test_splicing_a_non_compact_payload_decodes_the_same(data: Any, identifier: str) -> None:
    payload = json.dumps({"event": "e", "data": data}, indent=1).encode()
    event = EncodedEvent("s", "ep", 7, payload)
    for encoding in ENCODINGS:
        spliced = splice(encoding, identifier, event, "sid", positions=True)
        decoded = cp.decode_frame(spliced, encoding)
        assert decoded == cp.decode_frame(naive(encoding, identifier, event, "sid", True), encoding)


def test_encoded_event_builds_each_encoding_once() -> None:
    event = EncodedEvent.of(msgspec.structs.replace(_logged(), payload=b'{"event":"x","data":1}'))
    assert event.text is event.text
    assert event.msgpack is event.msgpack
    assert msgspec.msgpack.decode(event.msgpack) == {"event": "x", "data": 1}
    assert "EncodedEvent('inbox:1'" in repr(event)
    # The part after the identifier is built once per event and shared by every subscriber.
    assert event.json_tail("sid", True) is event.json_tail("sid", True)
    assert event.msgpack_tail("sid", True) is event.msgpack_tail("sid", True)
    assert event.json_tail("other", True) != event.json_tail("sid", True)
    tail = event.json_tail("sid", True)
    for identifier in ("a", "b"):
        frame = splicer_for("json", identifier, positions=True).frame(event, "sid")
        assert isinstance(frame, str) and frame.endswith(tail)


def _logged() -> Any:
    from gateway.store.records import LoggedEvent

    return LoggedEvent(
        stream="inbox:1", epoch="e", offset=1, name="x", payload=b"{}", created_at=0.0
    )


# ---- identifier echo -----------------------------------------------------------------------

SPELLINGS = [
    '{"channel":"RoomChannel","pubsub_token":"tok","account_id":1,"user_id":2}',  # compact
    '{"account_id":1,"channel":"RoomChannel","pubsub_token":"tok","user_id":2}',  # sorted
    '{"channel": "RoomChannel", "pubsub_token": "tok", "account_id": 1, "user_id": 2}',  # spaces
    '{"channel":"R\\u00f6omChannel","pubsub_token":"tok"}',  # escapes inside the identifier
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("identifier", SPELLINGS)
def test_identifier_is_echoed_byte_for_byte(encoding: cp.Encoding, identifier: str) -> None:
    wire = cp.encode(cp.Subscribe(identifier=identifier), encoding)
    received = cp.decode_command(wire, encoding)
    assert isinstance(received, cp.Subscribe)
    confirm = cp.encode(cp.ConfirmSubscription(identifier=received.identifier), encoding)
    event = EncodedEvent("s", "e", 1, b'{"event":"x","data":{}}')
    broadcast = splice(encoding, received.identifier, event, "sid", positions=True)
    for frame in (confirm, broadcast):
        decoded = cp.decode_frame(frame, encoding)
        assert isinstance(decoded, cp.ConfirmSubscription | cp.Broadcast)
        assert decoded.identifier.encode() == identifier.encode()


def test_identifier_sent_with_escaped_characters_comes_back_as_the_same_string() -> None:
    wire = '{"command":"subscribe","identifier":"{\\"channel\\":\\"R\\u00f6om\\"}"}'
    received = cp.decode_command(wire, "json")
    assert isinstance(received, cp.Subscribe)
    frame = cp.encode(cp.ConfirmSubscription(identifier=received.identifier), "json")
    assert json.loads(frame)["identifier"] == '{"channel":"Röom"}'


# ---- stream ids ----------------------------------------------------------------------------


def test_stream_ids_are_opaque_stable_and_keyed() -> None:
    ids = StreamIds(b"k" * 32)
    sid = ids("session:90")
    assert sid == ids("session:90") == StreamIds(b"k" * 32)("session:90")
    assert len(sid) == 22 and "=" not in sid and "session" not in sid and "90" not in sid
    assert sid != ids("session:91")
    assert sid != StreamIds(b"j" * 32)("session:90")
    with pytest.raises(ValueError):
        StreamIds(b"short")


def test_stream_id_cache_is_bounded() -> None:
    ids = StreamIds(b"k" * 32, cache_max=4)
    first = [ids(f"s{i}") for i in range(10)]
    assert [ids(f"s{i}") for i in range(10)] == first
