"""The public client API as sans-I/O calls: each route is a function that returns an
:class:`ApiCall` (what to send, and how to read the answer). The sync and async clients only
move the bytes, so both speak the API identically.

Shapes and routes: ``reference/chatwoot-public-api.md`` §3. Everything here also works against
a Chatwoot server, except where a docstring says otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec

from . import errors
from . import protocol as p
from .cable_core import ReconnectPolicy

T = TypeVar("T")

# Chatwoot's messages index returns at most this many messages per page (§3.11).
MESSAGES_PAGE_SIZE = 20
CSAT_PATH = "/public/api/v1/csat_survey/"


@dataclass(frozen=True)
class AttachmentFile:
    """A file to send with a message: its name, bytes and MIME type."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class ApiCall(Generic[T]):
    """One request, ready to send, and the parser of its successful answer.

    ``json`` is an encoded JSON body; ``form`` and ``files`` a multipart body (never both).
    """

    method: str
    path: str
    parse: Callable[[bytes], T]
    params: Mapping[str, str] = field(default_factory=dict)
    json: bytes | None = None
    form: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[tuple[str, tuple[str, bytes, str]]] = ()

    @property
    def headers(self) -> dict[str, str]:
        base = {"Accept": "application/json"}
        if self.json is not None:
            base["Content-Type"] = "application/json"
        return base


def identifier_hash(hmac_token: str, identifier: str) -> str:
    """The ``identifier_hash`` for ``identifier``: hex HMAC-SHA256 keyed with the inbox's
    ``hmac_token``. Compute it where the token is kept secret (your backend), never in an app
    shipped to customers."""
    return hmac.new(hmac_token.encode(), identifier.encode(), hashlib.sha256).hexdigest()


# -- parsing --------------------------------------------------------------------------------


def _decoder(kind: Any) -> Callable[[bytes], Any]:
    dec = msgspec.json.Decoder(kind)

    def parse(body: bytes) -> Any:
        try:
            return dec.decode(body)
        except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
            raise errors.ProtocolError(f"unexpected response: {exc}") from None

    return parse


def _nothing(_body: bytes) -> None:
    return None


_inbox = _decoder(p.PublicInbox)
_public_contact = _decoder(p.PublicContact)
_contact = _decoder(p.Contact)
_conversation = _decoder(p.PublicConversation)
_conversations = _decoder(list[p.PublicConversation])
_message = _decoder(p.PublicMessage)
_messages = _decoder(list[p.PublicMessage])
_survey = _decoder(p.CsatSurvey)
_json_any = msgspec.json.Decoder()


