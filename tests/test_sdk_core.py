"""The SDK's sans-I/O parts: API parity of the two shells, the cable state machine, error
mapping, the outbox, typed events, saved sessions. No sockets."""

from __future__ import annotations

import inspect
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest

from client_sdk import (
    AsyncChatSession,
    AsyncConversation,
    AsyncInboxClient,
    ChatSession,
    Conversation,
    InboxClient,
    Outbox,
    SessionState,
    errors,
    http_core,
)
from client_sdk import cable_protocol as cp
from client_sdk.cable_core import CableCore, ReconnectPolicy, contact_identifier
from client_sdk.events import (
    Connected,
    ConversationStatusChanged,
    MessageCreated,
    TypingChanged,
    decode_event,
)
from client_sdk.http_core import AttachmentFile

PAIRS = [
    (AsyncInboxClient, InboxClient),
    (AsyncChatSession, ChatSession),
    (AsyncConversation, Conversation),
]


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_sync_and_async_expose_the_same_methods(async_cls: type, sync_cls: type) -> None:
    async_methods, sync_methods = public_methods(async_cls), public_methods(sync_cls)
    assert async_methods.keys() == sync_methods.keys()
    assert len(async_methods) >= 5
    for name, signature in async_methods.items():
        other = sync_methods[name]
        assert list(signature.parameters) == list(other.parameters), name
        for param, spec in signature.parameters.items():
            twin = other.parameters[param]
            assert (spec.kind, spec.default) == (twin.kind, twin.default), (name, param)
        # Coroutines on one side exactly where the other side blocks (events: async iterator).
        is_async = inspect.iscoroutinefunction(getattr(async_cls, name)) or (
            inspect.isasyncgenfunction(getattr(async_cls, name))
        )
        assert not inspect.iscoroutinefunction(getattr(sync_cls, name)), name
        # (``pending`` reads the outbox file: a coroutine on the async side, run in a thread.)
        blocking = name not in ("save", "conversation", "resume_session")
        assert is_async == blocking, name
    init_a = inspect.signature(async_cls.__init__).parameters
    init_s = inspect.signature(sync_cls.__init__).parameters
    assert list(init_a) == list(init_s)


def test_every_public_method_has_a_docstring() -> None:
    for async_cls, sync_cls in PAIRS:
        for cls in (async_cls, sync_cls):
            assert cls.__doc__
            for name in public_methods(cls):
                assert getattr(cls, name).__doc__, f"{cls.__name__}.{name}"


# -- the cable state machine ------------------------------------------------------------------


def frame(obj: dict[str, Any]) -> str:
    return json.dumps(obj)


def broadcast(ident: str, event: str, data: dict[str, Any], offset: int | None) -> str:
    body: dict[str, Any] = {"identifier": ident, "message": {"event": event, "data": data}}
    if offset is not None:
        body.update(stream_id="s1", epoch="e1", offset=offset)
    return frame(body)


MESSAGE = {
    "id": 7, "content": "hi", "account_id": 1, "inbox_id": 1, "conversation_id": 3,
    "message_type": 1, "created_at": 1, "updated_at": "x", "echo_id": "e-7",
}  # fmt: skip


