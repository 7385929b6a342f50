"""``InboxClient``: the public client API over httpx.Client, and sessions over the websockets
sync client. Its twin :class:`~client_sdk.async_client.AsyncInboxClient` has the same methods
with the same parameters; both are thin shells over :mod:`~client_sdk.http_core` (the calls)
and :mod:`~client_sdk.flows` (the multi-step flows), moving only bytes and time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from . import errors, flows, http_core
from . import protocol as p
from .cable_core import DEFAULT_PROTOCOLS, STALE_AFTER, ReconnectPolicy
from .http_core import ApiCall, ApiRoutes, AttachmentFile
from .options import RealtimeOptions, default_cable_url
from .outbox import Outbox
from .session_core import SessionState
from .sync_session import ChatSession

T = TypeVar("T")


class SyncWebSocket(Protocol):
    """What a session needs of a websocket (websockets' sync ``ClientConnection`` is one).
    ``recv`` raises ``TimeoutError`` when nothing arrived within ``timeout`` seconds."""

    @property
    def subprotocol(self) -> str | None: ...

    def send(self, message: str | bytes) -> None: ...

    def recv(self, timeout: float | None = None) -> str | bytes: ...

    def close(self) -> None: ...


SyncConnector = Callable[[str, Sequence[str]], SyncWebSocket]


def websockets_connect(url: str, subprotocols: Sequence[str]) -> SyncWebSocket:
    """The default connector: websockets' sync client, offering ``subprotocols``."""
    connection = ws_connect(
        url,
        subprotocols=[Subprotocol(name) for name in subprotocols],
        open_timeout=10,
        ping_interval=None,  # Action Cable has its own pings; staleness is judged on them
        compression=None,
        max_size=16 * 1024 * 1024,
    )
    # The session owns the connection and closes it itself; entering it is how websockets
    # (17.1+) is told that this is deliberate rather than a forgotten ``with``.
    return connection.__enter__()


class InboxClient:
    """The customer side of one API inbox, synchronously.

    ``base_url`` is the gateway's (or Chatwoot's) root URL; ``inbox_identifier`` the inbox's
    public identifier. ``http`` and ``connect`` inject an HTTP client and a websocket connector
    (tests run in-process with them). ``outbox`` is a path to a SQLite file that keeps unsent
    messages across runs (default: in memory). ``rate_limit_retries`` > 0 retries a 429 after
    its ``Retry-After`` (at most ``max_retry_after`` seconds). ``cable_url`` defaults to
    ``ws(s)://<base>/cable``; ``protocols`` to the extended JSON protocol, then plain JSON.

    Every API method raises :class:`~client_sdk.errors.TransportError` when the server cannot be
    reached, an :class:`~client_sdk.errors.ApiError` subclass for an error answer (``NotFound``,
    ``Unauthorized``, ``ValidationFailed``, ``RateLimited``...), and
    :class:`~client_sdk.errors.ProtocolError` for an answer it cannot read.
    """

    def __init__(
        self,
        base_url: str,
        inbox_identifier: str,
        *,
        http: httpx.Client | None = None,
        connect: SyncConnector | None = None,
        cable_url: str | None = None,
        protocols: Sequence[str] = DEFAULT_PROTOCOLS,
        outbox: Outbox | str | Path | None = None,
        rate_limit_retries: int = 0,
        max_retry_after: float = 60.0,
        timeout: float = 10.0,
        reconnect: ReconnectPolicy | None = None,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.inbox_identifier = inbox_identifier
        self.routes = ApiRoutes(inbox_identifier)
        self._own_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        self.connect: SyncConnector = connect or websockets_connect
        self.realtime = RealtimeOptions(
            cable_url or default_cable_url(self.base_url),
            tuple(protocols),
            reconnect or ReconnectPolicy(),
            stale_after,
        )
        self._own_outbox = not isinstance(outbox, Outbox)
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox)
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_after = max_retry_after

    def close(self) -> None:
        """Close the HTTP client and the outbox (unless they were passed in)."""
        if self._own_http:
            self.http.close()
        if self._own_outbox:
            self.outbox.close()

    def __enter__(self) -> InboxClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def _api(self) -> flows.Api:
        return flows.Api(self.routes, self.rate_limit_retries, self.max_retry_after)

    def _call(self, call: ApiCall[T]) -> T:
        return self._run(self._api.call(call))

    def _run(self, flow: flows.Flow[T]) -> T:
        return flows.drive(flow, self._perform)

    def _perform(self, effect: flows.Effect[Any]) -> Any:
        match effect:
            case flows.Request(call):
                try:
                    response = self.http.request(
                        call.method, self.base_url + call.path, params=call.params or None,
                        content=call.json, data=call.form or None, files=call.files or None,
                        headers=call.headers,
                    )  # fmt: skip
                except httpx.HTTPError as exc:
                    raise errors.TransportError(f"{call.method} {call.path}: {exc!r}") from exc
                return response.status_code, response.headers, response.content
            case flows.Sleep(seconds):
                time.sleep(seconds)
                return None
        raise TypeError(f"not an HTTP effect: {effect!r}")

    # -- sessions -----------------------------------------------------------------------------

    def start_session(
        self,
        *,
        source_id: str | None = None,
        identifier: str | None = None,
        identifier_hash: str | None = None,
        hmac_token: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone_number: str | None = None,
        avatar_url: str | None = None,
        custom_attributes: p.JSONObject | None = None,
    ) -> ChatSession:
        """Create a contact session (or attach to the one ``source_id`` names) and return it.

        For an identified user pass ``identifier`` and either its ``identifier_hash`` or, where
        this code runs server-side, the inbox's ``hmac_token`` to compute it; the session is
        then verified (sees the user's conversations from every device). Raises as the API
        methods do (``Unauthorized`` for a wrong hash).
        """
        request = p.ContactCreateRequest(
            source_id=source_id, identifier=identifier, identifier_hash=identifier_hash,
            email=email, name=name, phone_number=phone_number, avatar_url=avatar_url,
            custom_attributes=custom_attributes,
        )  # fmt: skip
        state = self._run(self._api.start_session(self.base_url, request, hmac_token))
        return ChatSession(self, state, resumed=False)

    def resume_session(self, state: SessionState) -> ChatSession:
        """A session saved earlier (:meth:`SessionState.load`), continuing where it stopped:
        its subscription asks for what it missed since its last saved position."""
        return ChatSession(self, state, resumed=True)

    # -- the public API (reference §3) ----------------------------------------------------------

    def get_inbox(self) -> p.PublicInbox:
        """The inbox: name, working hours, whether identity validation is required."""
        return self._call(self.routes.get_inbox())

    def create_contact(
        self,
        *,
        source_id: str | None = None,
        identifier: str | None = None,
        identifier_hash: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone_number: str | None = None,
        avatar_url: str | None = None,
        custom_attributes: p.JSONObject | None = None,
    ) -> p.PublicContact:
        """Create a contact session (an existing ``source_id`` returns that session). Keep the
        answer's ``source_id`` and ``pubsub_token``. Raises ``ValidationFailed`` for a bad
        e-mail or phone, ``Unauthorized`` for a wrong ``identifier_hash``."""
        req = p.ContactCreateRequest(
            source_id=source_id, identifier=identifier, identifier_hash=identifier_hash,
            email=email, name=name, phone_number=phone_number, avatar_url=avatar_url,
            custom_attributes=custom_attributes,
        )  # fmt: skip
        return self._call(self.routes.create_contact(req))

    def get_contact(
        self, source_id: str, *, identifier: str | None = None, identifier_hash: str | None = None
    ) -> p.PublicContact:
        """The contact session; with a valid ``identifier``/``identifier_hash`` it becomes
        verified. Raises ``NotFound``, ``Unauthorized``."""
        return self._call(self.routes.get_contact(source_id, identifier, identifier_hash))

    def update_contact(
        self,
        source_id: str,
        *,
        identifier: str | None = None,
        identifier_hash: str | None = None,
        email: str | None = None,
        name: str | None = None,
        phone_number: str | None = None,
        avatar_url: str | None = None,
        custom_attributes: p.JSONObject | None = None,
    ) -> p.Contact:
        """Update (and with a valid hash, verify) the contact; returns the raw contact record.
        Raises ``NotFound``, ``Unauthorized``, ``ValidationFailed``."""
        req = p.ContactUpdateRequest(
            identifier=identifier, identifier_hash=identifier_hash, email=email, name=name,
            phone_number=phone_number, avatar_url=avatar_url, custom_attributes=custom_attributes,
        )  # fmt: skip
        return self._call(self.routes.update_contact(source_id, req))

    def list_conversations(self, source_id: str) -> list[p.PublicConversation]:
        """The session's conversations, each with its messages. Raises ``NotFound``."""
        return self._call(self.routes.list_conversations(source_id))

    def create_conversation(
        self, source_id: str, *, custom_attributes: p.JSONObject | None = None
    ) -> p.PublicConversation:
        """Open a conversation. Raises ``NotFound``, ``ValidationFailed``."""
        return self._call(self.routes.create_conversation(source_id, custom_attributes))

    def get_conversation(self, source_id: str, conversation_id: int) -> p.PublicConversation:
        """One conversation. Raises ``NotFound``."""
        return self._call(self.routes.get_conversation(source_id, conversation_id))

    def resolve_conversation(self, source_id: str, conversation_id: int) -> p.PublicConversation:
        """Resolve it (a new message reopens it). Raises ``NotFound``."""
        return self._call(self.routes.resolve_conversation(source_id, conversation_id))

    def toggle_typing(self, source_id: str, conversation_id: int, typing: bool = True) -> None:
        """Tell the agents the customer is (or stopped) typing. Raises ``NotFound``."""
        self._call(self.routes.toggle_typing(source_id, conversation_id, typing))

    def update_last_seen(self, source_id: str, conversation_id: int) -> None:
        """Mark the conversation read by the customer. Raises ``NotFound``."""
        self._call(self.routes.update_last_seen(source_id, conversation_id))

    def list_messages(
        self, source_id: str, conversation_id: int, *, before: int | None = None
    ) -> list[p.PublicMessage]:
        """Up to 20 messages, oldest first: the latest, or those before message ``before``.
        Raises ``NotFound``."""
        return self._call(self.routes.list_messages(source_id, conversation_id, before))

    def messages_after(
        self, source_id: str, conversation_id: int, after: int = 0
    ) -> list[p.PublicMessage]:
        """Every message newer than message id ``after``, oldest first, paging back through
        the list (works on Chatwoot, which has no ``after``). Raises ``NotFound``."""
        return self._run(self._api.messages_after(source_id, conversation_id, after))

    def send_message(
        self,
        source_id: str,
        conversation_id: int,
        content: str | None = None,
        *,
        echo_id: str | None = None,
        attachments: Sequence[AttachmentFile] = (),
    ) -> p.PublicMessage:
        """Post a message now (no outbox: sessions queue theirs). The gateway stores a given
        ``echo_id`` once per conversation, so a retry with it is safe. Raises ``NotFound``,
        ``ValidationFailed``, ``PayloadTooLarge``, ``TransportError``."""
        call = self.routes.send_message(source_id, conversation_id, content, echo_id, attachments)
        return self._call(call)

    def update_message(
        self,
        source_id: str,
        conversation_id: int,
        message_id: int,
        submitted_values: p.SubmittedValue | list[p.SubmittedValue],
    ) -> p.PublicMessage:
        """Answer a form or survey message (``submitted_values``). Raises ``NotFound``,
        ``ValidationFailed`` (a CSAT older than the lock)."""
        call = self.routes.update_message(source_id, conversation_id, message_id, submitted_values)
        return self._call(call)

    def submit_csat(
        self,
        source_id: str,
        conversation_id: int,
        message_id: int,
        rating: int,
        feedback_message: str | None = None,
    ) -> p.PublicMessage:
        """Rate a conversation through its survey message (``content_type`` ``input_csat``).
        Raises ``ValueError`` unless ``rating`` is 1-5; ``NotFound``, ``ValidationFailed``."""
        answer = p.SubmittedValue(
            csat_survey_response=http_core.csat_response(rating, feedback_message)
        )
        return self.update_message(source_id, conversation_id, message_id, answer)

    def get_csat_survey(self, conversation_uuid: str) -> p.CsatSurvey:
        """The survey of a conversation, by its ``uuid``. Raises ``NotFound``."""
        return self._call(self.routes.get_csat_survey(conversation_uuid))

    def submit_csat_survey(
        self, conversation_uuid: str, rating: int, feedback_message: str | None = None
    ) -> p.CsatSurvey:
        """Rate a conversation by its ``uuid`` (no contact session needed). Raises
        ``ValueError`` unless ``rating`` is 1-5; ``NotFound``, ``ValidationFailed``."""
        call = self.routes.submit_csat_survey(conversation_uuid, rating, feedback_message)
        return self._call(call)
