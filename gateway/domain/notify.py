"""Appending realtime events to the log, with Chatwoot's fan-out (§6.5) and payloads (§6.6).

Agents hear everything through the inbox stream; the contact's streams get messages that are
neither private nor activity, and every conversation event.

The same transaction writes the webhook deliveries of each event (§9): ``emit_*`` enqueue them
in the outbox, so an event is logged exactly when its deliveries are.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct

from client_sdk import protocol as p

from ..store.records import Contact, ContactInbox, Conversation, LoggedEvent, Message
from ..store.sql import Op, one, scalar
from ..views import public as presenters
from ..views import push
from ..views import webhooks as webhook_views
from ..views.messages import load_senders
from . import assignees, events, webhooks
from .message_reads import UNREAD_CAP, hydrate

BOT_STATUS_EVENTS = {"open": "conversation_opened", "resolved": "conversation_resolved"}


class Known(Struct, kw_only=True, gc=False):  # untracked: records and payload data
    """What a caller already read in its transaction about the conversation it reports on,
    so that its events and webhooks render without reading it again (the hot path of a
    customer's message): the conversation's session and contact, its unread count as of
    this change, the account's and inbox's names, whether any webhook receiver may hear the
    inbox (False: no delivery to enqueue, no receiver to look up), the streams of the
    contact's sessions that hear it (:func:`events.contact_streams`), and the push data of
    the conversation's last visible message."""

    session: ContactInbox
    contact: Contact
    unread: int
    account_name: str
    inbox_name: str
    hooks: bool
    contact_streams: list[str]
    last_message: p.MessageEventData | None = None

    def senders(self) -> presenters.Senders:
        return {("Contact", self.contact.id): presenters.contact_sender(self.contact)}


def _session(contact_inbox_id: int) -> Op[ContactInbox]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE id = ?", contact_inbox_id
    )
    assert row is not None
    return ContactInbox.from_row(row)


def _contact_streams(conversation: Conversation, known: Known | None) -> Op[list[str]]:
    if known is not None and known.session.id == conversation.contact_inbox_id:
        return known.contact_streams
    return (yield from events.contact_streams(conversation))


def unread_count(conversation: Conversation) -> Op[int]:
    """Incoming messages the agents have not seen, capped at 10 as Chatwoot."""
    count = yield from scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE conversation_id = ? "
        "AND message_type = ? AND created_at > ? LIMIT ?) AS unread",
        conversation.id, p.MESSAGE_TYPE_INCOMING, conversation.agent_last_seen_at or 0.0,
        UNREAD_CAP,
    )  # fmt: skip
    return int(count or 0)


def message_data(
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    previous_changes: dict[str, list[object]] | None = None,
) -> Op[p.MessageEventData]:
    """The push payload of an already hydrated ``message``."""
    senders = yield from load_senders([message])
    session = yield from _session(conversation.contact_inbox_id)
    unread = yield from unread_count(conversation)
    return push.message_event_data(
        message, conversation, session, senders, link,
        unread_count=unread, previous_changes=previous_changes,
    )  # fmt: skip


def known_message_data(
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    known: Known,
    previous_changes: dict[str, list[object]] | None = None,
) -> p.MessageEventData:
    """:func:`message_data` of a message whose sender is ``known``'s contact (or nobody)."""
    return push.message_event_data(
        message, conversation, known.session, known.senders(), link,
        unread_count=known.unread, previous_changes=previous_changes,
    )  # fmt: skip


def emit_message(
    name: str,
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    previous_changes: dict[str, list[object]] | None = None,
    *,
    inbox_callback: bool = True,
    known: Known | None = None,
    data: p.MessageEventData | None = None,
) -> Op[list[LoggedEvent]]:
    """Log a message event and enqueue its webhooks; ``inbox_callback=False`` spares the API
    inbox's webhook_url (the update that reports its own failed delivery, §9.4). With
    ``known`` (and ``data``, the event's push data, when the caller rendered it) nothing
    already read is read again."""
    if data is None:
        if known is not None:
            data = known_message_data(message, conversation, link, known, previous_changes)
        else:
            data = yield from message_data(message, conversation, link, previous_changes)
    streams = [events.inbox_stream(conversation.inbox_id)]
    if not message.private and message.message_type != p.MESSAGE_TYPE_ACTIVITY:
        streams += yield from _contact_streams(conversation, known)
    logged = yield from events.append(name, data, streams, now)
    if known is None or known.hooks:
        enqueued = yield from message_webhooks(
            name, message, conversation, link, now, inbox_callback, known
        )
        events.mark_deliveries(logged, enqueued)
    return logged


