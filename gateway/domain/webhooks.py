"""Webhooks: the account webhooks (reference agent §3.7) and writing the delivery outbox.

Who receives an event (reference §9.1):
* account webhooks subscribed to its name (one restricted to an inbox only hears that inbox's
  conversations and messages);
* the API inbox's ``webhook_url``, for every conversation and message event of the inbox.

:func:`enqueue` runs inside the transaction that logs the event, so a delivery exists exactly
when the event does. Sending, retrying and dead-lettering are ``outbox``'s and the worker's.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct

from client_sdk import protocol as p

from ..store.records import Contact, Record
from ..store.sql import Op, dump_json, load_json, one, rows, scalar
from ..views.webhooks import account_ref, contact_shape
from .errors import InvalidAttribute, NotFound
from .tokens import secure_token, uuid4

# Realtime event names and the webhook event each becomes.
WEBHOOK_EVENT_NAMES = {
    "message.created": "message_created",
    "message.updated": "message_updated",
    "conversation.created": "conversation_created",
    "conversation.status_changed": "conversation_status_changed",
    "conversation.updated": "conversation_updated",
    "contact.created": "contact_created",
    "contact.updated": "contact_updated",
}
# What an API inbox's webhook_url hears (no subscription filter; §9.1).
INBOX_CALLBACK_EVENTS = frozenset(
    {
        "message_created",
        "message_updated",
        "conversation_created",
        "conversation_status_changed",
        "conversation_updated",
    }
)
# What the inbox's agent bot hears at its outgoing_url: the inbox callback's events, and
# Chatwoot's bot-only conversation_opened / conversation_resolved (reference agent §6.4).
BOT_EVENTS = INBOX_CALLBACK_EVENTS | {"conversation_opened", "conversation_resolved"}
RECEIVER_ACCOUNT = "account"
RECEIVER_INBOX = "inbox"
RECEIVER_BOT = "agent_bot"


class Webhook(Record, kw_only=True):
    id: int
    account_id: int
    inbox_id: int | None
    name: str | None
    url: str
    subscriptions: list[str]
    secret: str
    created_at: float
    updated_at: float


class WebhookView(Struct, kw_only=True):
    webhook: Webhook
    inbox_name: str | None = None


class Receiver(Struct, kw_only=True, frozen=True):
    """One destination of one event."""

    kind: str
    url: str
    secret: str
    webhook_id: int | None = None
    inbox_id: int | None = None


class Changes(Struct, kw_only=True):
    """Validated attributes of a create or update; UNSET leaves a value as it is."""

    url: Any = UNSET
    name: Any = UNSET
    subscriptions: Any = UNSET
    inbox_id: Any = UNSET


# -- account webhooks ------------------------------------------------------------------------


def _view(webhook: Webhook) -> Op[WebhookView]:
    name = None
    if webhook.inbox_id is not None:
        name = yield from scalar("SELECT name FROM inboxes WHERE id = ?", webhook.inbox_id)
    return WebhookView(webhook=webhook, inbox_name=name)


def list_webhooks(account_id: int) -> Op[list[WebhookView]]:
    result = yield from rows(
        "SELECT w.id, w.account_id, w.inbox_id, w.name, w.url, w.subscriptions, w.secret, "
        "w.created_at, w.updated_at, i.name FROM webhooks w "
        "LEFT JOIN inboxes i ON i.id = w.inbox_id WHERE w.account_id = ? ORDER BY w.id",
        account_id,
    )
    return [WebhookView(webhook=Webhook.from_row(r), inbox_name=r[9]) for r in result]


def get_webhook(account_id: int, webhook_id: int) -> Op[Webhook]:
    row = yield from one(
        f"SELECT {Webhook.COLUMNS} FROM webhooks WHERE id = ? AND account_id = ?",
        webhook_id, account_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("webhook")
    return Webhook.from_row(row)


def _check(account_id: int, url: str, inbox_id: int | None, not_id: int) -> Op[None]:
    taken = yield from scalar(
        "SELECT id FROM webhooks WHERE account_id = ? AND url = ? AND id <> ?",
        account_id, url, not_id,
    )  # fmt: skip
    if taken is not None:
        raise InvalidAttribute("Url has already been taken", ["url"])
    if inbox_id is not None:
        found = yield from scalar(
            "SELECT id FROM inboxes WHERE id = ? AND account_id = ?", inbox_id, account_id
        )
        if found is None:
            raise InvalidAttribute("Inbox must exist", ["inbox"])


def create_webhook(account_id: int, changes: Changes, now: float) -> Op[WebhookView]:
    url: str = changes.url
    inbox_id = None if changes.inbox_id is UNSET else changes.inbox_id
    yield from _check(account_id, url, inbox_id, 0)
    subscriptions = (
        list(p.DEFAULT_WEBHOOK_SUBSCRIPTIONS)
        if changes.subscriptions is UNSET
        else changes.subscriptions
    )
    row = yield from one(
        "INSERT INTO webhooks (account_id, inbox_id, name, url, subscriptions, secret, "
        f"created_at, updated_at) VALUES (?,?,?,?,?,?,?,?) RETURNING {Webhook.COLUMNS}",
        account_id, inbox_id, None if changes.name is UNSET else changes.name, url,
        dump_json(subscriptions), secure_token(), now, now,
    )  # fmt: skip
    assert row is not None
    return (yield from _view(Webhook.from_row(row)))


def update_webhook(
    account_id: int, webhook_id: int, changes: Changes, now: float
) -> Op[WebhookView]:
    current = yield from get_webhook(account_id, webhook_id)
    url = current.url if changes.url is UNSET else changes.url
    inbox_id = current.inbox_id if changes.inbox_id is UNSET else changes.inbox_id
    yield from _check(account_id, url, inbox_id, current.id)
    row = yield from one(
        "UPDATE webhooks SET url = ?, name = ?, subscriptions = ?, inbox_id = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {Webhook.COLUMNS}",
        url, current.name if changes.name is UNSET else changes.name,
        dump_json(
            current.subscriptions if changes.subscriptions is UNSET else changes.subscriptions
        ),
        inbox_id, now, current.id,
    )  # fmt: skip
    assert row is not None
    if url != current.url:
        # Deliveries still waiting follow the webhook to its new address.
        yield from rows(
            "UPDATE webhook_deliveries SET url = ?, updated_at = ? "
            "WHERE webhook_id = ? AND status = 'pending'",
            url, now, current.id,
        )  # fmt: skip
    return (yield from _view(Webhook.from_row(row)))


def delete_webhook(account_id: int, webhook_id: int, now: float) -> Op[None]:
    current = yield from get_webhook(account_id, webhook_id)
    yield from rows(
        "UPDATE webhook_deliveries SET status = 'dead', last_error = ?, updated_at = ? "
        "WHERE webhook_id = ? AND status = 'pending'",
        "webhook deleted", now, current.id,
    )  # fmt: skip
    yield from rows("DELETE FROM webhooks WHERE id = ?", current.id)


def inbox_secret(account_id: int, inbox_id: int, now: float) -> Op[p.InboxWebhookSecret]:
    """The secret signing ``inbox_id``'s webhook_url deliveries, created on first use."""
    row = yield from one(
        "SELECT i.webhook_url, s.secret FROM inboxes i LEFT JOIN inbox_webhook_secrets s "
        "ON s.inbox_id = i.id WHERE i.id = ? AND i.account_id = ?",
        inbox_id, account_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("inbox")
    secret = row[1]
    if secret is None:
        secret = yield from _create_inbox_secret(inbox_id, now)
    return p.InboxWebhookSecret(inbox_id=inbox_id, webhook_url=row[0] or None, secret=secret)


def _create_inbox_secret(inbox_id: int, now: float) -> Op[str]:
    # Two writers may race here on a store with concurrent transactions: the first one wins.
    yield from rows(
        "INSERT INTO inbox_webhook_secrets (inbox_id, secret, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (inbox_id) DO NOTHING",
        inbox_id, secure_token(), now,
    )  # fmt: skip
    secret: str = yield from scalar(
        "SELECT secret FROM inbox_webhook_secrets WHERE inbox_id = ?", inbox_id
    )
    return secret


# -- the outbox ------------------------------------------------------------------------------

# An SQL condition, true when :func:`receivers` may find someone for an event of the inbox of
# row ``c`` (with ``account_id`` and ``inbox_id``) joined to its inbox ``i``: hot paths read it
# with what they read anyway, and look receivers up (and render payloads) only when it holds.
ANY_RECEIVER = (
    "(EXISTS (SELECT 1 FROM webhooks w WHERE w.account_id = c.account_id) "
    "OR (i.webhook_url IS NOT NULL AND i.webhook_url <> '') "
    "OR EXISTS (SELECT 1 FROM agent_bot_inboxes x JOIN agent_bots b ON b.id = x.agent_bot_id "
    "WHERE x.inbox_id = c.inbox_id AND x.status = 'active' AND b.outgoing_url IS NOT NULL "
    "AND b.outgoing_url <> ''))"
)


def receivers(
    account_id: int, inbox_id: int | None, event: str, now: float, *, inbox_callback: bool = True
) -> Op[list[Receiver]]:
    """Who must receive webhook ``event`` of ``inbox_id`` (None: an account-level event, such
    as a contact's), in one query: account webhooks, the API inbox's webhook_url, and the
    inbox's agent bot (signed with the bot's secret)."""
    inbox_key = inbox_id if inbox_id is not None else -1
    result = yield from rows(
        "SELECT 'account', id, url, secret, subscriptions, inbox_id FROM webhooks "
        "WHERE account_id = ? "
        "UNION ALL SELECT 'inbox', i.id, i.webhook_url, s.secret, NULL, i.id FROM inboxes i "
        "LEFT JOIN inbox_webhook_secrets s ON s.inbox_id = i.id "
        "WHERE i.id = ? AND i.webhook_url IS NOT NULL AND i.webhook_url <> '' "
        "UNION ALL SELECT 'agent_bot', b.id, b.outgoing_url, b.secret, NULL, x.inbox_id "
        "FROM agent_bot_inboxes x JOIN agent_bots b ON b.id = x.agent_bot_id "
        "WHERE x.inbox_id = ? AND x.status = 'active' AND b.outgoing_url IS NOT NULL "
        "AND b.outgoing_url <> ''",
        account_id, inbox_key, inbox_key,
    )  # fmt: skip
    found: list[Receiver] = []
    for kind, key, url, secret, subscriptions, only_inbox in result:
        if kind == RECEIVER_BOT:
            if event in BOT_EVENTS:
                found.append(Receiver(kind=kind, url=url, secret=secret, inbox_id=only_inbox))
        elif kind == RECEIVER_ACCOUNT:
            if event not in load_json(subscriptions, []):
                continue
            if only_inbox is not None and inbox_id is not None and only_inbox != inbox_id:
                continue
            found.append(Receiver(kind=kind, url=url, secret=secret, webhook_id=key))
        elif inbox_callback and event in INBOX_CALLBACK_EVENTS:
            if secret is None:
                secret = yield from _create_inbox_secret(key, now)
            found.append(Receiver(kind=kind, url=url, secret=secret, inbox_id=key))
    return found


def enqueue(
    account_id: int,
    targets: list[Receiver],
    event: str,
    body: bytes,
    now: float,
    *,
    message_id: int | None = None,
) -> Op[list[str]]:
    """Write one pending delivery per receiver, due now; returns their delivery ids."""
    ids: list[str] = []
    for target in targets:
        delivery_id = uuid4()
        yield from rows(
            "INSERT INTO webhook_deliveries (uuid, account_id, receiver, webhook_id, inbox_id, "
            "message_id, url, secret, event, body, status, attempts, next_attempt_at, "
            "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,'pending',0,?,?,?)",
            delivery_id, account_id, target.kind, target.webhook_id, target.inbox_id,
            message_id, target.url, target.secret, event, body, now, now, now,
        )  # fmt: skip
        ids.append(delivery_id)
    return ids


CONTACT_EVENTS = frozenset({"contact.created", "contact.updated"})


CONTACT_ATTRIBUTES = (
    "name", "email", "phone_number", "identifier", "additional_attributes",
    "custom_attributes", "contact_type", "blocked",
)  # fmt: skip


def contact_changes(before: Contact, after: Contact) -> list[dict[str, Any]]:
    """``changed_attributes`` of a ``contact_updated`` payload: one single-key object per
    attribute that changed."""
    return [
        {key: {"previous_value": getattr(before, key), "current_value": getattr(after, key)}}
        for key in CONTACT_ATTRIBUTES
        if getattr(before, key) != getattr(after, key)
    ]


def contact_event(
    name: str,
    contact_id: int,
    now: float,
    changed_attributes: list[dict[str, Any]] | None = None,
) -> Op[list[str]]:
    """Webhooks for ``contact.created`` / ``contact.updated`` (account webhooks only).
    ``changed_attributes`` is null when the caller does not know what changed."""
    event = WEBHOOK_EVENT_NAMES.get(name)
    if event is None:
        return []
    row = yield from one(f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", contact_id)
    if row is None:
        return []
    contact = Contact.from_row(row)
    targets = yield from receivers(contact.account_id, None, event, now, inbox_callback=False)
    if not targets:
        return []
    account = yield from account_ref(contact.account_id)
    payload = p.WebhookContactEvent(
        event=event, **msgspec.structs.asdict(contact_shape(contact, account))
    )
    if event == "contact_updated":
        payload.changed_attributes = changed_attributes
    return (yield from enqueue(contact.account_id, targets, event, p.encode(payload), now))
