"""``ChatSession`` and ``Conversation``: one contact session over the sync client, with its
realtime subscription and its outbox. The twin of :mod:`~client_sdk.async_session`; both
drive the same flows (:mod:`~client_sdk.session_flows`) and only move bytes and time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.exceptions import WebSocketException

from . import errors, flows
from . import protocol as p
from .events import Event
from .http_core import AttachmentFile
from .options import Sent
from .outbox import OutboxEntry
from .session_core import SessionCore, SessionState
from .session_flows import SessionFlows

if TYPE_CHECKING:
    from .sync_client import InboxClient, SyncWebSocket

# What a broken socket or a failed connect may raise (an injected connector: OSError or ours).
_SOCKET_ERRORS = (OSError, TimeoutError, WebSocketException, errors.TransportError)


class ChatSession:
    """A contact session: its conversations, its sends (through the outbox) and its events.

    Get one from :meth:`InboxClient.start_session` or :meth:`InboxClient.resume_session`;
    keep it across runs with :meth:`save`.
    """

    def __init__(self, client: InboxClient, state: SessionState, *, resumed: bool) -> None:
        self.client = client
        self.state = state
        self._core = SessionCore(state, resumed=resumed)
        self._flows = SessionFlows(self._core, client._api, client.realtime)
        self._flush_lock = threading.Lock()
        self._ws: SyncWebSocket | None = None
        self._closed = threading.Event()

    @property
    def source_id(self) -> str:
        return self.state.source_id

    @property
    def pubsub_token(self) -> str:
        return self.state.pubsub_token

    def save(self, path: str | Path) -> None:
        """Write the session (credentials, conversations, positions) to ``path``."""
        self.state.save(path)

    def conversation(self, conversation_id: int) -> Conversation:
        """The conversation with this id (no request is made)."""
        self._core.track(conversation_id)
        return Conversation(self, conversation_id)

    def conversations(self) -> list[Conversation]:
        """The session's conversations, from the server. Raises as the client's methods."""
        listed = self.client.list_conversations(self.source_id)
        return [self.conversation(c.id) for c in listed]

    def start_conversation(self, *, custom_attributes: p.JSONObject | None = None) -> Conversation:
        """Open a new conversation. Raises as the client's methods."""
        created = self.client.create_conversation(
            self.source_id, custom_attributes=custom_attributes
        )
        return self.conversation(created.id)

    def identify(
        self,
        identifier: str,
        *,
        identifier_hash: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone_number: str | None = None,
    ) -> p.Contact:
        """Tell who the customer is (verified with a valid ``identifier_hash``). Raises
        ``Unauthorized``, ``ValidationFailed``, as the client's methods."""
        return self.client.update_contact(
            self.source_id, identifier=identifier, identifier_hash=identifier_hash, email=email,
            name=name, phone_number=phone_number,
        )  # fmt: skip

    def pending(self) -> list[OutboxEntry]:
        """The session's outbox: queued, sent but unconfirmed, and failed entries."""
        return self.client.outbox.entries(self.source_id)

    # -- sends ----------------------------------------------------------------------------------

    def send(
        self,
        conversation_id: int,
        content: str | None = None,
        *,
        attachments: Sequence[AttachmentFile] = (),
        echo_id: str | None = None,
    ) -> Sent:
        """Queue a message in the outbox and deliver the queue in order. Returns the stored
        message, or a queued :class:`Sent` when the gateway is unreachable (it goes out when
        the gateway is back: on the next send, on reconnect, or :meth:`flush_outbox`). Raises
        an :class:`~client_sdk.errors.ApiError` when the gateway refuses this message for good
        (``NotFound``, ``ValidationFailed``)."""
        flow = self._flows.send(conversation_id, content, attachments, echo_id)
        return flows.drive(flow, self._perform)

    def flush_outbox(self) -> int:
        """Deliver queued messages, oldest first, until one cannot go (the gateway is away).
        Returns how many were delivered. Never raises for a delivery failure."""
        with self._flush_lock:
            return flows.drive(self._flows.flush(), self._perform)

    # -- realtime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop :meth:`events` cleanly (it returns) and close the socket."""
        self._flows.closed = True
        self._closed.set()
        self._drop_socket()

    def events(self) -> Iterator[Event]:
        """The session's events, live, until :meth:`close`: typed, each once, in order.

        Reconnects by itself (jittered exponential backoff), resuming the session or asking
        for history, or, on a server without history, fetching missed messages over HTTP;
        delivers the outbox whenever the subscription comes up. Raises
        :class:`~client_sdk.errors.ConnectionClosed` when the server ends the subscription for
        good, and :class:`~client_sdk.errors.ProtocolError` if it chose a protocol not offered.
        """
        flow = self._flows.events()
        answer: Any = None
        error: Exception | None = None
        try:
            while not isinstance(step := flows.resume(flow, answer, error), flows.Done):
                answer, error = None, None
                if isinstance(step, flows.Emit):
                    yield step.event
                    continue
                try:
                    answer = self._perform(step)
                except Exception as exc:  # thrown into the flow, which handles it or raises it
                    error = exc
        finally:
            flow.close()
            self._drop_socket()

    def _perform(self, effect: flows.Effect[Any]) -> Any:
        """One effect of a session flow, blocking the calling thread."""
        match effect:
            case flows.OutboxCall(method, args):
                return method(self.client.outbox, *args)
            case flows.Flush():
                return self.flush_outbox()
            case flows.Pause(seconds):
                self._closed.wait(timeout=seconds)
                return None
            case flows.CloseSocket():
                return self._drop_socket()
            case flows.Connect() | flows.Receive() | flows.SendFrame():
                try:
                    return self._socket(effect)
                except _SOCKET_ERRORS as exc:
                    raise errors.TransportError(repr(exc)) from exc
        return self.client._perform(effect)

    def _socket(self, effect: flows.Effect[Any]) -> Any:
        match effect:
            case flows.Connect(url, protocols):
                self._ws = self.client.connect(url, protocols)
                return self._ws.subprotocol
            case flows.Receive(timeout) if self._ws is not None:
                try:
                    return self._ws.recv(timeout=timeout)
                except TimeoutError:
                    return None
            case flows.SendFrame(frame) if self._ws is not None:
                return self._ws.send(frame)
        raise errors.TransportError("the socket is closed")

    def _drop_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(*_SOCKET_ERRORS):
                ws.close()


