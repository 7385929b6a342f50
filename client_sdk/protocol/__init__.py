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
    # The user or agent bot who acted, when one did (agent and bot replies, deletes).
    performer: UserSender | AgentBotSender | UnsetType = UNSET


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
# Requests are lenient like the public ones; ids are ``Any`` because Chatwoot's clients send
# them as numbers or strings (the seeds show strings) and a non-numeric id is a 404, not a 422.


class AgentMessageInput(Struct, kw_only=True):
    """``message`` of a conversation create, and the body of ``POST .../messages``."""

    content: str | None = None
    message_type: str | None = None
    private: bool | None = None
    content_type: str | None = None
    # An object, or the same object as a JSON string (form posts).
    content_attributes: Any = None
    template_params: JSONObject | None = None
    echo_id: str | None = None
    source_id: str | None = None
    external_created_at: Any = None
    campaign_id: Any = None


class AgentConversationCreateRequest(Struct, kw_only=True):
    """``POST /api/v1/accounts/{a}/conversations`` (seed 000)."""

    inbox_id: Any = None
    contact_id: Any = None
    source_id: str | None = None
    status: str | None = None
    assignee_id: Any = None
    team_id: Any = None
    snoozed_until: Any = None
    custom_attributes: JSONObject | None = None
    additional_attributes: JSONObject | None = None
    message: AgentMessageInput | None = None
    hmac_verified: bool | None = None


class ToggleStatusRequest(Struct, kw_only=True):
    """No status toggles open <-> resolved; ``snoozed_until`` is epoch seconds."""

    status: str | None = None
    snoozed_until: Any = None


class TogglePriorityRequest(Struct, kw_only=True):
    """Missing, empty or ``"none"`` clears the priority."""

    priority: str | None = None


class ConversationUpdateRequest(Struct, kw_only=True):
    """``PATCH .../conversations/{id}``: ``priority`` is the only key taken."""

    priority: str | UnsetType | None = UNSET


class CustomAttributesRequest(Struct, kw_only=True):
    custom_attributes: JSONObject | None = None


class AssignmentRequest(Struct, kw_only=True):
    """``assignee_id`` (takes precedence) or ``team_id``; absent and null differ."""

    assignee_id: Any = UNSET
    assignee_type: str | None = None
    team_id: Any = UNSET


class LabelsRequest(Struct, kw_only=True):
    labels: list[str] | None = None


class MessageStatusRequest(Struct, kw_only=True):
    """``PATCH .../messages/{id}``: an integrator reports channel delivery."""

    status: str | None = None
    external_error: str | None = None


class ConversationContact(Struct, kw_only=True):
    """``meta.sender`` of a conversation: the contact (reference agent §2.3) without its
    contact_inboxes; ``last_activity_at`` and ``created_at`` are omitted when null."""

    additional_attributes: JSONObject = {}
    availability_status: str = "offline"
    email: str | None = None
    id: int
    name: str
    phone_number: str | None = None
    blocked: bool = False
    identifier: str | None = None
    thumbnail: str = ""
    custom_attributes: JSONObject = {}
    last_activity_at: int | UnsetType = UNSET
    created_at: int | UnsetType = UNSET


class ConversationAssignee(Agent, kw_only=True):
    """``meta.assignee``: the agent shape plus the seeds' ``see_all_conversations``."""

    see_all_conversations: bool = False


class ConversationTeam(Struct, kw_only=True):
    """``meta.team``; ``is_member`` says whether the requesting user is in it."""

    id: int
    name: str
    description: str | None = None
    allow_auto_assign: bool = True
    account_id: int
    is_member: bool = False


class TeamRecord(Struct, kw_only=True):
    """The raw team record an assignment to a team answers with."""

    id: int
    name: str
    description: str | None = None
    allow_auto_assign: bool = True
    account_id: int
    created_at: str
    updated_at: str