def test_ext_session_subscribes_with_history_then_restores_and_drops_replayed_offsets() -> None:
    core = CableCore("tok", protocols=(cp.EXT_JSON, cp.JSON), since=100.0)
    ident = contact_identifier("tok")
    core.opened(cp.EXT_JSON, 0.0)
    step = core.receive(frame({"type": "welcome", "sid": "s-1"}), 0.1)
    sub = json.loads(step.send[0])
    assert sub == {
        "command": "subscribe", "identifier": ident, "history": {"since": 100.0, "streams": {}},
    }  # fmt: skip
    step = core.receive(frame({"type": "confirm_subscription", "identifier": ident}), 0.2)
    assert step.live and not step.catch_up
    assert step.events == [Connected(reconnect=False, restored=False)]
    step = core.receive(broadcast(ident, "message.created", MESSAGE, 1), 0.3)
    [created] = step.events
    assert isinstance(created, MessageCreated) and created.echo_id == "e-7"
    assert created.message.content == "hi" and created.conversation_id == 3
    assert core.positions == {"s1": cp.StreamPosition(epoch="e1", offset=1)}

    core.lost("transport_closed")
    assert core.url("ws://h/cable?x=1") == "ws://h/cable?x=1&sid=s-1"
    core.opened(cp.EXT_JSON, 1.0)
    step = core.receive(
        frame({"type": "welcome", "sid": "s-2", "restored": True, "restored_ids": [ident]}), 1.1
    )
    history = json.loads(step.send[0])
    assert history["command"] == "history"
    assert history["history"]["streams"] == {"s1": {"epoch": "e1", "offset": 1}}
    assert step.events == [Connected(reconnect=True, restored=True)]
    # A replayed offset that already arrived is dropped; the next one passes.
    assert core.receive(broadcast(ident, "message.created", MESSAGE, 1), 1.2).events == []
    assert len(core.receive(broadcast(ident, "message.created", MESSAGE, 2), 1.3).events) == 1
    # Pings move the history timestamp and are answered with a pong on the ext protocol.
    step = core.receive(frame({"type": "ping", "message": 500}), 1.4)
    assert core.since == 500.0 and json.loads(step.send[0]) == {"command": "pong"}
    step = core.receive(frame({"type": "reject_history", "identifier": ident}), 1.5)
    assert step.catch_up
    step = core.receive(frame({"type": "disconnect", "reason": "server_restart"}), 1.6)
    assert step.closed == cp.Disconnect(reason="server_restart", reconnect=True)
    assert core.url("ws://h/cable") == "ws://h/cable"  # never restore after a disconnect


def test_plain_session_catches_up_after_a_reconnect_and_skips_unknown_frames() -> None:
    core = CableCore("tok")
    ident = core.identifier
    for n in range(2):
        core.opened(None, 0.0)
        step = core.receive(frame({"type": "welcome"}), 0.0)
        assert json.loads(step.send[0]) == {"command": "subscribe", "identifier": ident}
        step = core.receive(frame({"identifier": ident, "type": "confirm_subscription"}), 0.0)
        assert step.live and step.catch_up == (n == 1)
        core.lost("stale_connection")
    assert core.receive(b"\xff not json", 0.0).events == []
    assert core.receive(frame({"type": "presence", "identifier": ident}), 0.0).events == []
    unknown = broadcast(ident, "copilot.message.created", {"x": 1}, None)
    assert core.receive(unknown, 0.0).events == []
    bad = broadcast(ident, "message.created", {"id": "not a message"}, None)
    assert core.receive(bad, 0.0).events == []
    core.opened(None, 10.0)
    assert core.time_left(12.0) == pytest.approx(4.0) and core.stale(16.5)
    with pytest.raises(errors.ProtocolError):
        core.opened(cp.MSGPACK, 0.0)


def test_msgpack_session_speaks_binary_frames() -> None:
    core = CableCore("tok", protocols=(cp.EXT_MSGPACK,))
    core.opened(cp.EXT_MSGPACK, 0.0)
    welcome = msgspec.msgpack.encode({"type": "welcome", "sid": "x"})
    [subscribe] = core.receive(welcome, 0.0).send
    assert isinstance(subscribe, bytes)
    assert msgspec.msgpack.decode(subscribe)["command"] == "subscribe"


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = ReconnectPolicy(base=1.0, factor=2.0, cap=8.0, max_attempts=5)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(8)]
    for n, delay in enumerate(delays):
        raw = min(8.0, 2.0**n)
        assert 0.5 * raw <= delay <= 1.5 * raw
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered
    assert not policy.gives_up(4) and policy.gives_up(5)


def test_typed_events() -> None:
    conv = {"id": 3, "inbox_id": 1, "status": "resolved"}
    changed = decode_event({"event": "conversation.status_changed", "data": conv})
    assert isinstance(changed, ConversationStatusChanged)
    assert changed.conversation.status == "resolved"
    typing = decode_event(
        {
            "event": "conversation.typing_on",
            "data": {
                "conversation": conv,
                "account_id": 1,
                "user": {"id": 2, "name": "A", "available_name": "A", "type": "user"},
            },
        }
    )
    assert isinstance(typing, TypingChanged) and typing.typing and typing.conversation_id == 3
    assert decode_event("nonsense") is None and decode_event({"event": 5}) is None


