"""``ChatSession`` and ``Conversation``: one contact session over the sync client, with its
realtime subscription and its outbox. The twin of :mod:`~client_sdk.async_session`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from websockets.exceptions import WebSocketException

from . import errors
from . import protocol as p
from .cable_core import CableCore
from .events import Event, MessageCreated
from .http_core import AttachmentFile
from .options import Sent
from .outbox import OutboxEntry
from .session_core import SessionCore, SessionState

if TYPE_CHECKING:
    from .sync_client import InboxClient, SyncWebSocket

log = logging.getLogger("client_sdk.session")

# While connected, queued sends that failed are retried this often.
OUTBOX_RETRY = 2.0
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
        self._flush_lock = threading.Lock()
        self._waiting: dict[str, p.PublicMessage | errors.InboxError | None] = {}
        self._ws: SyncWebSocket | None = None
        self._closed = threading.Event()
        self._listening = False
        self._reason = "closed"

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
        entry = self.client.outbox.add(
            self.source_id, conversation_id, content, attachments, echo_id
        )
        self._waiting[entry.echo_id] = None
        try:
            self.flush_outbox()
            outcome = self._waiting.get(entry.echo_id)
        finally:
            self._waiting.pop(entry.echo_id, None)
        if isinstance(outcome, errors.InboxError):
            raise outcome
        return Sent(entry.echo_id, outcome)

    def flush_outbox(self) -> int:
        """Deliver queued messages, oldest first, until one cannot go (the gateway is away).
        Returns how many were delivered. Never raises for a delivery failure."""
        with self._flush_lock:
            delivered = 0
            for entry in self.client.outbox.queued(self.source_id):
                try:
                    message = self.client.send_message(
                        self.source_id, entry.conversation_id, entry.content,
                        echo_id=entry.echo_id, attachments=entry.attachments,
                    )  # fmt: skip
                except errors.InboxError as exc:
                    if self._core.retry_later(exc):
                        break
                    self.client.outbox.mark_failed(entry.echo_id, str(exc))
                    if entry.echo_id in self._waiting:
                        self._waiting[entry.echo_id] = exc
                    continue
                self.client.outbox.mark_sent(entry.echo_id, message.id)
                self._core.track(message.conversation_id)
                if entry.echo_id in self._waiting:
                    self._waiting[entry.echo_id] = message
                delivered += 1
            return delivered

    # -- realtime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop :meth:`events` cleanly (it returns) and close the socket."""
        self._closed.set()
        ws = self._ws
        if ws is not None:
            with suppress(*_SOCKET_ERRORS):
                ws.close()

    def events(self) -> Iterator[Event]:
        """The session's events, live, until :meth:`close`: typed, each once, in order.

        Reconnects by itself (jittered exponential backoff), resuming the session or asking
        for history, or, on a server without history, fetching missed messages over HTTP;
        delivers the outbox whenever the subscription comes up. Raises
        :class:`~client_sdk.errors.ConnectionClosed` when the server ends the subscription for
        good, and :class:`~client_sdk.errors.ProtocolError` if it chose a protocol not offered.
        """
        if self._listening:
            raise RuntimeError("events() is already being iterated for this session")
        self._listening = True
        opts = self.client.realtime
        cable = self._core.cable(opts.protocols, opts.stale_after)
        attempt = 0
        try:
            while not self._closed.is_set():
                try:
                    ws = self.client.connect(cable.url(opts.cable_url), cable.protocols)
                except _SOCKET_ERRORS as exc:
                    log.debug("connect failed: %r", exc)
                    if opts.reconnect.gives_up(attempt):
                        raise errors.ConnectionClosed("gave up reconnecting") from exc
                    self._pause(opts.reconnect.delay(attempt))
                    attempt += 1
                    continue
                self._ws = ws
                reason = "closed"
                try:
                    cable.opened(ws.subprotocol, time.monotonic())
                    for event in self._listen(ws, cable):
                        attempt = 0
                        yield event
                    reason = self._reason
                finally:
                    self._ws = None
                    with suppress(*_SOCKET_ERRORS):
                        ws.close()
                if self._closed.is_set():
                    return
                yield cable.lost(reason)
                self._pause(opts.reconnect.delay(attempt))
                attempt += 1
        finally:
            self._listening = False

    def _pause(self, seconds: float) -> None:
        self._closed.wait(timeout=seconds)

    def _listen(self, ws: SyncWebSocket, cable: CableCore) -> Iterator[Event]:
        """One connection: frames in, events out, until it breaks (``self._reason`` says how)."""
        self._reason = "transport_closed"
        retry_at: float | None = None
        while not self._closed.is_set():
            now = time.monotonic()
            if retry_at is not None and now >= retry_at:
                retry_at = self._deliver(cable)
            wait = cable.time_left(now)
            if retry_at is not None:
                wait = min(wait, max(0.0, retry_at - now))
            if cable.time_left(now) <= 0:
                self._reason = "stale_connection"
                return
            try:
                raw = ws.recv(timeout=wait)
            except TimeoutError:
                continue  # stale, or time to retry the outbox: both checked above
            except _SOCKET_ERRORS:
                return
            step = cable.receive(raw, time.monotonic())
            try:
                for frame in step.send:
                    ws.send(frame)
            except _SOCKET_ERRORS:
                return
            for event in step.events:
                if self._accept(event):
                    yield event
            if step.catch_up:
                try:
                    for event in self._catch_up():
                        yield event
                except _SOCKET_ERRORS:
                    return  # the gateway went away mid catch-up: reconnect, catch up again
            if step.live:
                retry_at = self._deliver(cable)
            self._core.remember_since(cable)
            if step.closed is not None:
                self._reason = step.closed.reason
                if not step.closed.reconnect:
                    raise errors.ConnectionClosed(step.closed.reason)
                return

    def _deliver(self, cable: CableCore) -> float | None:
        self.flush_outbox()
        left = self.client.outbox.queued(self.source_id)
        return time.monotonic() + OUTBOX_RETRY if left and cable.live else None

    def _catch_up(self) -> list[Event]:
        listed = self.client.list_conversations(self.source_id)
        found: list[Event] = []
        for conversation_id, after in self._core.catch_up_plan(listed):
            messages = self.client.messages_after(self.source_id, conversation_id, after)
            found += [e for e in self._core.recovered(messages, after) if self._accept(e)]
        return found

    def _accept(self, event: Event) -> bool:
        """:meth:`SessionCore.accept`, then the outbox entry the message confirms settled."""
        if not self._core.accept(event):
            return False
        if isinstance(event, MessageCreated):
            self.client.outbox.settle(self.source_id, event.echo_id, event.message.id)
        return True


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
