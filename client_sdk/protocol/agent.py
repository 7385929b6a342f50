"""The agent API's conversations, messages and typing (reference agent §2.1, §2.2):
what agents, bots and back offices send and receive under ``/api/v1/accounts/{id}``.

Only the gateway (and integrators' own clients) use these; the customer SDK does not.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from .public import AgentBotSender, Attachment, ContactSender, JSONObject, UserSender
from .push import MessageConversationRef

__all__ = [
    "Agent",
    "AgentConversation",
    "AgentConversationCreateRequest",
    "AgentConversationMeta",
    "AgentMessage",
    "AgentMessageInput",
    "AgentSender",
    "AgentTypingRequest",
    "AgentUserSender",
    "AssignmentRequest",
    "ConversationAssignee",
    "ConversationContact",
    "ConversationCounts",
    "ConversationCountsResponse",
    "ConversationList",
    "ConversationMessage",
    "ConversationPage",
    "ConversationTeam",
    "ConversationUpdateRequest",
    "CustomAttributesRequest",
    "CustomAttributesResponse",
    "LabelsRequest",
    "LabelsResponse",
    "MessageStatusRequest",
    "MessagesMeta",
    "MessagesResponse",
    "TeamRecord",
    "TogglePriorityRequest",
    "ToggleStatusPayload",
    "ToggleStatusRequest",
    "ToggleStatusResponse",
]


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


# --------------------------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Typing
# --------------------------------------------------------------------------------------------


class AgentTypingRequest(Struct, kw_only=True):
    """Body of ``POST .../conversations/{id}/toggle_typing_status``."""

    typing_status: str | None = None
    is_private: Any = None