# -- HTTP: errors and calls -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, b'{"status":404,"error":"Not Found"}', errors.NotFound),
        (401, b'{"status":401,"error":"Unauthorized"}', errors.Unauthorized),
        (400, b'{"status":400,"error":"Bad Request"}', errors.BadRequest),
        (413, b"", errors.PayloadTooLarge),
        (500, b'{"status":500,"error":"Internal Server Error"}', errors.ServerError),
        (418, b"teapot", errors.ApiError),
    ],
)  # fmt: skip
def test_error_statuses(status: int, body: bytes, kind: type[errors.ApiError]) -> None:
    with pytest.raises(kind) as caught:
        http_core.check(status, {}, body)
    assert type(caught.value) is kind and caught.value.status == status
    assert isinstance(caught.value, errors.InboxError)


def test_validation_and_rate_limit_errors() -> None:
    body = b'{"message":"Content is too long","attributes":["content"]}'
    with pytest.raises(errors.ValidationFailed) as invalid:
        http_core.check(422, {}, body)
    assert invalid.value.attributes == ["content"] and "too long" in invalid.value.message
    with pytest.raises(errors.RateLimited) as limited:
        http_core.check(429, {"retry-after": "3"}, b"Retry later\n")
    assert limited.value.retry_after == 3.0
    exc = limited.value
    assert http_core.rate_limit_delay(exc, 0, 2, 60.0) == 3.0
    with pytest.raises(errors.RateLimited):
        http_core.rate_limit_delay(exc, 2, 2, 60.0)  # out of retries
    with pytest.raises(errors.RateLimited):
        http_core.rate_limit_delay(exc, 0, 2, 1.0)  # the wait exceeds the cap
    assert http_core.retry_after_seconds("soon") is None
    with pytest.raises(errors.ProtocolError):
        http_core.handle(http_core.ApiRoutes("i").get_inbox(), 200, {}, b"[1]")


def test_calls_are_built_like_chatwoot_expects() -> None:
    routes = http_core.ApiRoutes("in/box")
    call = routes.send_message("s 1", 4, "hi", "e1", ())
    assert (call.method, call.path) == (
        "POST",
        "/public/api/v1/inboxes/in%2Fbox/contacts/s%201/conversations/4/messages",
    )
    assert json.loads(call.json or b"") == {"content": "hi", "echo_id": "e1"}
    upload = routes.send_message("s", 4, None, "e2", [AttachmentFile("a.png", b"x", "image/png")])
    assert upload.json is None and upload.form == {"echo_id": "e2"}
    assert upload.files == [("attachments[]", ("a.png", b"x", "image/png"))]
    survey = routes.submit_csat_survey("uuid-1", 4, None)
    assert json.loads(survey.json or b"") == {
        "message": {"submitted_values": {"csat_survey_response": {"rating": 4}}}
    }
    with pytest.raises(ValueError):
        http_core.csat_response(6, None)
    # The reference's line (§4.3) is HMAC-SHA256 in hex: RFC 4231's test case 2.
    assert http_core.identifier_hash("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


# -- the outbox and saved sessions -------------------------------------------------------------


def test_outbox_keeps_order_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    first = box.add("src", 1, "one")
    second = box.add("src", 1, "two", [AttachmentFile("f.txt", b"data", "text/plain")])
    assert box.add("src", 1, "again", echo_id=first.echo_id) == first  # idempotent
    box.add("other", 2, "not mine")
    box.close()
    box = Outbox(path)
    queued = box.queued("src")
    assert [e.content for e in queued] == ["one", "two"]
    assert queued[1].attachments == (AttachmentFile("f.txt", b"data", "text/plain"),)
    box.mark_sent(first.echo_id, 99)
    assert [e.echo_id for e in box.queued("src")] == [second.echo_id]
    assert box.get(first.echo_id).message_id == 99  # type: ignore[union-attr]
    box.mark_failed(second.echo_id, "422: Content is too long")
    assert box.confirm(first.echo_id) and not box.confirm(second.echo_id)
    assert [e.status for e in box.entries("src")] == ["failed"]
    box.discard(second.echo_id)
    assert box.entries("src") == []
    box.close()


def test_session_state_round_trips(tmp_path: Path) -> None:
    state = SessionState(
        base_url="http://h", inbox_identifier="i", source_id="s", pubsub_token="t",
        conversations=[3], last_message_ids={3: 9},
        positions={"s1": cp.StreamPosition(epoch="e", offset=4)}, history_since=12.0,
    )  # fmt: skip
    path = tmp_path / "kiosk" / "session.json"
    state.save(path)
    assert SessionState.load(path) == state
    path.write_text("{}")
    with pytest.raises(errors.ProtocolError):
        SessionState.load(path)