class AgentUserSender(Struct, kw_only=True, tag_field="type", tag="user"):
    """A user as the sender of a message in agent API responses (with the seeds' ``email``
    and ``logo_user_url``)."""

    id: int
    name: str
    available_name: str
    email: str | None = None
    avatar_url: str = ""
    logo_user_url: str = ""
    availability_status: str = "offline"
    thumbnail: str = ""


AgentSender = ContactSender | AgentUserSender | AgentBotSender


class ConversationMessage(Struct, kw_only=True):
    """A message inside a conversation (``messages[]``, ``last_non_activity_message``): the push
    shape plus the seeds' ``label_list`` and ``created_at_exact``."""

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
    label_list: list[str] = []
    created_at_exact: str = ""
    conversation: MessageConversationRef | None = None
    attachments: list[Attachment] | UnsetType = UNSET
    sender: AgentSender | UnsetType = UNSET


class AgentConversationMeta(Struct, kw_only=True):
    """``assignee``, ``assignee_type`` and ``team`` are absent (not null) when empty."""

    sender: ConversationContact
    channel: str = "Channel::Api"
    assignee: ConversationAssignee | UnsetType = UNSET
    assignee_type: str | UnsetType = UNSET
    team: ConversationTeam | UnsetType = UNSET
    hmac_verified: bool = False


class AgentConversation(Struct, kw_only=True):
    """The full conversation (reference agent §2.1; seeds 000 and 001). ``messages`` holds at
    most the last message, private notes and activity included."""

    meta: AgentConversationMeta
    id: int
    messages: list[ConversationMessage] = []
    account_id: int
    uuid: str
    additional_attributes: JSONObject = {}
    agent_last_seen_at: int = 0
    assignee_last_seen_at: int = 0
    can_reply: bool = True
    contact_last_seen_at: int = 0
    custom_attributes: JSONObject = {}
    inbox_id: int
    labels: list[str] = []
    muted: bool = False
    snoozed_until: str | None = None
    status: str
    created_at: int
    updated_at: float
    timestamp: int
    first_reply_created_at: int = 0
    unread_count: int = 0
    last_non_activity_message: ConversationMessage | None = None
    last_activity_at: int
    priority: str | None = None
    waiting_since: int = 0
    sla_policy_id: int | None = None


class ConversationCounts(Struct, kw_only=True):
    mine_count: int
    assigned_count: int
    unassigned_count: int
    all_count: int


class ConversationPage(Struct, kw_only=True):
    meta: ConversationCounts
    payload: list[AgentConversation]


class ConversationList(Struct, kw_only=True):
    """``GET .../conversations``: ``{"data": {"meta": counts, "payload": [...]}}``."""

    data: ConversationPage


class ConversationCountsResponse(Struct, kw_only=True):
    """``GET .../conversations/meta``."""

    meta: ConversationCounts


class ToggleStatusPayload(Struct, kw_only=True):
    success: bool | None = True
    conversation_id: int
    current_status: str
    snoozed_until: str | None = None


class ToggleStatusResponse(Struct, kw_only=True):
    meta: JSONObject = {}
    payload: ToggleStatusPayload


class CustomAttributesResponse(Struct, kw_only=True):
    custom_attributes: JSONObject


class LabelsResponse(Struct, kw_only=True):
    payload: list[str]


class AgentMessage(Struct, kw_only=True):
    """A message in agent API responses (reference agent §2.2a; seed 002). ``echo_id`` only
    when the create request had one; ``attachments`` and ``sender`` only when present."""

    id: int
    content: str | None
    inbox_id: int
    conversation_id: int
    message_type: int
    content_type: str = "text"
    status: str = "sent"
    content_attributes: JSONObject = {}
    created_at: int
    private: bool = False
    source_id: str | None = None
    sender: AgentSender | UnsetType = UNSET
    created_at_exact: str = ""
    echo_id: str | UnsetType = UNSET
    attachments: list[Attachment] | UnsetType = UNSET


