"""The SDK's session flows against the gateway's cable core, in-process: no sockets, no threads,
explicit time, so hypothesis can shrink a failure to its few steps (the real-process machine in
``test_cable_resume.py`` cannot).

* The SDK side is the real :class:`~client_sdk.session_flows.SessionFlows` (with the real
  ``CableCore``, ``SessionCore`` and an in-memory ``Outbox``), driven by a third shell: this
  test (:class:`Kiosk`), as the sync and async shells drive it.
* The gateway side is the real :class:`~gateway.cable.CableSession` for each connection, in a
  small in-memory gateway (:class:`Gateway`): the messages of two conversations, one event log
  with offsets for the contact's stream, saved sessions for restore, and the public routes the
  flows call (list conversations, list messages by pages of 20, post a message idempotently on
  its ``echo_id``).

Rules: the agent and the customer write; the socket drops; the network goes down and up
(connects and requests fail); the answer to a send is lost after the gateway stored it; the
gateway restarts (sessions for restore lost); old history is forgotten (history rejected: the
SDK catches up over HTTP); time passes, with or without a ping (stale connections, the outbox
retry). After every step the messages handed over are each once and in order per conversation;
at the end, once the network is back, they are exactly the gateway's, and every customer send
is stored once, in the order it was sent.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from client_sdk import Outbox, SessionState, errors
from client_sdk import cable_protocol as cp
from client_sdk import protocol as p
from client_sdk.cable_core import ReconnectPolicy
from client_sdk.events import Event, MessageCreated
from client_sdk.flows import (
    Api,
    CloseSocket,
    Connect,
    Done,
    Effect,
    Emit,
    Flush,
    OutboxCall,
    Pause,
    Receive,
    Request,
    Response,
    SendFrame,
    Sleep,
    drive,
    resume,
)
from client_sdk.http_core import ApiCall, ApiRoutes
from client_sdk.options import RealtimeOptions
from client_sdk.session_core import SessionCore
from client_sdk.session_flows import SessionFlows
from gateway.cable import (
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
    ping_frame,
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


class Kiosk:
    """The third shell: answers the flows' effects against the :class:`Gateway`, in-process."""

    def __init__(self, gateway: Gateway, protocols: tuple[str, ...]) -> None:
        self.gateway = gateway
        self.clock = 0.0
        state = SessionState(
            base_url="http://gateway", inbox_identifier=INBOX, source_id=SOURCE,
            pubsub_token=TOKEN, history_since=T0,
        )  # fmt: skip
        self.outbox = Outbox()
        options = RealtimeOptions("ws://gateway/cable", protocols, ReconnectPolicy(), 6.0)
        core = SessionCore(state, resumed=False)
        self.flows = SessionFlows(core, Api(ROUTES), options, clock=lambda: self.clock)
        self.events = self.flows.events()
        self.waiting: Effect[Any] | None = None  # what the events flow waits for
        self.emitted: list[Event] = []
        self.started = False

    def tick(self, seconds: float) -> None:
        self.clock += seconds
        self.gateway.now += seconds

    def perform(self, effect: Effect[Any]) -> Any:
        gateway, link = self.gateway, self.gateway.link
        if isinstance(effect, Request):
            return gateway.http(effect.call)
        if isinstance(effect, Sleep | Pause):
            return self.tick(effect.seconds)
        if isinstance(effect, OutboxCall):
            return effect.method(self.outbox, *effect.args)
        if isinstance(effect, Flush):
            return drive(self.flows.flush(), self.perform)
        if isinstance(effect, Connect):
            if not gateway.up:
                raise errors.TransportError("connection refused")
            chosen = cp.select_subprotocol(effect.protocols)
            assert chosen is not None
            sid = parse_qs(urlsplit(effect.url).query).get("sid", [None])[0]
            gateway.link = Link(gateway, chosen, sid)
            return chosen.name
        if isinstance(effect, SendFrame):
            if link is None:
                raise errors.TransportError("no socket")
            return link.receive(effect.frame)
        if isinstance(effect, CloseSocket):
            gateway.link = None
            return None
        if isinstance(effect, Emit):
            self.emitted.append(effect.event)
            return None
        raise AssertionError(f"unexpected effect {effect!r}")

    def settle(self, timeout: bool = False) -> None:
        """Run the events flow until it waits for a frame that has not come, or to reconnect
        while the network is down. ``timeout``: first answer a waiting receive with nothing."""
        for _ in range(500):
            effect, link = self.waiting, self.gateway.link
            answer: Any = None
            error: Exception | None = None
            if isinstance(effect, Receive):
                if link is not None and link.inbound:
                    answer = link.inbound.popleft()
                elif link is None or not link.open:
                    error = errors.TransportError("the socket is closed")
                elif timeout:
                    self.tick(effect.timeout)
                    timeout = False
                else:
                    return
            elif isinstance(effect, Pause) and not self.gateway.up:
                return
            elif effect is not None:
                try:
                    answer = self.perform(effect)
                except errors.TransportError as exc:
                    error = exc
            elif self.started:
                raise AssertionError("the events flow ended")
            self.started = True
            step = resume(self.events, answer, error)
            assert not isinstance(step, Done), "the events flow ended"
            self.waiting = step
        raise AssertionError("the events flow never waits")

    def send(self, conversation: int, content: str) -> None:
        drive(self.flows.send(conversation, content, (), None), self.perform)

    def heard(self) -> list[p.PublicMessage]:
        return [e.message for e in self.emitted if isinstance(e, MessageCreated)]