class Conversation:
    """One conversation of a session. Methods raise as the client's methods do."""

    def __init__(self, session: ChatSession, conversation_id: int) -> None:
        self.session = session
        self.id = conversation_id

    def __repr__(self) -> str:
        return f"Conversation({self.id})"

    def send(
        self,
        content: str | None = None,
        *,
        attachments: Sequence[AttachmentFile] = (),
        echo_id: str | None = None,
    ) -> Sent:
        """Send a message through the session's outbox (see :meth:`ChatSession.send`)."""
        return self.session.send(self.id, content, attachments=attachments, echo_id=echo_id)

    def get(self) -> p.PublicConversation:
        """The conversation as the server has it now."""
        return self.session.client.get_conversation(self.session.source_id, self.id)

    def messages(self, *, before: int | None = None) -> list[p.PublicMessage]:
        """Up to 20 messages, oldest first: the latest, or those before message ``before``."""
        client = self.session.client
        return client.list_messages(self.session.source_id, self.id, before=before)

    def typing(self, typing: bool = True) -> None:
        """Show (or stop showing) the customer as typing to the agents."""
        self.session.client.toggle_typing(self.session.source_id, self.id, typing)

    def mark_seen(self) -> None:
        """Mark the conversation read by the customer."""
        self.session.client.update_last_seen(self.session.source_id, self.id)

    def resolve(self) -> p.PublicConversation:
        """Resolve the conversation."""
        return self.session.client.resolve_conversation(self.session.source_id, self.id)

    def rate(
        self, message_id: int, rating: int, feedback_message: str | None = None
    ) -> p.PublicMessage:
        """Answer the CSAT survey message ``message_id`` with ``rating`` 1-5."""
        return self.session.client.submit_csat(
            self.session.source_id, self.id, message_id, rating, feedback_message
        )
