"""An in-memory gateway around the real sans-I/O cable core, for the SDK's state machine
(``tests/test_sdk_state_machine.py``): no sockets, no store, explicit time.

:class:`Gateway` keeps the messages of two conversations of one contact, one event log with
offsets for the contact's stream (old entries can be forgotten: history is then rejected),
sessions saved for restore, and answers the public routes the SDK's flows call: list
conversations, list messages by pages of 20, post a message idempotently on its ``echo_id``
(it can be busy once, a 503, or lose the answer to one post after storing it).
:class:`Link` is one connection: a real :class:`~gateway.realtime.core.CableSession` whose
actions it carries out, and the frames it sent that the client has not read yet.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

import msgspec

from client_sdk import cable_protocol as cp
from client_sdk import errors
from client_sdk import protocol as p
from client_sdk.flows import Response
from client_sdk.http_core import ApiCall, ApiRoutes
from gateway.realtime.core import (
    CableSession,
    Close,
    EncodedEvent,
    HistoryCursor,
    HistoryRequested,
    SaveSession,
    Send,
    StreamIds,
    SubscribeRequested,
    SubscriptionState,
)

T0 = 1_800_000_000.0
IDS = StreamIds(b"s" * 32)
INBOX, SOURCE, TOKEN = "inbox", "src-1", "tok-1"
STREAM, EPOCH = "contact_inbox:1", "ep-1"
CONVERSATIONS = (11, 12)
ROUTES = ApiRoutes(INBOX)
PROTOCOLS = {
    "ext-json": (cp.EXT_JSON, cp.JSON),
    "plain-json": (cp.JSON,),
    "ext-msgpack": (cp.EXT_MSGPACK,),
}
_json = msgspec.json.encode


class Gateway:
    """The gateway's state and routes around real :class:`CableSession` objects."""

    def __init__(self) -> None:
        self.messages: dict[int, list[p.PublicMessage]] = {c: [] for c in CONVERSATIONS}
        self.by_echo: dict[str, p.PublicMessage] = {}
        self.log: list[tuple[EncodedEvent, float]] = []  # (event, server time), offsets 1..
        self.offset = 0
        self.forgotten = 0  # offsets up to this one are no longer retained
        self.saved: dict[str, tuple[SubscriptionState, ...]] = {}
        self.link: Link | None = None
        self.up = True
        self.lose_next_answer = False
        self.busy_next = False
        self.now = T0

    def store(self, conversation: int, content: str, incoming: bool, echo: str | None) -> Any:
        if echo is not None and echo in self.by_echo:
            return self.by_echo[echo]  # the gateway stores an echo_id once per conversation
        kind = p.MESSAGE_TYPE_INCOMING if incoming else 1
        message = p.PublicMessage(
            id=sum(map(len, self.messages.values())) + 1, content=content, message_type=kind,
            content_type="text", content_attributes={}, created_at=int(self.now),
            conversation_id=conversation,
        )  # fmt: skip
        self.messages[conversation].append(message)
        data = p.MessageEventData(
            id=message.id, content=content, account_id=1, inbox_id=1,
            conversation_id=conversation, message_type=kind, created_at=int(self.now),
            updated_at="", echo_id=echo if echo is not None else msgspec.UNSET,
        )  # fmt: skip
        self.offset += 1
        event = EncodedEvent(
            STREAM, EPOCH, self.offset, _json({"event": "message.created", "data": data})
        )
        self.log.append((event, self.now))
        if echo is not None:
            self.by_echo[echo] = message
        if self.link is not None:
            self.link.deliver(event)
        return message

    def history(self, cursors: tuple[HistoryCursor, ...]) -> list[EncodedEvent] | None:
        """The log after each cursor, or None (reject) when part of it is forgotten."""
        found: list[EncodedEvent] = []
        for cursor in cursors:
            if cursor.epoch is not None:
                assert cursor.offset is not None
                if cursor.epoch != EPOCH or not self.forgotten <= cursor.offset <= self.offset:
                    return None
                found += [e for e, _ in self.log if e.offset > cursor.offset]
            else:
                assert cursor.since is not None
                if self.forgotten:
                    return None
                found += [e for e, at in self.log if at >= cursor.since]
        return found

    def http(self, call: ApiCall[Any]) -> Response:
        if not self.up:
            raise errors.TransportError("connection refused")
        if call.path == ROUTES.list_conversations(SOURCE).path:
            return 200, {}, _json([conversation(c) for c in CONVERSATIONS])
        found = re.fullmatch(r".*/conversations/(\d+)/messages", call.path)
        assert found is not None, call
        conv = int(found.group(1))
        if call.method == "POST" and self.busy_next:
            self.busy_next = False  # refused before storing anything: retried later, in order
            return 503, {}, b'{"error":"busy"}'
        if call.method == "POST":
            body = msgspec.json.decode(call.json or b"")
            message = self.store(conv, body["content"], True, body["echo_id"])
            if self.lose_next_answer:
                self.lose_next_answer = False
                raise errors.TransportError("the answer was lost")
            return 200, {}, _json(message)
        before = int(call.params.get("before", 1 << 62))
        page = [m for m in self.messages[conv] if m.id < before][-20:]
        return 200, {}, _json(page)


def conversation(conv: int) -> p.PublicConversation:
    contact = p.Contact(id=1, name="Kiosk", account_id=1, created_at="", updated_at="")
    return p.PublicConversation(
        id=conv, uuid=str(conv), inbox_id=1, contact_last_seen_at=0, status="open",
        agent_last_seen_at=0, messages=[], contact=contact,
    )  # fmt: skip


class Link:
    """One client connection at the gateway: its CableSession, and the frames it has sent
    that the client has not read yet (a socket's buffer)."""

    def __init__(self, gateway: Gateway, protocol: cp.Subprotocol, sid: str | None) -> None:
        self.gateway = gateway
        self.session = CableSession(protocol, stream_ids=IDS, now=gateway.now)
        self.encoding = protocol.encoding
        self.inbound: deque[cp.WireFrame] = deque()
        self.open = True
        restored = gateway.saved.get(sid) if sid is not None and protocol.extended else None
        self.run(self.session.start(gateway.now, restored=restored))

    def run(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Send) and self.open:
                self.inbound.append(action.frame)
            elif isinstance(action, Close):
                self.open = False  # the frames before the close are still read
            elif isinstance(action, SaveSession):
                self.gateway.saved[action.sid] = action.snapshot.subscriptions
            elif isinstance(action, SubscribeRequested):
                assert action.params["pubsub_token"] == TOKEN
                confirmed = self.session.subscription_confirmed(action.identifier, [STREAM])
                self.run(confirmed)
            elif isinstance(action, HistoryRequested):
                events = self.gateway.history(action.cursors)
                if events is None:
                    self.run(self.session.history_rejected(action.identifier))
                else:
                    self.run(self.session.history_served(action.identifier, events))

    def deliver(self, event: EncodedEvent) -> None:
        if self.open:
            self.inbound.extend(self.session.deliver(event))

    def receive(self, frame: cp.WireFrame) -> None:
        if not self.open:
            raise errors.TransportError("the socket is closed")
        self.run(self.session.receive(frame, self.gateway.now))
