"""Appending realtime events to the log, with Chatwoot's fan-out (§6.5) and payloads (§6.6).

Agents hear everything through the inbox stream; the contact's streams get messages that are
neither private nor activity, and every conversation event.
"""

from __future__ import annotations

from client_sdk import protocol as p

from ... import presenters
from ..records import Contact, ContactInbox, Conversation, LoggedEvent, Message
from ..sql import Op, one, scalar
from . import events
from .message_views import hydrate, load_senders

UNREAD_CAP = 10


def _session(contact_inbox_id: int) -> Op[ContactInbox]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE id = ?", contact_inbox_id
    )
    assert row is not None
    return ContactInbox.from_row(row)


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
    return presenters.message_event_data(
        message, conversation, session, senders, link,
        unread_count=unread, previous_changes=previous_changes,
    )  # fmt: skip


def emit_message(
    name: str,
    message: Message,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    previous_changes: dict[str, list[object]] | None = None,
) -> Op[list[LoggedEvent]]:
    data = yield from message_data(message, conversation, link, previous_changes)
    streams = [events.inbox_stream(conversation.inbox_id)]
    if not message.private and message.message_type != p.MESSAGE_TYPE_ACTIVITY:
        streams += yield from events.contact_streams(conversation)
    return (yield from events.append(name, data, streams, now))


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
    conversation: Conversation, link: presenters.LinkBuilder
) -> Op[p.ConversationEventData]:
    session = yield from _session(conversation.contact_inbox_id)
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", conversation.contact_id
    )
    assert row is not None
    last = yield from last_visible_message(conversation, link)
    unread = yield from unread_count(conversation)
    return presenters.conversation_event_data(
        conversation, session, Contact.from_row(row), last, unread_count=unread
    )


def emit_conversation(
    name: str,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    *,
    to_contact: bool = True,
) -> Op[list[LoggedEvent]]:
    """A conversation event to the agents and, unless ``to_contact`` is False (``.read``,
    assignments...), to the contact's sessions."""
    data = yield from conversation_data(conversation, link)
    streams = [events.inbox_stream(conversation.inbox_id)]
    if to_contact:
        streams += yield from events.contact_streams(conversation)
    return (yield from events.append(name, data, streams, now))
