"""The agent API's contacts, inboxes, inbox members, agents and the signed-in user's profile
(reference agent §2.3-2.6, §3.5, §3.6): an account's administration.

Requests use ``UNSET`` for "not given" where a PATCH must tell it from an explicit null.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from .agent import Agent, AgentConversation
from .public import JSONObject, WorkingHour

__all__ = [
    "AgentContact",
    "AgentContactRequest",
    "AgentInbox",
    "AgentList",
    "AgentRequest",
    "ContactConversationList",
    "ContactCreateResponse",
    "ContactInboxEntry",
    "ContactInboxInbox",
    "ContactInboxesRequest",
    "ContactList",
    "ContactPayload",
    "CreatedAgent",
    "CreatedContact",
    "CreatedContactInbox",
    "InboxChannelRequest",
    "InboxList",
    "InboxMembersRequest",
    "InboxRecord",
    "InboxRequest",
    "ListMeta",
    "Profile",
    "ProfileAccount",
]


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


# --------------------------------------------------------------------------------------------
# Inboxes
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Inbox members and agents
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The signed-in user (``GET /api/v1/profile``)
# --------------------------------------------------------------------------------------------


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