class MessagesMeta(Struct, kw_only=True):
    labels: list[str] = []
    additional_attributes: JSONObject = {}
    contact: ContactSender | None = None
    assignee: UserSender | UnsetType = UNSET
    agent_last_seen_at: str | None = None
    assignee_last_seen_at: str | None = None


class MessagesResponse(Struct, kw_only=True):
    """``GET .../conversations/{id}/messages``: oldest first."""

    meta: MessagesMeta
    payload: list[AgentMessage]


agent_conversation_decoder = msgspec.json.Decoder(AgentConversation)
conversation_list_decoder = msgspec.json.Decoder(ConversationList)
agent_message_decoder = msgspec.json.Decoder(AgentMessage)
messages_response_decoder = msgspec.json.Decoder(MessagesResponse)


# ---- agent API shapes: contacts, inboxes, platform (issue 4) --------------------------------
#
# Requests use UNSET for "not given" where a PATCH must tell it from an explicit null.


class AgentContactRequest(Struct, kw_only=True):
    """Body of the agent API's ``POST|PATCH .../contacts[/{id}]`` (reference agent §3.5)."""

    name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    phone_number: str | UnsetType | None = UNSET
    identifier: str | UnsetType | None = UNSET
    blocked: bool | UnsetType = UNSET
    avatar_url: str | None = None
    custom_attributes: JSONObject | UnsetType | None = UNSET
    additional_attributes: JSONObject | UnsetType | None = UNSET
    inbox_id: int | None = None
    source_id: str | None = None


class ContactInboxesRequest(Struct, kw_only=True):
    """Body of ``POST .../contacts/{id}/contact_inboxes``."""

    inbox_id: int | None = None
    source_id: str | None = None


class ContactInboxInbox(Struct, kw_only=True):
    id: int
    avatar_url: str = ""
    channel_id: int
    name: str
    channel_type: str = "Channel::Api"
    provider: str | None = None


class ContactInboxEntry(Struct, kw_only=True):
    source_id: str
    inbox: ContactInboxInbox


class AgentContact(Struct, kw_only=True):
    """A contact on the agent API (Chatwoot's ``_contact.json.jbuilder``, reference agent §2.3).
    Times are epoch seconds, left out when unknown; ``contact_inboxes`` only on ``/contacts``."""

    additional_attributes: JSONObject = {}
    availability_status: str = "offline"
    email: str | None = None
    id: int
    name: str
    phone_number: str | None = None
    blocked: bool = False
    identifier: str | None = None
    thumbnail: str = ""
    custom_attributes: JSONObject = {}
    last_activity_at: int | UnsetType = UNSET
    created_at: int | UnsetType = UNSET
    contact_inboxes: list[ContactInboxEntry] | UnsetType = UNSET


class ContactPayload(Struct, kw_only=True):
    payload: AgentContact


class ListMeta(Struct, kw_only=True):
    count: int
    current_page: int


class ContactList(Struct, kw_only=True):
    """``GET .../contacts`` and ``.../contacts/search``: 15 per page."""

    meta: ListMeta
    payload: list[AgentContact]


class InboxRecord(Struct, kw_only=True):
    """An inbox as its raw database record (Chatwoot's ``render json: inbox``): what contact
    create returns under ``contact_inbox.inbox``. It carries no secret."""

    id: int
    channel_id: int
    account_id: int
    name: str
    created_at: str
    updated_at: str
    channel_type: str = "Channel::Api"
    enable_auto_assignment: bool = True
    greeting_enabled: bool = False
    greeting_message: str | None = None
    email_address: str | None = None
    working_hours_enabled: bool = False
    out_of_office_message: str | None = None
    timezone: str = "UTC"
    enable_email_collect: bool = True
    csat_survey_enabled: bool = False
    allow_messages_after_resolved: bool = True
    auto_assignment_config: JSONObject = {}
    lock_to_single_conversation: bool = False
    portal_id: int | None = None
    sender_name_type: str = "friendly"
    business_name: str | None = None
    csat_config: JSONObject = {}


