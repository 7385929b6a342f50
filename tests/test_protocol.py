"""The wire protocol: every Struct round-trips, every decoder fails only with a decode error,
and server-to-client shapes stay decodable by older clients (unknown fields and events)."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk import protocol as p

# Every Struct of the package, found in its modules (a new module or Struct is included without
# editing this file), each checked below to be re-exported by ``client_sdk.protocol``.
MODULES = [
    importlib.import_module(f"{p.__name__}.{m.name}") for m in pkgutil.iter_modules(p.__path__)
]
STRUCTS: list[type[msgspec.Struct]] = sorted(
    (
        obj
        for module in MODULES
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, msgspec.Struct)
        and obj.__module__ == module.__name__
    ),
    key=lambda cls: cls.__name__,
)
REQUESTS = [cls for cls in STRUCTS if cls.__name__.endswith("Request")]
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    name: obj for name, obj in vars(p).items() if isinstance(obj, msgspec.json.Decoder)
}
FIELD_NAMES = sorted({f for cls in STRUCTS for f in cls.__struct_fields__} | {"type", "event"})

fast = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
TEXT = st.text(max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | INT64 | FLOATS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def strategy(t: mi.Type) -> st.SearchStrategy[Any]:
    """Values of a msgspec type, from its ``msgspec.inspect`` description."""
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    if isinstance(t, mi.IntType):
        return st.integers(min_value=-(2**63), max_value=2**64 - 1)
    if isinstance(t, mi.FloatType):
        return FLOATS
    if isinstance(t, mi.StrType):
        return TEXT
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.AnyType):
        return JSON
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(t.values)
    if isinstance(t, mi.UnionType):
        return st.one_of(*(strategy(member) for member in t.types))
    if isinstance(t, mi.ListType):
        return st.lists(strategy(t.item_type), max_size=2)
    if isinstance(t, mi.DictType):
        return st.dictionaries(strategy(t.key_type), strategy(t.value_type), max_size=3)
    raise NotImplementedError(f"no strategy for {t!r}: extend tests/test_protocol.py")


_structs: dict[type[Any], st.SearchStrategy[Any]] = {}


def struct_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of ``cls``; optional fields are sometimes omitted (so UNSET is covered)."""
    if cls not in _structs:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        required = {f.name: strategy(f.type) for f in info.fields if f.required}
        optional = {f.name: strategy(f.type) for f in info.fields if not f.required}
        _structs[cls] = st.fixed_dictionaries(required, optional=optional).map(
            lambda kwargs: cls(**kwargs)
        )
    return _structs[cls]


def test_every_struct_is_covered() -> None:
    assert len(STRUCTS) > 30
    assert {"PublicMessage", "Event", "MessageEventData", "ContactCreateRequest"} <= {
        cls.__name__ for cls in STRUCTS
    }
    assert len(REQUESTS) >= 7  # the public API's; the agent API adds its own


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: cls.__name__)
@fast
@given(data=st.data())
def test_round_trip(cls: type[Any], data: st.DataObject) -> None:
    value = data.draw(struct_strategy(cls))
    encoded = p.encode(value)
    assert msgspec.json.decode(encoded, type=cls) == value
    assert p.encode(msgspec.json.decode(encoded, type=cls)) == encoded


@pytest.mark.parametrize("name", sorted(DECODERS))
@fast
@given(data=st.data())
def test_module_decoders_round_trip(name: str, data: st.DataObject) -> None:
    decoder = DECODERS[name]
    value = data.draw(strategy(mi.type_info(decoder.type)))
    assert decoder.decode(p.encode(value)) == value


@pytest.mark.parametrize("name", sorted(DECODERS))
@fast
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_decode_errors(name: str, raw: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError):  # ValidationError is a subclass
        DECODERS[name].decode(raw)


def _shaped(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """JSON objects using the protocol's own field names: they reach the validation paths."""
    return st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=6) | st.lists(
        st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4), max_size=2
    )


SHAPED = st.recursive(st.none() | st.booleans() | INT64 | FLOATS | TEXT, _shaped, max_leaves=12)


@pytest.mark.parametrize("name", sorted(DECODERS))
@fast
@given(doc=SHAPED)
def test_arbitrary_json_only_raises_decode_errors(name: str, doc: Any) -> None:
    raw = msgspec.json.encode(doc)
    with contextlib.suppress(msgspec.DecodeError):
        DECODERS[name].decode(raw)
    for cut in (1, len(raw) // 2):  # truncated documents too
        with pytest.raises(msgspec.DecodeError):
            DECODERS[name].decode(raw[:-cut] if len(raw) > cut else b"")


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: cls.__name__)
def test_no_struct_forbids_unknown_fields(cls: type[Any]) -> None:
    assert not cls.__struct_config__.forbid_unknown_fields