def message_webhook_payload(
    event: str,
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    known: Known | None = None,
) -> Op[p.WebhookMessage]:
    """``message_created`` / ``message_updated`` as §9.2 gives it."""
    if known is not None:
        account = p.WebhookAccount(id=conversation.account_id, name=known.account_name)
        inbox_name = known.inbox_name
    else:
        account = yield from webhook_views.account_ref(conversation.account_id)
        inbox_name = yield from scalar(
            "SELECT name FROM inboxes WHERE id = ?", conversation.inbox_id
        )
    data = yield from conversation_data(conversation, link, known)
    data.account_id = UNSET
    contact = known.contact if known is not None else None
    sender = yield from webhook_views.sender(message, account, contact)
    return p.WebhookMessage(
        event=event, id=message.id, content=message.content, content_type=message.content_type,
        content_attributes=message.content_attributes,
        message_type=p.MESSAGE_TYPE_NAMES[message.message_type], private=message.private,
        source_id=message.source_id, created_at=presenters.iso_required(message.created_at),
        account=account, inbox=p.WebhookInboxRef(id=conversation.inbox_id, name=inbox_name or ""),
        conversation=data, sender=sender,
        attachments=[presenters.attachment(a, link) for a in message.attachments]
        if message.attachments
        else UNSET,
    )  # fmt: skip


def message_webhooks(
    name: str,
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    inbox_callback: bool = True,
    known: Known | None = None,
) -> Op[list[str]]:
    """Enqueue the deliveries of a message event: incoming, outgoing and template messages,
    private notes included, never activity (§9.2). Returns the delivery ids."""
    event = webhooks.WEBHOOK_EVENT_NAMES.get(name)
    if event is None or message.message_type == p.MESSAGE_TYPE_ACTIVITY:
        return []
    targets = yield from webhooks.receivers(
        conversation.account_id, conversation.inbox_id, event, now, inbox_callback=inbox_callback
    )
    if not targets:
        return []
    payload = yield from message_webhook_payload(event, message, conversation, link, known)
    return (
        yield from webhooks.enqueue(
            conversation.account_id, targets, event, p.encode(payload), now, message_id=message.id
        )
    )


def last_visible_message(
    conversation: Conversation, link: presenters.LinkBuilder
) -> Op[p.MessageEventData | None]:
    row = yield from one(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND private = ? "
        f"AND message_type <> {p.MESSAGE_TYPE_ACTIVITY} ORDER BY id DESC LIMIT 1",
        conversation.id, False,
    )  # fmt: skip
    if row is None:
        return None
    last = yield from hydrate([Message.from_row(row)])
    return (yield from message_data(last[0], conversation, link))


def conversation_data(
    conversation: Conversation, link: presenters.LinkBuilder, known: Known | None = None
) -> Op[p.ConversationEventData]:
    # meta.assignee / meta.team: loaded here so that every caller (the public side included)
    # announces an assigned conversation as assigned.
    yield from assignees.hydrate_conversation(conversation)
    if known is not None and known.contact.id == conversation.contact_id:
        return push.conversation_event_data(
            conversation, known.session, known.contact, known.last_message,
            unread_count=known.unread,
        )  # fmt: skip
    session = yield from _session(conversation.contact_inbox_id)
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", conversation.contact_id
    )
    assert row is not None
    last = yield from last_visible_message(conversation, link)
    unread = yield from unread_count(conversation)
    return push.conversation_event_data(
        conversation, session, Contact.from_row(row), last, unread_count=unread
    )


def emit_conversation(
    name: str,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    *,
    to_contact: bool = True,
    changed_attributes: list[dict[str, Any]] | None = None,
    known: Known | None = None,
) -> Op[list[LoggedEvent]]:
    """A conversation event to the agents and, unless ``to_contact`` is False (``.read``,
    assignments...), to the contact's sessions; and its webhooks. ``changed_attributes`` is
    the ``conversation_updated`` webhook's list of
    ``{"<attribute>": {"previous_value": ..., "current_value": ...}}``."""
    data = yield from conversation_data(conversation, link, known)
    streams = [events.inbox_stream(conversation.inbox_id)]
    if to_contact:
        streams += yield from _contact_streams(conversation, known)
    logged = yield from events.append(name, data, streams, now)
    if known is None or known.hooks:
        enqueued = yield from conversation_webhooks(
            name, conversation, data, now, changed_attributes
        )
        events.mark_deliveries(logged, enqueued)
    return logged


def conversation_webhooks(
    name: str,
    conversation: Conversation,
    data: p.ConversationEventData,
    now: float,
    changed_attributes: list[dict[str, Any]] | None = None,
) -> Op[list[str]]:
    """Enqueue the deliveries of a conversation event: the push shape without ``account_id``,
    plus ``event`` (and ``changed_attributes``, null on status changes as Chatwoot's). A
    status change to open or resolved is also ``conversation_opened`` / ``_resolved``, which
    only agent bots hear (reference agent §6.4)."""
    event = webhooks.WEBHOOK_EVENT_NAMES.get(name)
    if event is None or not event.startswith("conversation_"):
        return []
    fields = msgspec.structs.asdict(data)
    fields["account_id"] = UNSET
    names = [event]
    if event == "conversation_status_changed" and data.status in BOT_STATUS_EVENTS:
        names.append(BOT_STATUS_EVENTS[data.status])
    ids: list[str] = []
    for each in names:
        targets = yield from webhooks.receivers(
            conversation.account_id, conversation.inbox_id, each, now
        )
        if not targets:
            continue
        payload = p.WebhookConversation(**fields, event=each)
        if each != "conversation_created":
            payload.changed_attributes = changed_attributes
        ids += yield from webhooks.enqueue(
            conversation.account_id, targets, each, p.encode(payload), now
        )
    return ids