class CreatedContactInbox(Struct, kw_only=True):
    inbox: InboxRecord | None = None
    source_id: str | None = None


class CreatedContact(Struct, kw_only=True):
    contact: AgentContact
    contact_inbox: CreatedContactInbox


class ContactCreateResponse(Struct, kw_only=True):
    """``POST .../contacts``: ``{"payload": {"contact": ..., "contact_inbox": ...}}``."""

    payload: CreatedContact


class ContactConversationList(Struct, kw_only=True):
    """``GET .../contacts/{id}/conversations``: at most 20, newest first."""

    payload: list[AgentConversation]


class ContactEventData(Struct, kw_only=True):
    """``data`` of ``contact.created`` / ``contact.updated`` on the account stream (Chatwoot's
    ``Contact#push_event_data`` with the account id)."""

    additional_attributes: JSONObject = {}
    custom_attributes: JSONObject = {}
    email: str | None = None
    id: int
    identifier: str | None = None
    name: str
    phone_number: str | None = None
    thumbnail: str = ""
    blocked: bool = False
    type: str = "contact"
    account_id: int


class InboxChannelRequest(Struct, kw_only=True):
    """``channel`` of an inbox create or update; only ``api`` channels exist in inboxgate."""

    type: str | None = None
    webhook_url: str | UnsetType | None = UNSET
    hmac_mandatory: bool | UnsetType | None = UNSET
    additional_attributes: JSONObject | UnsetType | None = UNSET


class InboxRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH .../inboxes[/{id}]`` (reference agent §3.6)."""

    name: str | UnsetType | None = UNSET
    greeting_enabled: bool | UnsetType | None = UNSET
    greeting_message: str | UnsetType | None = UNSET
    enable_email_collect: bool | UnsetType | None = UNSET
    csat_survey_enabled: bool | UnsetType | None = UNSET
    csat_config: JSONObject | UnsetType | None = UNSET
    enable_auto_assignment: bool | UnsetType | None = UNSET
    working_hours_enabled: bool | UnsetType | None = UNSET
    working_hours: list[WorkingHour] | UnsetType | None = UNSET
    out_of_office_message: str | UnsetType | None = UNSET
    timezone: str | UnsetType | None = UNSET
    allow_messages_after_resolved: bool | UnsetType | None = UNSET
    lock_to_single_conversation: bool | UnsetType | None = UNSET
    sender_name_type: str | UnsetType | None = UNSET
    business_name: str | UnsetType | None = UNSET
    channel: InboxChannelRequest | None = None


class AgentInbox(Struct, kw_only=True):
    """An API inbox on the agent API (Chatwoot's ``_inbox.json.jbuilder``, reference agent
    §2.5). ``hmac_token`` only for administrators; ``inbox_identifier`` is the public API's
    ``{inbox_identifier}``."""

    id: int
    avatar_url: str = ""
    channel_id: int
    name: str
    channel_type: str = "Channel::Api"
    greeting_enabled: bool = False
    greeting_message: str | None = None
    working_hours_enabled: bool = False
    enable_email_collect: bool = True
    csat_survey_enabled: bool = False
    csat_config: JSONObject = {}
    enable_auto_assignment: bool = True
    auto_assignment_config: JSONObject = {}
    out_of_office_message: str | None = None
    working_hours: list[WorkingHour] = []
    timezone: str = "UTC"
    callback_webhook_url: str | None = None
    allow_messages_after_resolved: bool = True
    lock_to_single_conversation: bool = False
    sender_name_type: str = "friendly"
    business_name: str | None = None
    allowed_domains: str | None = None
    widget_color: str | None = None
    website_url: str | None = None
    hmac_mandatory: bool = False
    welcome_title: str | None = None
    welcome_tagline: str | None = None
    web_widget_script: str | None = None
    website_token: str | None = None
    selected_feature_flags: list[str] | None = None
    reply_time: str | None = None
    messaging_service_sid: str | None = None
    phone_number: str | None = None
    hmac_token: str | UnsetType = UNSET
    webhook_url: str | None = None
    inbox_identifier: str
    additional_attributes: JSONObject = {}
    provider: str | None = None


class InboxList(Struct, kw_only=True):
    payload: list[AgentInbox]


class InboxMembersRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH|DELETE .../inbox_members``."""

    inbox_id: int | None = None
    user_ids: list[int] | None = None


