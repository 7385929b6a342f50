"""The public client API (``reference/chatwoot-public-api.md`` §3): the shapes the SDK sends
and receives over HTTP, the senders and attachments every API shows, and the error bodies.

Requests (``*Request``) are lenient: every field optional, unknown fields ignored. Fields that
Chatwoot omits when empty (``attachments``, ``sender``) default to ``UNSET``, which msgspec
leaves out of the encoded object.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "CONTENT_TYPES",
    "MESSAGE_STATUSES",
    "MESSAGE_TYPE_ACTIVITY",
    "MESSAGE_TYPE_INCOMING",
    "MESSAGE_TYPE_NAMES",
    "MESSAGE_TYPE_OUTGOING",
    "MESSAGE_TYPE_TEMPLATE",
    "AgentBotSender",
    "Attachment",
    "Contact",
    "ContactCreateRequest",
    "ContactSender",
    "ContactUpdateRequest",
    "ConversationCreateRequest",
    "ConversationStatus",
    "CsatResponseRecord",
    "CsatSurvey",
    "CsatSurveyMessageInput",
    "CsatSurveyResponseInput",
    "CsatSurveyUpdateRequest",
    "DetailedError",
    "ErrorList",
    "JSONObject",
    "MessageCreateRequest",
    "MessageUpdateRequest",
    "PlainError",
    "PublicContact",
    "PublicConversation",
    "PublicInbox",
    "PublicMessage",
    "RequestErrorItem",
    "Sender",
    "StatusError",
    "SubmittedValue",
    "ToggleTypingRequest",
    "TypingStatus",
    "UserSender",
    "ValidationError",
    "WorkingHour",
]


JSONObject = dict[str, Any]


ConversationStatus = Literal["open", "resolved", "pending", "snoozed"]


TypingStatus = Literal["on", "off"]


# Integer values of Chatwoot's message_type enum, as the public API serialises them.
MESSAGE_TYPE_INCOMING = 0


MESSAGE_TYPE_OUTGOING = 1


MESSAGE_TYPE_ACTIVITY = 2


MESSAGE_TYPE_TEMPLATE = 3


MESSAGE_TYPE_NAMES = ("incoming", "outgoing", "activity", "template")


CONTENT_TYPES = (
    "text",
    "input_text",
    "input_textarea",
    "input_email",
    "input_select",
    "cards",
    "form",
    "article",
    "incoming_email",
    "input_csat",
    "integrations",
    "sticker",
    "voice_call",
)


MESSAGE_STATUSES = ("sent", "delivered", "read", "failed")


# --------------------------------------------------------------------------------------------
# Requests (client -> gateway). Lenient: all optional, unknown keys ignored.
# --------------------------------------------------------------------------------------------


class ContactCreateRequest(Struct, kw_only=True):
    """Body of ``POST .../contacts``: create a contact session, or attach to a known contact."""

    source_id: str | None = None
    identifier: str | None = None
    identifier_hash: str | None = None
    email: str | None = None
    name: str | None = None
    phone_number: str | None = None
    avatar_url: str | None = None
    custom_attributes: JSONObject | None = None


class ContactUpdateRequest(Struct, kw_only=True):
    """Body of ``PATCH|PUT .../contacts/{source_id}``: identify and update the contact.

    ``identifier`` is only used to check ``identifier_hash``; the public API never changes a
    contact's identifier after create (as Chatwoot).
    """

    identifier: str | None = None
    identifier_hash: str | None = None
    email: str | None = None
    name: str | None = None
    phone_number: str | None = None
    avatar_url: str | None = None
    custom_attributes: JSONObject | None = None


class ConversationCreateRequest(Struct, kw_only=True):
    """Body of ``POST .../conversations``; anything but custom attributes is dropped."""

    custom_attributes: JSONObject | None = None


class ToggleTypingRequest(Struct, kw_only=True):
    """Body (or query) of ``POST .../toggle_typing``; any other value is a no-op, as Chatwoot."""

    typing_status: str | None = None


class MessageCreateRequest(Struct, kw_only=True):
    """Body of ``POST .../messages``. ``echo_id`` makes the send idempotent per conversation."""

    content: str | None = None
    echo_id: str | None = None


class CsatSurveyResponseInput(Struct, kw_only=True, omit_defaults=True):
    """A CSAT answer: ``rating`` 1-5 and an optional comment."""

    # Any on decode: the gateway validates it (an int 1-5, or a numeric string as Chatwoot's
    # integer cast) so that every bad value gets the same 422 naming ``rating``.
    rating: Any = None
    feedback_message: str | None = None


class SubmittedValue(Struct, kw_only=True, omit_defaults=True):
    """One entry of ``submitted_values``: a form answer, or a CSAT response."""

    name: str | None = None
    title: str | None = None
    value: Any = None
    csat_survey_response: CsatSurveyResponseInput | None = None


class MessageUpdateRequest(Struct, kw_only=True):
    """Body of ``PATCH|PUT .../messages/{id}``: an object or a list of objects."""

    submitted_values: SubmittedValue | list[SubmittedValue] | None = None


class CsatSurveyMessageInput(Struct, kw_only=True):
    submitted_values: SubmittedValue | None = None


class CsatSurveyUpdateRequest(Struct, kw_only=True):
    """Body of ``PATCH|PUT /public/api/v1/csat_survey/{uuid}``."""

    message: CsatSurveyMessageInput | None = None


# --------------------------------------------------------------------------------------------
# Public shapes (gateway -> client), Chatwoot's jbuilder views (§3.15)
# --------------------------------------------------------------------------------------------


class WorkingHour(Struct, kw_only=True):
    day_of_week: int
    closed_all_day: bool
    open_hour: int | None = None
    open_minutes: int | None = None
    close_hour: int | None = None
    close_minutes: int | None = None
    open_all_day: bool = False


class PublicInbox(Struct, kw_only=True):
    identifier: str
    identity_validation_enabled: bool
    name: str
    timezone: str
    working_hours: list[WorkingHour]
    working_hours_enabled: bool
    csat_survey_enabled: bool
    greeting_enabled: bool
    # inboxgate additions for the web widget (Chatwoot's widget reads them from its page
    # config instead): the offline notice, the CSAT style, and the pre-chat form, which lives
    # in the channel's additional_attributes as on Chatwoot's web widget channel.
    greeting_message: str | None = None
    out_of_office_message: str | None = None
    csat_display_type: str = "emoji"
    pre_chat_form_enabled: bool = False
    pre_chat_form_options: JSONObject = {}


class PublicContact(Struct, kw_only=True):
    """A contact session: keep ``source_id`` (the credential) and ``pubsub_token`` (realtime)."""

    source_id: str
    pubsub_token: str
    id: int
    name: str
    email: str | None = None
    phone_number: str | None = None


class Contact(Struct, kw_only=True):
    """The raw contact record (Chatwoot's ``render json: contact``); ISO times."""

    id: int
    name: str
    email: str | None = None
    phone_number: str | None = None
    account_id: int
    created_at: str
    updated_at: str
    additional_attributes: JSONObject = {}
    identifier: str | None = None
    custom_attributes: JSONObject = {}
    last_activity_at: str | None = None
    contact_type: str = "visitor"
    middle_name: str = ""
    last_name: str = ""
    location: str | None = None
    country_code: str | None = None
    blocked: bool = False
    company_id: int | None = None


class ContactSender(Struct, kw_only=True, tag_field="type", tag="contact", gc=False):
    """A message's sender when a contact sent it: plain data, untracked as the message
    payload that holds it is (``push.MessageEventData``)."""

    additional_attributes: JSONObject = {}
    custom_attributes: JSONObject = {}
    email: str | None = None
    id: int
    identifier: str | None = None
    name: str
    phone_number: str | None = None
    thumbnail: str = ""
    blocked: bool = False


class UserSender(Struct, kw_only=True, tag_field="type", tag="user"):
    id: int
    name: str
    available_name: str
    avatar_url: str = ""
    availability_status: str = "offline"
    thumbnail: str = ""


class AgentBotSender(Struct, kw_only=True, tag_field="type", tag="agent_bot"):
    id: int
    name: str
    avatar_url: str = ""


Sender = ContactSender | UserSender | AgentBotSender


class Attachment(Struct, kw_only=True):
    """An attachment; ``data_url`` is an expiring signed URL on the gateway."""

    id: int
    message_id: int
    file_type: str
    account_id: int
    extension: str | None = None
    data_url: str = ""
    thumb_url: str = ""
    file_size: int = 0
    width: int | None = None
    height: int | None = None


class PublicMessage(Struct, kw_only=True):
    id: int
    content: str | None
    message_type: int
    content_type: str
    content_attributes: JSONObject
    created_at: int
    conversation_id: int
    attachments: list[Attachment] | UnsetType = UNSET
    sender: Sender | UnsetType = UNSET


class PublicConversation(Struct, kw_only=True):
    id: int
    uuid: str
    inbox_id: int
    contact_last_seen_at: int
    status: str
    agent_last_seen_at: int
    messages: list[PublicMessage]
    contact: Contact


class CsatResponseRecord(Struct, kw_only=True):
    id: int
    account_id: int
    conversation_id: int
    message_id: int
    rating: int
    feedback_message: str | None = None
    contact_id: int | None = None
    assigned_agent_id: int | None = None
    created_at: str
    updated_at: str


class CsatSurvey(Struct, kw_only=True):
    """``GET|PATCH /public/api/v1/csat_survey/{uuid}``; ``conversation_id`` is the internal id."""

    id: int
    csat_survey_response: CsatResponseRecord | None
    display_type: str
    content: str | None
    inbox_avatar_url: str = ""
    inbox_name: str
    locale: str = "en"
    conversation_id: int
    created_at: str


# --------------------------------------------------------------------------------------------
# Error bodies
# --------------------------------------------------------------------------------------------


class StatusError(Struct, kw_only=True):
    """Rails' public-exceptions body: ``{"status": 404, "error": "Not Found"}``."""

    status: int
    error: str


class ValidationError(Struct, kw_only=True):
    """422 body: ``{"message": "...", "attributes": ["content"]}``."""

    message: str
    attributes: list[str]


class PlainError(Struct, kw_only=True):
    """``{"error": "..."}``, e.g. the CSAT 14-day lock."""

    error: str


class ErrorList(Struct, kw_only=True):
    """``{"errors": ["..."]}``: the agent API's 401 without a token (Devise's body)."""

    errors: list[str]


class RequestErrorItem(Struct, kw_only=True):
    field: str
    message: str
    code: str


class DetailedError(Struct, kw_only=True):
    """Errors where inboxgate departs from Chatwoot (401 HMAC, 413, 429, 400): the swagger
    ``bad_request_error`` shape plus ``status`` and ``error`` so every error names its problem."""

    status: int
    error: str
    description: str
    errors: list[RequestErrorItem] = []
