"""The SDK's session flows against the gateway's cable core, in-process: no sockets, no threads,
explicit time, so hypothesis can shrink a failure to its few steps (the real-process machine in
``test_cable_resume.py`` cannot).

* The SDK side is the real :class:`~client_sdk.session_flows.SessionFlows` (with the real
  ``CableCore``, ``SessionCore`` and an in-memory ``Outbox``), driven by a third shell: this
  test (:class:`Kiosk`), as the sync and async shells drive it.
* The gateway side is the real :class:`~gateway.realtime.core.CableSession` for each
  connection, in a small in-memory gateway (:class:`Gateway`): the messages of two
  conversations, one event log with offsets for the contact's stream, saved sessions for
  restore, and the public routes the flows call (list conversations, list messages by pages
  of 20, post a message idempotently on its ``echo_id``).

Rules: the agent and the customer write (a send may find the gateway busy, a 503, or lose its
answer after the gateway stored it); the socket drops; the network goes down and up (connects
and requests fail); the gateway restarts (sessions for restore lost); old history is forgotten
(history rejected: the SDK catches up over HTTP); time passes, with or without a ping (stale
connections, the outbox retry). After every step the messages handed over are each once and in
order per conversation; at the end, once the network is back, they are exactly the gateway's,
and every customer send is stored once, in the order it was sent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    SendFrame,
    Sleep,
    drive,
    resume,
)
from client_sdk.options import RealtimeOptions
from client_sdk.session_core import SessionCore
from client_sdk.session_flows import SessionFlows
from gateway.realtime.core import ping_frame
from tests.sdk_gateway_model import (
    CONVERSATIONS,
    INBOX,
    PROTOCOLS,
    ROUTES,
    SOURCE,
    T0,
    TOKEN,
    Gateway,
    Link,
)


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
        self.refused = False  # the last connect was refused: wait for the network

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
            self.refused = not gateway.up
            if self.refused:
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
            elif isinstance(effect, Pause) and self.refused and not self.gateway.up:
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

    @rule(conv=st.sampled_from(CONVERSATIONS))
    def customer_sends(self, conv: int) -> None:
        self.sent.append(self._text("customer"))
        self.k.send(conv, self.sent[-1])
        self.k.settle()

    @rule(lost=st.booleans())
    def next_post_fails(self, lost: bool) -> None:
        """The next message posted (a send, or the outbox's delivery on reconnect) meets a
        busy gateway, or its answer is lost after the gateway stored it."""
        if lost:
            self.gateway.lose_next_answer = True
        else:
            self.gateway.busy_next = True

    @rule()
    def broker_repeats(self) -> None:
        """The broker is at least once: the last event reaches the socket again."""
        if self.gateway.link is not None and self.gateway.log:
            self.gateway.link.deliver(self.gateway.log[-1][0])
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

    @rule(graceful=st.booleans())
    def gateway_restarts(self, graceful: bool) -> None:
        """Sessions for restore are lost; a graceful stop says so first (``disconnect``)."""
        self.gateway.saved.clear()
        link = self.gateway.link
        if graceful and link is not None and link.open:
            link.run(link.session.disconnect("server_restart", reconnect=True, code=1001))
            self.k.settle()
        else:
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
        # Everything comes back: the network, a fresh socket (which delivers the outbox), time.
        self.gateway.up = True
        self.socket_drops()
        for _ in range(3):  # a delivery that met a fault is retried while connected
            if self.k.outbox.queued(SOURCE):
                self.k.settle(timeout=True)
        for conv in CONVERSATIONS:
            heard = [m.id for m in self.k.heard() if m.conversation_id == conv]
            assert heard == [m.id for m in self.gateway.messages[conv]], f"conversation {conv}"
        stored = sorted((m for c in CONVERSATIONS for m in self.gateway.messages[c]), key=_id)
        customer = [m.content for m in stored if m.message_type == p.MESSAGE_TYPE_INCOMING]
        assert customer == self.sent, "a send was lost, doubled or reordered"
        assert self.k.outbox.queued(SOURCE) == []


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_sdk_session_flows_lose_repeat_and_reorder_nothing = SessionMachine.TestCase