class AgentList(Struct, kw_only=True):
    """``{"payload": [<agent>]}``: an inbox's members."""

    payload: list[Agent]


class AgentRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH .../agents[/{id}]``. ``availability_status`` is what seed 003
    calls ``availability``; both are read, and ``available`` means ``online``."""

    name: str | None = None
    email: str | None = None
    role: str | None = None
    availability: str | None = None
    availability_status: str | None = None
    auto_offline: bool | None = None


class CreatedAgent(Agent, kw_only=True):
    """An agent just created by ``POST .../agents``. A new user's ``access_token`` is shown
    here, once: only its hash is stored (inboxgate sends no invitation e-mail)."""

    access_token: str | UnsetType = UNSET


class PlatformAccountRequest(Struct, kw_only=True):
    """Body of the platform API's ``POST|PATCH /accounts[/{id}]``."""

    name: str | UnsetType | None = UNSET
    locale: str | UnsetType | None = UNSET
    domain: str | UnsetType | None = UNSET
    support_email: str | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET
    features: dict[str, bool] | None = None
    limits: JSONObject | None = None
    custom_attributes: JSONObject | None = None


class PlatformAccount(Struct, kw_only=True):
    id: int
    name: str
    locale: str = "en"
    domain: str | None = None
    support_email: str | None = None
    features: dict[str, bool] = {}
    custom_attributes: JSONObject = {}
    limits: JSONObject = {}
    status: str = "active"


class AccountUserRequest(Struct, kw_only=True):
    """Body of ``POST|DELETE /platform/api/v1/accounts/{id}/account_users``."""

    user_id: int | None = None
    role: str | None = None


class AccountUserRecord(Struct, kw_only=True):
    """An account membership as its raw record (Chatwoot's ``render json: account_user``)."""

    id: int | None
    account_id: int
    user_id: int
    role: str
    inviter_id: int | None = None
    created_at: str
    updated_at: str
    active_at: str | None = None
    availability: str = "online"
    auto_offline: bool = True
    custom_role_id: int | None = None
    agent_capacity_policy_id: int | None = None


class PlatformUserRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH /platform/api/v1/users[/{id}]``."""

    name: str | UnsetType | None = UNSET
    display_name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    password: str | None = None
    custom_attributes: JSONObject | None = None


class PlatformUserAccount(Struct, kw_only=True):
    id: int
    name: str
    active_at: str | None = None
    role: str


class PlatformUser(Struct, kw_only=True):
    """A user on the platform API. ``access_token`` is present only in the answer that
    created or rotated it: only its hash is stored."""

    access_token: str | UnsetType = UNSET
    account_id: int | None = None
    available_name: str
    avatar_url: str = ""
    confirmed: bool = True
    display_name: str | None = None
    message_signature: str | None = None
    email: str
    id: int
    name: str
    provider: str = "email"
    pubsub_token: str
    custom_attributes: JSONObject = {}
    role: str | None = None
    ui_settings: JSONObject = {}
    uid: str
    accounts: list[PlatformUserAccount] = []


class TokenUser(Struct, kw_only=True):
    id: int
    name: str
    display_name: str | None = None
    email: str
    pubsub_token: str


class UserToken(Struct, kw_only=True):
    """``POST /platform/api/v1/users/{id}/token``: a new access token (the old one stops
    working)."""

    access_token: str
    expiry: int | None = None
    user: TokenUser


# ---- webhook payloads (issue 4) --------------------------------------------------------------


WEBHOOK_EVENTS = (
    "conversation_status_changed",
    "conversation_updated",
    "conversation_created",
    "contact_created",
    "contact_updated",
    "message_created",
    "message_updated",
    "webwidget_triggered",
    "inbox_created",
    "inbox_updated",
    "conversation_typing_on",
    "conversation_typing_off",
)
# What a webhook created without ``subscriptions`` receives (Chatwoot's column default).
DEFAULT_WEBHOOK_SUBSCRIPTIONS = WEBHOOK_EVENTS[:8]


class WebhookFields(Struct, kw_only=True):
    """The webhook attributes of a create or update; UNSET means "not given"."""

    url: str | UnsetType | None = UNSET
    name: str | UnsetType | None = UNSET
    subscriptions: list[str] | UnsetType | None = UNSET
    inbox_id: int | UnsetType | None = UNSET


class WebhookRequest(WebhookFields, kw_only=True):
    """Body of ``POST|PATCH .../webhooks``: the attributes at the top level or under
    ``webhook`` (Rails' wrap_parameters accepts both)."""

    webhook: WebhookFields | None = None


class WebhookInboxRef(Struct, kw_only=True):
    id: int
    name: str


class Webhook(Struct, kw_only=True):
    """An account webhook (reference agent §3.7). ``secret`` signs its deliveries:
    ``X-Chatwoot-Signature: sha256=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))``."""

    id: int
    name: str | None = None
    url: str
    account_id: int
    subscriptions: list[str]
    inbox: WebhookInboxRef | UnsetType = UNSET
    secret: str


class WebhookPayload(Struct, kw_only=True):
    webhook: Webhook


class WebhookEnvelope(Struct, kw_only=True):
    """``{"payload": {"webhook": {...}}}``: create and update."""

    payload: WebhookPayload


class WebhookListPayload(Struct, kw_only=True):
    webhooks: list[Webhook]


class WebhookListEnvelope(Struct, kw_only=True):
    """``{"payload": {"webhooks": [...]}}``: list."""

    payload: WebhookListPayload


class WebhookDelivery(Struct, kw_only=True):
    """One delivery in the outbox (inboxgate's ``GET .../webhook_deliveries``): ``id`` is the
    ``X-Chatwoot-Delivery`` header; ``status`` is ``pending``, ``delivered`` or ``dead``."""

    id: str
    event: str
    receiver: str
    webhook_id: int | None = None
    inbox_id: int | None = None
    url: str
    status: str
    attempts: int
    last_error: str | None = None
    last_status_code: int | None = None
    created_at: str
    next_attempt_at: str | None = None
    delivered_at: str | None = None


class WebhookDeliveriesPayload(Struct, kw_only=True):
    deliveries: list[WebhookDelivery]


class WebhookDeliveriesEnvelope(Struct, kw_only=True):
    payload: WebhookDeliveriesPayload


class InboxWebhookSecret(Struct, kw_only=True):
    """The secret that signs the deliveries to an API inbox's ``webhook_url``."""

    inbox_id: int
    webhook_url: str | None = None
    secret: str


class WebhookAccount(Struct, kw_only=True):
    id: int
    name: str


class WebhookContact(Struct, kw_only=True):
    """A contact in webhook payloads (Chatwoot's ``Contact#webhook_data``; no ``type``)."""

    account: WebhookAccount
    additional_attributes: JSONObject = {}
    avatar: str = ""
    custom_attributes: JSONObject = {}
    email: str | None = None
    id: int
    identifier: str | None = None
    name: str
    phone_number: str | None = None
    thumbnail: str = ""
    blocked: bool = False


class WebhookUser(Struct, kw_only=True):
    id: int
    name: str
    email: str | None = None
    type: str = "user"


class WebhookAgentBot(Struct, kw_only=True):
    id: int
    name: str
    type: str = "agent_bot"


class WebhookMessage(Struct, kw_only=True):
    """``message_created`` / ``message_updated`` (§9.2): ``message_type`` is the string enum,
    ``created_at`` ISO; ``sender`` is a :class:`WebhookContact`, :class:`WebhookUser`,
    :class:`WebhookAgentBot` or null (kept ``Any``: the contact shape carries no tag)."""

    event: str
    id: int
    content: str | None
    content_type: str
    content_attributes: JSONObject = {}
    message_type: str
    private: bool = False
    source_id: str | None = None
    created_at: str
    additional_attributes: JSONObject = {}
    account: WebhookAccount
    inbox: WebhookInboxRef
    conversation: ConversationEventData
    sender: Any = None
    attachments: list[Attachment] | UnsetType = UNSET


class WebhookConversation(ConversationEventData, kw_only=True):
    """``conversation_*`` (§9.2): the conversation push shape (no ``account_id``) plus
    ``event``; ``changed_attributes`` on status changes (null) and updates."""

    event: str
    changed_attributes: list[JSONObject] | UnsetType | None = UNSET


class WebhookContactEvent(WebhookContact, kw_only=True):
    """``contact_created`` / ``contact_updated`` (account webhooks only)."""

    event: str
    changed_attributes: list[JSONObject] | UnsetType | None = UNSET


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
# Agent bots (reference agent §2.4, §3.6, §3.8, §4, §6) and agent typing
# --------------------------------------------------------------------------------------------


class AgentBotRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH .../agent_bots[/{id}]`` (account or platform), at the top level or
    under ``agent_bot``; UNSET means "not given". ``account_id`` is read by the Platform API
    only (none: a system bot, usable in every account)."""

    name: str | UnsetType | None = UNSET
    description: str | UnsetType | None = UNSET
    outgoing_url: str | UnsetType | None = UNSET
    avatar_url: str | UnsetType | None = UNSET
    bot_type: str | UnsetType | None = UNSET
    bot_config: JSONObject | UnsetType | None = UNSET
    account_id: Any = UNSET


class AgentBot(Struct, kw_only=True):
    """An agent bot as the application API shows it. ``outgoing_url`` is absent for system
    bots; ``access_token`` only in the answer that created or rotated it (only its hash is
    kept); ``secret`` (signs the deliveries to ``outgoing_url``) only to administrators of
    the bot's own account."""

    id: int
    name: str
    description: str | None = None
    thumbnail: str = ""
    outgoing_url: str | UnsetType | None = UNSET
    bot_type: str = "webhook"
    bot_config: JSONObject = {}
    account_id: int | None = None
    access_token: str | UnsetType = UNSET
    secret: str | UnsetType = UNSET
    system_bot: bool = False


class InboxAgentBot(Struct, kw_only=True):
    """``GET .../inboxes/{id}/agent_bot``: the bot (no token), or ``{}`` without one."""

    agent_bot: Any


class SetAgentBotRequest(Struct, kw_only=True):
    """``POST .../inboxes/{id}/set_agent_bot``: a bot id attaches, null detaches."""

    agent_bot: Any = UNSET


class PlatformAgentBot(Struct, kw_only=True):
    """An agent bot as the Platform API shows it (with the real ``outgoing_url``, not
    Chatwoot's name-in-the-url bug)."""

    id: int
    name: str
    description: str | None = None
    outgoing_url: str | None = None
    account_id: int | None = None
    thumbnail: str = ""
    access_token: str | UnsetType = UNSET
    secret: str


class AgentTypingRequest(Struct, kw_only=True):
    """Body of ``POST .../conversations/{id}/toggle_typing_status``."""

    typing_status: str | None = None
    is_private: Any = None


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
