"""The wire protocol: every Struct round-trips, every decoder fails only with a decode error,
server-to-client shapes stay decodable by older clients (unknown fields and events), and the
package imports nothing but the standard library and msgspec (DESIGN.md rule 1)."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path
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
# One decoder per Struct, built once: ``msgspec.json.decode(raw, type=cls)`` compiles the type
# on every call.
STRUCT_DECODERS = {cls: msgspec.json.Decoder(cls) for cls in STRUCTS}
FIELD_NAMES = sorted({f for cls in STRUCTS for f in cls.__struct_fields__} | {"type", "event"})

# Examples of the all-Structs test: about ten per Struct on average; the per-Struct floor is
# test_every_struct_round_trips_with_its_fewest_and_all_fields.
MAX_EXAMPLES = 1500

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


def test_every_struct_is_found_and_re_exported() -> None:
    assert len(STRUCTS) > 100
    assert len({cls.__name__ for cls in STRUCTS}) == len(STRUCTS)  # one name, one shape
    assert [cls for cls in STRUCTS if getattr(p, cls.__name__, None) is not cls] == []
    assert {"PublicMessage", "Event", "MessageEventData", "AgentBot", "WebhookMessage"} <= {
        cls.__name__ for cls in STRUCTS
    }
    assert len(REQUESTS) >= 7  # the public API's; the agent API adds its own
    # A decoder defined in a module but left out of its __all__ would not be re-exported.
    for module in MODULES:
        for name, obj in vars(module).items():
            if isinstance(obj, msgspec.json.Decoder):
                assert DECODERS[name] is obj, f"{module.__name__}.{name} is not re-exported"


def test_no_struct_forbids_unknown_fields() -> None:
    assert [cls for cls in STRUCTS if cls.__struct_config__.forbid_unknown_fields] == []


def test_importing_the_protocol_loads_only_the_standard_library_and_msgspec() -> None:
    # A fresh interpreter: this process has long imported the gateway, httpx and starlette.
    # msgspec comes first so what it loads itself (typing_extensions, if installed) is set apart.
    probe = (
        "import sys; top = lambda names: sorted({m.split('.')[0] for m in names}); "
        "start = set(sys.modules); import msgspec; after_msgspec = set(sys.modules); "
        "import client_sdk.protocol; print(client_sdk.protocol.__file__); "
        "print(' '.join(top(set(sys.modules) - start))); "
        "print(' '.join(top(set(sys.modules) - after_msgspec)))"
    )
    root = Path(p.__file__).parents[2]  # the checkout this process imports client_sdk from
    where, everything, own = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=root,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert where == p.__file__  # the code under test, not another installed copy
    assert "msgspec" in everything.split()
    assert not {"httpx", "httpcore", "websockets", "starlette", "anyio", "gateway"} & set(
        everything.split()
    )
    assert set(own.split()) - sys.stdlib_module_names == {"client_sdk"}


def _filled(t: mi.Type, depth: int = 0) -> Any:
    """A deterministic value of ``t``: non-empty and not None, so nested Structs, lists and
    dicts are built and encoded too."""
    if isinstance(t, mi.StructType):
        return _struct_value(t, required_only=False, depth=depth + 1)
    if isinstance(t, mi.UnionType):
        return _filled(next(m for m in t.types if not isinstance(m, mi.NoneType)), depth)
    if isinstance(t, mi.ListType):
        return [_filled(t.item_type, depth)] if depth < 3 else []
    if isinstance(t, mi.DictType):
        return {_filled(t.key_type, depth): _filled(t.value_type, depth)}
    simple: dict[type[mi.Type], Any] = {
        mi.IntType: 7, mi.FloatType: 2.5, mi.StrType: "x", mi.BoolType: True,
        mi.AnyType: {"k": [1, "v", None]}, mi.NoneType: None,
    }  # fmt: skip
    if isinstance(t, mi.LiteralType):
        return t.values[-1]
    return simple[type(t)]


def _struct_value(t: mi.StructType, *, required_only: bool, depth: int = 0) -> Any:
    fields = [f for f in t.fields if f.required or not required_only]
    return t.cls(**{f.name: _filled(f.type, depth) for f in fields})


def test_every_struct_round_trips_with_its_fewest_and_all_fields() -> None:
    """Every Struct, every run, every field set at least once: the hypothesis test below draws
    Structs at random, so this is the floor it cannot miss."""
    for cls in STRUCTS:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        for value in (
            _struct_value(info, required_only=True),
            _struct_value(info, required_only=False),
        ):
            encoded = p.encode(value)
            assert STRUCT_DECODERS[cls].decode(encoded) == value, cls.__name__
            assert p.encode(STRUCT_DECODERS[cls].decode(encoded)) == encoded, cls.__name__
            doc = msgspec.json.decode(encoded)
            doc["x_added_by_a_newer_gateway"] = {"a": [1]}
            assert STRUCT_DECODERS[cls].decode(msgspec.json.encode(doc)) == value, cls.__name__


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_struct_round_trips_and_decodes_only_to_errors(data: st.DataObject) -> None:
    """One test over every Struct of the package: a drawn instance survives encode/decode,
    unknown fields (a newer gateway's) are ignored, and any bytes or JSON document decode to
    the Struct or raise a msgspec decode error, nothing else."""
    cls = data.draw(st.sampled_from(STRUCTS), label="struct")
    decoder = STRUCT_DECODERS[cls]
    value = data.draw(struct_strategy(cls), label="value")
    encoded = p.encode(value)
    assert decoder.decode(encoded) == value
    assert p.encode(decoder.decode(encoded)) == encoded
    doc = msgspec.to_builtins(value)
    doc["x_added_by_a_newer_gateway"] = data.draw(JSON, label="unknown field")
    assert decoder.decode(msgspec.json.encode(doc)) == value
    raw = data.draw(st.binary(max_size=64) | SHAPED.map(msgspec.json.encode), label="raw")
    with contextlib.suppress(msgspec.DecodeError):  # ValidationError is a subclass
        decoder.decode(raw)


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