def check(status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Raise the :mod:`~client_sdk.errors` exception for an error answer; return on 2xx."""
    if 200 <= status < 300:
        return
    try:
        decoded: Any = _json_any.decode(body) if body else None
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        decoded = body.decode(errors="replace")
    message = _message_of(decoded) or f"HTTP {status}"
    if status == 422:
        attrs = decoded.get("attributes") if isinstance(decoded, dict) else None
        names = [str(a) for a in attrs] if isinstance(attrs, list) else []
        raise errors.ValidationFailed(status, message, decoded, attributes=names)
    if status == 429:
        retry = retry_after_seconds(headers.get("retry-after"))
        raise errors.RateLimited(status, message, decoded, retry_after=retry)
    if status >= 500:
        raise errors.ServerError(status, message, decoded)
    raise errors._BY_STATUS.get(status, errors.ApiError)(status, message, decoded)


def _message_of(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("description", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return body.strip() if isinstance(body, str) else ""


def handle(call: ApiCall[T], status: int, headers: Mapping[str, str], body: bytes) -> T:
    """The typed result of ``call`` given the answer; raises its error otherwise."""
    check(status, headers, body)
    return call.parse(body)


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


# Without ``Retry-After``: the SDK's one backoff rule, from a second, uncapped (the caller's cap
# refuses a longer wait instead of shortening it).
RATE_LIMIT_BACKOFF = ReconnectPolicy(base=1.0, cap=math.inf)


def rate_limit_delay(exc: errors.RateLimited, attempt: int, retries: int, cap: float) -> float:
    """How long to wait before retry ``attempt`` (0-based) of a rate-limited call; raises
    ``exc`` when the caller allowed no more retries or the wait would exceed ``cap``. Chatwoot
    sends no ``Retry-After``: then a jittered second, doubled per attempt."""
    if attempt >= retries:
        raise exc
    wait = exc.retry_after
    if wait is None:
        wait = RATE_LIMIT_BACKOFF.delay(attempt)
    if wait > cap:
        raise exc
    return wait


# -- the routes -------------------------------------------------------------------------------


class ApiRoutes:
    """The calls of one inbox: ``/public/api/v1/inboxes/{inbox_identifier}/...``."""

    def __init__(self, inbox_identifier: str) -> None:
        self.inbox_identifier = inbox_identifier
        self.base = "/public/api/v1/inboxes/" + quote(inbox_identifier, safe="")

    def _contact(self, source_id: str) -> str:
        return f"{self.base}/contacts/{quote(source_id, safe='')}"

    def _conv(self, source_id: str, conversation_id: int) -> str:
        return f"{self._contact(source_id)}/conversations/{int(conversation_id)}"

    def get_inbox(self) -> ApiCall[p.PublicInbox]:
        return ApiCall("GET", self.base, _inbox)

    def create_contact(self, req: p.ContactCreateRequest) -> ApiCall[p.PublicContact]:
        return ApiCall("POST", self.base + "/contacts", _public_contact, json=_body(req))

    def get_contact(
        self, source_id: str, identifier: str | None, identifier_hash: str | None
    ) -> ApiCall[p.PublicContact]:
        params = {}
        if identifier is not None:
            params["identifier"] = identifier
        if identifier_hash is not None:
            params["identifier_hash"] = identifier_hash
        return ApiCall("GET", self._contact(source_id), _public_contact, params=params)

    def update_contact(self, source_id: str, req: p.ContactUpdateRequest) -> ApiCall[p.Contact]:
        return ApiCall("PATCH", self._contact(source_id), _contact, json=_body(req))

    def list_conversations(self, source_id: str) -> ApiCall[list[p.PublicConversation]]:
        return ApiCall("GET", self._contact(source_id) + "/conversations", _conversations)

    def create_conversation(
        self, source_id: str, custom_attributes: p.JSONObject | None
    ) -> ApiCall[p.PublicConversation]:
        body = _body(p.ConversationCreateRequest(custom_attributes=custom_attributes))
        return ApiCall(
            "POST", self._contact(source_id) + "/conversations", _conversation, json=body
        )

    def get_conversation(self, source_id: str, conv: int) -> ApiCall[p.PublicConversation]:
        return ApiCall("GET", self._conv(source_id, conv), _conversation)

    def resolve_conversation(self, source_id: str, conv: int) -> ApiCall[p.PublicConversation]:
        return ApiCall("POST", self._conv(source_id, conv) + "/toggle_status", _conversation)

    def toggle_typing(self, source_id: str, conv: int, typing: bool) -> ApiCall[None]:
        body = _body(p.ToggleTypingRequest(typing_status="on" if typing else "off"))
        return ApiCall("POST", self._conv(source_id, conv) + "/toggle_typing", _nothing, json=body)

    def update_last_seen(self, source_id: str, conv: int) -> ApiCall[None]:
        return ApiCall("POST", self._conv(source_id, conv) + "/update_last_seen", _nothing)

    def list_messages(
        self, source_id: str, conv: int, before: int | None
    ) -> ApiCall[list[p.PublicMessage]]:
        params = {} if before is None else {"before": str(int(before))}
        return ApiCall("GET", self._conv(source_id, conv) + "/messages", _messages, params=params)

    def send_message(
        self,
        source_id: str,
        conv: int,
        content: str | None,
        echo_id: str | None,
        attachments: Sequence[AttachmentFile],
    ) -> ApiCall[p.PublicMessage]:
        path = self._conv(source_id, conv) + "/messages"
        if not attachments:
            req = p.MessageCreateRequest(content=content, echo_id=echo_id)
            return ApiCall("POST", path, _message, json=_body(req))
        form = {k: v for k, v in (("content", content), ("echo_id", echo_id)) if v is not None}
        files = [("attachments[]", (a.filename, a.content, a.content_type)) for a in attachments]
        return ApiCall("POST", path, _message, form=form, files=files)

    def update_message(
        self,
        source_id: str,
        conv: int,
        message_id: int,
        submitted_values: p.SubmittedValue | list[p.SubmittedValue],
    ) -> ApiCall[p.PublicMessage]:
        path = f"{self._conv(source_id, conv)}/messages/{int(message_id)}"
        body = _body(p.MessageUpdateRequest(submitted_values=submitted_values))
        return ApiCall("PATCH", path, _message, json=body)

    @staticmethod
    def get_csat_survey(conversation_uuid: str) -> ApiCall[p.CsatSurvey]:
        return ApiCall("GET", CSAT_PATH + quote(conversation_uuid, safe=""), _survey)

    @staticmethod
    def submit_csat_survey(
        conversation_uuid: str, rating: int, feedback_message: str | None
    ) -> ApiCall[p.CsatSurvey]:
        answer = p.SubmittedValue(csat_survey_response=csat_response(rating, feedback_message))
        body = _body(
            p.CsatSurveyUpdateRequest(message=p.CsatSurveyMessageInput(submitted_values=answer))
        )
        return ApiCall("PATCH", CSAT_PATH + quote(conversation_uuid, safe=""), _survey, json=body)


def csat_response(rating: int, feedback_message: str | None) -> p.CsatSurveyResponseInput:
    """A CSAT answer; raises ``ValueError`` unless ``rating`` is an int from 1 to 5 (Chatwoot
    would accept anything and drop a bad rating silently, §5)."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValueError(f"rating must be an integer from 1 to 5, got {rating!r}")
    return p.CsatSurveyResponseInput(rating=rating, feedback_message=feedback_message)


_encoder = msgspec.json.Encoder()


def _body(req: msgspec.Struct) -> bytes:
    """A request Struct as JSON without its None fields (Chatwoot reads absent and null alike,
    and absent keeps the bodies small)."""
    values = {k: v for k, v in msgspec.structs.asdict(req).items() if v is not None}
    return _encoder.encode(values)


def older_pages_needed(page: Sequence[p.PublicMessage], after: int) -> bool:
    """Whether a catch-up after message ``after`` must also read the page before ``page``:
    the page was full and its oldest message is still newer than ``after``."""
    return len(page) >= MESSAGES_PAGE_SIZE and page[0].id > after