def _id(message: p.PublicMessage) -> int:
    return message.id


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gateway = Gateway()
        self.kiosk: Kiosk | None = None
        self.sent: list[str] = []
        self.written = 0

    @property
    def k(self) -> Kiosk:
        assert self.kiosk is not None
        return self.kiosk

    @initialize(protocols=st.sampled_from(sorted(PROTOCOLS)))
    def subscribe(self, protocols: str) -> None:
        self.kiosk = Kiosk(self.gateway, PROTOCOLS[protocols])
        self.k.settle()

    def _text(self, who: str) -> str:
        self.written += 1
        return f"{who} {self.written}"

    @rule(conv=st.sampled_from(CONVERSATIONS))
    def agent_writes(self, conv: int) -> None:
        self.gateway.store(conv, self._text("agent"), False, None)
        self.k.settle()

    @rule(conv=st.sampled_from(CONVERSATIONS), lose_answer=st.booleans())
    def customer_sends(self, conv: int, lose_answer: bool) -> None:
        self.gateway.lose_next_answer = lose_answer and self.gateway.up
        self.sent.append(self._text("customer"))
        self.k.send(conv, self.sent[-1])
        self.gateway.lose_next_answer = False
        self.k.settle()

    @rule()
    def socket_drops(self) -> None:
        link = self.gateway.link
        if link is not None:
            link.open = False
            link.inbound.clear()
        self.k.settle()

    @rule()
    def network_down(self) -> None:
        self.gateway.up = False
        self.socket_drops()

    @precondition(lambda self: not self.gateway.up)
    @rule()
    def network_up(self) -> None:
        self.gateway.up = True
        self.k.settle()

    @rule()
    def gateway_restarts(self) -> None:
        self.gateway.saved.clear()
        self.socket_drops()

    @rule(keep=st.integers(0, 3))
    def history_forgotten(self, keep: int) -> None:
        self.gateway.forgotten = max(self.gateway.forgotten, self.gateway.offset - keep)
        self.k.settle()

    @rule(ping=st.booleans())
    def time_passes(self, ping: bool) -> None:
        link = self.gateway.link
        if ping and link is not None and link.open and link.session.ping(self.gateway.now):
            self.k.tick(3.0)
            link.inbound.append(ping_frame(self.gateway.now, link.encoding))
        self.k.settle(timeout=not ping)

    @invariant()
    def each_message_once_in_order(self) -> None:
        if self.kiosk is None:
            return
        for conv in CONVERSATIONS:
            ids = [m.id for m in self.k.heard() if m.conversation_id == conv]
            assert ids == sorted(set(ids)), f"conversation {conv}: {ids}"

    def teardown(self) -> None:
        if self.kiosk is None:
            return
        # Everything comes back: the network, and a fresh socket (which delivers the outbox).
        self.gateway.up = True
        self.socket_drops()
        for conv in CONVERSATIONS:
            heard = [m.id for m in self.k.heard() if m.conversation_id == conv]
            assert heard == [m.id for m in self.gateway.messages[conv]], f"conversation {conv}"
        stored = sorted((m for c in CONVERSATIONS for m in self.gateway.messages[c]), key=_id)
        customer = [m.content for m in stored if m.message_type == p.MESSAGE_TYPE_INCOMING]
        assert customer == self.sent, "a send was lost, doubled or reordered"
        assert self.k.outbox.queued(SOURCE) == []


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_sdk_session_flows_lose_repeat_and_reorder_nothing = SessionMachine.TestCase