@pytest.mark.parametrize("cls", STRUCTS, ids=lambda cls: cls.__name__)
@fast
@given(data=st.data(), extra=JSON)
def test_unknown_fields_are_ignored(cls: type[Any], data: st.DataObject, extra: Any) -> None:
    value = data.draw(struct_strategy(cls))
    doc = msgspec.to_builtins(value)
    doc["x_added_by_a_newer_gateway"] = extra
    assert msgspec.json.decode(msgspec.json.encode(doc), type=cls) == value


def test_unknown_fields_ignored_in_nested_shapes() -> None:
    raw = b"""{
      "id": 3, "uuid": "u", "inbox_id": 1, "contact_last_seen_at": 0, "status": "open",
      "agent_last_seen_at": 0, "new_top_level": {"a": [1]},
      "contact": {"id": 9, "name": "A", "account_id": 1, "created_at": "t", "updated_at": "t",
                  "brand_new": true},
      "messages": [{"id": 1, "content": null, "message_type": 0, "content_type": "text",
                    "content_attributes": {}, "created_at": 5, "conversation_id": 3,
                    "reactions": [],
                    "sender": {"type": "contact", "id": 9, "name": "A", "avatar": "x"},
                    "attachments": [{"id": 1, "message_id": 1, "file_type": "image",
                                     "account_id": 1, "transcribed_text": ""}]}]
    }"""
    conv = p.public_conversation_decoder.decode(raw)
    assert conv.contact.id == 9
    [message] = conv.messages
    assert isinstance(message.sender, p.ContactSender) and message.sender.name == "A"
    assert isinstance(message.attachments, list) and message.attachments[0].file_type == "image"


def test_public_message_omits_unset_and_keeps_null_content() -> None:
    message = p.PublicMessage(
        id=1, content=None, message_type=3, content_type="input_csat",
        content_attributes={"display_type": "emoji"}, created_at=1, conversation_id=2,
    )  # fmt: skip
    doc = msgspec.json.decode(p.encode(message))
    assert "attachments" not in doc and "sender" not in doc
    assert "content" in doc and doc["content"] is None
    decoded = p.public_message_decoder.decode(p.encode(message))
    assert decoded.attachments is msgspec.UNSET and decoded.sender is msgspec.UNSET
    with_sender = msgspec.structs.replace(
        message, sender=p.UserSender(id=1, name="Bo", available_name="Bo"), attachments=[]
    )
    doc = msgspec.json.decode(p.encode(with_sender))
    assert doc["sender"]["type"] == "user" and doc["attachments"] == []


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (b'{"type": "contact", "id": 1, "name": "A"}', p.ContactSender),
        (b'{"type": "user", "id": 1, "name": "A", "available_name": "A"}', p.UserSender),
        (b'{"id": 1, "type": "agent_bot", "name": "Bot"}', p.AgentBotSender),
    ],
)
def test_sender_union_decodes_by_type(body: bytes, cls: type[Any]) -> None:
    assert type(msgspec.json.decode(body, type=p.Sender)) is cls
    message = (
        b'{"id": 1, "content": "x", "message_type": 1, "content_type": "text", '
        b'"content_attributes": {}, "created_at": 1, "conversation_id": 1, "sender": ' + body + b"}"
    )
    assert type(p.public_message_decoder.decode(message).sender) is cls


def test_sender_union_rejects_unknown_or_missing_type() -> None:
    for body in (b'{"type": "robot", "id": 1, "name": "A"}', b'{"id": 1, "name": "A"}'):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(body, type=p.Sender)


@fast
@given(name=TEXT, data=JSON)
def test_event_decodes_any_event_name(name: str, data: Any) -> None:
    raw = msgspec.json.encode({"event": name, "data": data, "performer": {"id": 1}})
    event = p.event_decoder.decode(raw)
    assert event == p.Event(event=name, data=data)


def test_unknown_event_keeps_its_data() -> None:
    event = p.event_decoder.decode(b'{"event": "copilot.message.created", "data": {"id": 5}}')
    assert event.event == "copilot.message.created" and event.data == {"id": 5}


def test_encode_lists_of_structs() -> None:
    items = [p.PlainError(error="a"), p.PlainError(error="b")]
    assert p.encode(items) == b'[{"error":"a"},{"error":"b"}]'


def test_requests_are_lenient() -> None:
    assert p.contact_create_decoder.decode(b"{}") == p.ContactCreateRequest()
    request = p.message_update_decoder.decode(
        b'{"submitted_values": {"csat_survey_response": {"rating": 5}}, "other": 1}'
    )
    assert isinstance(request.submitted_values, p.SubmittedValue)
    assert request.submitted_values.csat_survey_response == p.CsatSurveyResponseInput(rating=5)
    listed = p.message_update_decoder.decode(b'{"submitted_values": [{"name": "email"}]}')
    assert listed.submitted_values == [p.SubmittedValue(name="email")]
