"""``AsyncChatSession`` and ``AsyncConversation``: one contact session over the async client,
with its realtime subscription and its outbox. The twin of :mod:`~client_sdk.sync_session`;
both drive the same flows (:mod:`~client_sdk.session_flows`) and only move bytes and time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
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
    from .async_client import AsyncInboxClient, AsyncWebSocket

# What a broken socket or a failed connect may raise (an injected connector: OSError or ours).
_SOCKET_ERRORS = (OSError, TimeoutError, WebSocketException, errors.TransportError)


class AsyncChatSession:
    """A contact session: its conversations, its sends (through the outbox) and its events.

    Get one from :meth:`AsyncInboxClient.start_session` or :meth:`AsyncInboxClient.resume_session`;
    keep it across runs with :meth:`save`.
    """

    def __init__(self, client: AsyncInboxClient, state: SessionState, *, resumed: bool) -> None:
        self.client = client
        self.state = state
        self._core = SessionCore(state, resumed=resumed)
        self._flows = SessionFlows(self._core, client._api, client.realtime)
        self._flush_lock = asyncio.Lock()
        self._ws: AsyncWebSocket | None = None
        self._closed = asyncio.Event()

    @property
    def source_id(self) -> str:
        return self.state.source_id

    @property
    def pubsub_token(self) -> str:
        return self.state.pubsub_token

    def save(self, path: str | Path) -> None:
        """Write the session (credentials, conversations, positions) to ``path``."""
        self.state.save(path)

    def conversation(self, conversation_id: int) -> AsyncConversation:
        """The conversation with this id (no request is made)."""
        self._core.track(conversation_id)
        return AsyncConversation(self, conversation_id)

    async def conversations(self) -> list[AsyncConversation]:
        """The session's conversations, from the server. Raises as the client's methods."""
        listed = await self.client.list_conversations(self.source_id)
        return [self.conversation(c.id) for c in listed]

    async def start_conversation(
        self, *, custom_attributes: p.JSONObject | None = None
    ) -> AsyncConversation:
        """Open a new conversation. Raises as the client's methods."""
        created = await self.client.create_conversation(
            self.source_id, custom_attributes=custom_attributes
        )
        return self.conversation(created.id)

    async def identify(
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
        return await self.client.update_contact(
            self.source_id, identifier=identifier, identifier_hash=identifier_hash, email=email,
            name=name, phone_number=phone_number,
        )  # fmt: skip

    async def pending(self) -> list[OutboxEntry]:
        """The session's outbox: queued, sent but unconfirmed, and failed entries."""
        return await self.client.outbox.entries(self.source_id)

    # -- sends ----------------------------------------------------------------------------------

    async def send(
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
        return await flows.adrive(flow, self._perform)

    async def flush_outbox(self) -> int:
        """Deliver queued messages, oldest first, until one cannot go (the gateway is away).
        Returns how many were delivered. Never raises for a delivery failure."""
        async with self._flush_lock:
            return await flows.adrive(self._flows.flush(), self._perform)

    # -- realtime -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop :meth:`events` cleanly (it returns) and close the socket."""
        self._flows.closed = True
        self._closed.set()
        await self._drop_socket()

    async def events(self) -> AsyncIterator[Event]:
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
                    answer = await self._perform(step)
                except Exception as exc:  # thrown into the flow, which handles it or raises it
                    error = exc
        finally:
            flow.close()
            await self._drop_socket()

    async def _perform(self, effect: flows.Effect[Any]) -> Any:
        """One effect of a session flow, on asyncio (the outbox in worker threads)."""
        match effect:
            case flows.OutboxCall(method, args):
                return await self.client.outbox.run(method, *args)
            case flows.Flush():
                return await self.flush_outbox()
            case flows.Pause(seconds):
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), timeout=seconds)
                return None
            case flows.CloseSocket():
                return await self._drop_socket()
            case flows.Connect() | flows.Receive() | flows.SendFrame():
                try:
                    return await self._socket(effect)
                except _SOCKET_ERRORS as exc:
                    raise errors.TransportError(repr(exc)) from exc
        return await self.client._perform(effect)

    async def _socket(self, effect: flows.Effect[Any]) -> Any:
        match effect:
            case flows.Connect(url, protocols):
                self._ws = await self.client.connect(url, protocols)
                return self._ws.subprotocol
            case flows.Receive(timeout) if self._ws is not None:
                try:
                    return await asyncio.wait_for(self._ws.recv(), timeout=timeout)
                except TimeoutError:
                    return None
            case flows.SendFrame(frame) if self._ws is not None:
                return await self._ws.send(frame)
        raise errors.TransportError("the socket is closed")

    async def _drop_socket(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(*_SOCKET_ERRORS):
                await ws.close()


class AsyncConversation:
    """One conversation of a session. Methods raise as the client's methods do."""

    def __init__(self, session: AsyncChatSession, conversation_id: int) -> None:
        self.session = session
        self.id = conversation_id

    def __repr__(self) -> str:
        return f"AsyncConversation({self.id})"

    async def send(
        self,
        content: str | None = None,
        *,
        attachments: Sequence[AttachmentFile] = (),
        echo_id: str | None = None,
    ) -> Sent:
        """Send a message through the session's outbox (see :meth:`AsyncChatSession.send`)."""
        return await self.session.send(self.id, content, attachments=attachments, echo_id=echo_id)

    async def get(self) -> p.PublicConversation:
        """The conversation as the server has it now."""
        return await self.session.client.get_conversation(self.session.source_id, self.id)

    async def messages(self, *, before: int | None = None) -> list[p.PublicMessage]:
        """Up to 20 messages, oldest first: the latest, or those before message ``before``."""
        client = self.session.client
        return await client.list_messages(self.session.source_id, self.id, before=before)

    async def typing(self, typing: bool = True) -> None:
        """Show (or stop showing) the customer as typing to the agents."""
        await self.session.client.toggle_typing(self.session.source_id, self.id, typing)

    async def mark_seen(self) -> None:
        """Mark the conversation read by the customer."""
        await self.session.client.update_last_seen(self.session.source_id, self.id)

    async def resolve(self) -> p.PublicConversation:
        """Resolve the conversation."""
        return await self.session.client.resolve_conversation(self.session.source_id, self.id)

    async def rate(
        self, message_id: int, rating: int, feedback_message: str | None = None
    ) -> p.PublicMessage:
        """Answer the CSAT survey message ``message_id`` with ``rating`` 1-5."""
        return await self.session.client.submit_csat(
            self.session.source_id, self.id, message_id, rating, feedback_message
        )
