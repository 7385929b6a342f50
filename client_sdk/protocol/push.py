"""Realtime event payloads (``reference/chatwoot-public-api.md`` §6.6): the ``data`` of the
events broadcast on ``/cable``, kept in the event log and replayed on resume.

The SDK decodes these; :class:`Event` keeps ``data`` untyped so an SDK skips event types it
does not know.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .public import AgentBotSender, Attachment, ContactSender, JSONObject, Sender, UserSender

__all__ = [
    "ContactEventData",
    "ContactInboxPush",
    "ContactInboxRef",
    "ConversationEventData",
    "ConversationMeta",
    "Event",
    "MessageConversationRef",
    "MessageEventData",
    "PresenceEventData",
    "TypingEventData",
]


# --------------------------------------------------------------------------------------------
# Logged events: messages and conversations (the contact's, inbox and user streams)
# --------------------------------------------------------------------------------------------


class ContactInboxRef(Struct, kw_only=True):
    source_id: str


# A message's payload is plain data decoded from JSON or built from rows: nothing in it can
# refer back to it, so the collector is not asked to watch it (``gc=False``). The gateway keeps
# the last one of each conversation it wrote to (``incoming_batch``), thousands at a time.
class MessageConversationRef(Struct, kw_only=True, gc=False):
    assignee_id: int | None = None
    unread_count: int = 0
    last_activity_at: int = 0
    contact_inbox: ContactInboxRef | None = None


class MessageEventData(Struct, kw_only=True, gc=False):
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


# --------------------------------------------------------------------------------------------
# Logged events on the account stream
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Ephemeral events (sent, never logged) and the broadcast envelope
# --------------------------------------------------------------------------------------------


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
