"""Webhooks (reference agent §3.7, §9): their management shapes, the delivery outbox, and the
payloads the gateway signs and posts to them.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from .public import Attachment, JSONObject
from .push import ConversationEventData

__all__ = [
    "DEFAULT_WEBHOOK_SUBSCRIPTIONS",
    "WEBHOOK_EVENTS",
    "InboxWebhookSecret",
    "Webhook",
    "WebhookAccount",
    "WebhookAgentBot",
    "WebhookContact",
    "WebhookContactEvent",
    "WebhookConversation",
    "WebhookDeliveriesEnvelope",
    "WebhookDeliveriesPayload",
    "WebhookDelivery",
    "WebhookEnvelope",
    "WebhookFields",
    "WebhookInboxRef",
    "WebhookListEnvelope",
    "WebhookListPayload",
    "WebhookMessage",
    "WebhookPayload",
    "WebhookRequest",
    "WebhookUser",
]


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


# --------------------------------------------------------------------------------------------
# Managing webhooks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Payloads posted to webhooks (§9.2)
# --------------------------------------------------------------------------------------------


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
