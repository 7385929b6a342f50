"""The inboxgate wire protocol: every shape that crosses a process boundary.

The gateway and the SDK both import this module; nothing redefines a shape. It depends only on the
standard library and msgspec. Encoders and decoders are built once, here, at module level.

Shapes follow Chatwoot's public client API (``reference/chatwoot-public-api.md`` §3, §6.6) so a
client written for Chatwoot decodes them unchanged:

* request bodies (``*Request``) are lenient: every field optional, unknown fields ignored;
* server-to-client shapes never forbid unknown fields and give new fields defaults, so an older
  SDK keeps decoding a newer gateway;
* fields that Chatwoot omits when empty (``attachments``, ``sender``) default to ``UNSET``, which
  msgspec leaves out of the encoded object.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType

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


class ContactSender(Struct, kw_only=True, tag_field="type", tag="contact"):
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


# --------------------------------------------------------------------------------------------
# Push shapes (realtime events and the event log), §6.6
# --------------------------------------------------------------------------------------------


class ContactInboxRef(Struct, kw_only=True):
    source_id: str


class MessageConversationRef(Struct, kw_only=True):
    assignee_id: int | None = None
    unread_count: int = 0
    last_activity_at: int = 0
    contact_inbox: ContactInboxRef | None = None


class MessageEventData(Struct, kw_only=True):
    """``data`` of ``message.created`` / ``message.updated`` (Chatwoot's push_event_data)."""

    id: int
    content: str | None
    account_id: int
    inbox_id: int
    conversation_id: int
    message_type: int
    created_at: int
    updated_at: str
    private: bool = False
    status: str = "sent"
    source_id: str | None = None
    content_type: str = "text"
    content_attributes: JSONObject = {}
    sender_type: str | None = None
    sender_id: int | None = None
    external_source_ids: JSONObject = {}
    additional_attributes: JSONObject = {}
    processed_message_content: str | None = None
    sentiment: JSONObject = {}
    conversation: MessageConversationRef | None = None
    echo_id: str | UnsetType = UNSET
    attachments: list[Attachment] | UnsetType = UNSET
    sender: Sender | UnsetType = UNSET
    previous_changes: JSONObject | UnsetType = UNSET


class ContactInboxPush(Struct, kw_only=True):
    id: int
    contact_id: int
    inbox_id: int
    source_id: str
    created_at: str
    updated_at: str
    hmac_verified: bool
    pubsub_token: str


class ConversationMeta(Struct, kw_only=True):
    sender: ContactSender | None = None
    assignee: Any = None
    assignee_type: str | None = None
    team: Any = None
    hmac_verified: bool = False


class ConversationEventData(Struct, kw_only=True):
    """``data`` of ``conversation.*`` events (Chatwoot's EventDataPresenter#push_data)."""

    additional_attributes: JSONObject = {}
    can_reply: bool = True
    channel: str = "Channel::Api"
    contact_inbox: ContactInboxPush | None = None
    id: int
    inbox_id: int
    messages: list[MessageEventData] = []
    labels: list[str] = []
    meta: ConversationMeta = msgspec.field(default_factory=ConversationMeta)
    status: str
    custom_attributes: JSONObject = {}
    snoozed_until: str | None = None
    unread_count: int = 0
    first_reply_created_at: str | None = None
    priority: str | None = None
    waiting_since: int = 0
    agent_last_seen_at: int = 0
    contact_last_seen_at: int = 0
    last_activity_at: int = 0
    timestamp: int = 0
    created_at: int = 0
    updated_at: float = 0.0
    account_id: int | UnsetType = UNSET


class Agent(Struct, kw_only=True):
    """An agent of an account (reference agent §2.4): agents lists, ``meta.assignee``,
    assignments. ``availability_status`` is ``online``, ``busy`` or ``offline``."""

    id: int
    account_id: int
    availability_status: str = "online"
    auto_offline: bool = True
    confirmed: bool = True
    email: str
    provider: str = "email"
    available_name: str
    name: str
    role: str
    thumbnail: str = ""
    custom_role_id: int | None = None


# ---- agent API shapes: conversations and messages (issue 4) ---------------------------------


# ---- agent API shapes: contacts, inboxes, platform (issue 4) --------------------------------


# ---- webhook payloads (issue 4) --------------------------------------------------------------


class HighLevelConversationRequest(Struct, kw_only=True):
    """GoHighLevel's ``POST /conversations/`` body (seed 004). Lenient on decode: a missing or
    non-string id is a 422 the service reports, not a decode error."""

    locationId: Any = None  # GoHighLevel spells its fields in camelCase
    contactId: Any = None


class HighLevelConversation(Struct, kw_only=True):
    id: str
    dateUpdated: str
    dateAdded: str
    deleted: bool = False
    contactId: str
    locationId: str
    lastMessageDate: str
    assignedTo: str = ""


class HighLevelConversationResponse(Struct, kw_only=True):
    success: bool = True
    conversation: HighLevelConversation


class HighLevelError(Struct, kw_only=True, omit_defaults=True):
    """GoHighLevel's error envelope: ``message`` is a list for 422, a string otherwise, and a
    400 carries no ``error``."""

    statusCode: int
    message: str | list[str]
    error: str | None = None


class ProfileAccount(Struct, kw_only=True):
    """One account of the signed-in user (agent API ``/profile``, reference agent §2.6)."""

    id: int
    name: str
    status: str = "active"
    active_at: str | None = None
    role: str
    permissions: list[str] = []
    availability: str = "online"
    availability_status: str = "online"
    auto_offline: bool = True
    custom_role_id: int | None = None
    custom_role: Any = None


class Profile(Struct, kw_only=True):
    """``GET /api/v1/profile``: the user, their tokens (``pubsub_token`` subscribes on /cable)
    and their accounts."""

    access_token: str
    account_id: int | None = None
    available_name: str
    avatar_url: str = ""
    confirmed: bool = True
    display_name: str | None = None
    message_signature: str | None = None
    email: str
    id: int
    inviter_id: int | None = None
    name: str
    provider: str = "email"
    pubsub_token: str
    role: str | None = None
    ui_settings: JSONObject = {}
    uid: str
    type: str | None = None
    accounts: list[ProfileAccount] = []


class TypingEventData(Struct, kw_only=True):
    """``data`` of ``conversation.typing_on`` / ``typing_off``: the conversation push shape
    (without ``account_id``), the actor, and whether an agent typed a private note."""

    conversation: ConversationEventData
    user: ContactSender | UserSender
    is_private: bool = False
    account_id: int
    performer: UserSender | UnsetType = UNSET


class PresenceEventData(Struct, kw_only=True):
    """``data`` of ``presence.update``: ids (string keys) of who was seen within the presence
    window and their availability; ``contacts`` only for agents."""

    account_id: int
    users: dict[str, str] = {}
    contacts: dict[str, str] | UnsetType = UNSET


class Event(Struct, kw_only=True):
    """The ``message`` of a broadcast: ``{"event": "message.created", "data": {...}}``.

    ``data`` stays ``Any`` on decode so an SDK can skip event types it does not know.
    """

    event: str
    data: Any


# --------------------------------------------------------------------------------------------
# Encoders and decoders, built once
# --------------------------------------------------------------------------------------------

json_encoder = msgspec.json.Encoder()

contact_create_decoder = msgspec.json.Decoder(ContactCreateRequest)
contact_update_decoder = msgspec.json.Decoder(ContactUpdateRequest)
conversation_create_decoder = msgspec.json.Decoder(ConversationCreateRequest)
toggle_typing_decoder = msgspec.json.Decoder(ToggleTypingRequest)
message_create_decoder = msgspec.json.Decoder(MessageCreateRequest)
message_update_decoder = msgspec.json.Decoder(MessageUpdateRequest)
csat_survey_update_decoder = msgspec.json.Decoder(CsatSurveyUpdateRequest)

public_inbox_decoder = msgspec.json.Decoder(PublicInbox)
public_contact_decoder = msgspec.json.Decoder(PublicContact)
contact_decoder = msgspec.json.Decoder(Contact)
public_conversation_decoder = msgspec.json.Decoder(PublicConversation)
public_conversations_decoder = msgspec.json.Decoder(list[PublicConversation])
public_message_decoder = msgspec.json.Decoder(PublicMessage)
public_messages_decoder = msgspec.json.Decoder(list[PublicMessage])
csat_survey_decoder = msgspec.json.Decoder(CsatSurvey)
event_decoder = msgspec.json.Decoder(Event)


def encode(value: Any) -> bytes:
    """Encode any protocol Struct (or list of them) to JSON bytes."""
    return json_encoder.encode(value)
