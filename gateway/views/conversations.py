"""The public API's conversation shape (§3.15): the conversation with every message its
contact may see, and the contact."""

from __future__ import annotations

from client_sdk import protocol as p

from ..domain.errors import NotFound
from ..domain.message_reads import all_visible_messages, all_visible_messages_within
from ..store.records import Contact, Conversation, Message
from ..store.sql import Op, one
from . import public as presenters
from .messages import render_public


def public_conversation(
    conversation: Conversation, link: presenters.LinkBuilder, contact: Contact | None = None
) -> Op[p.PublicConversation]:
    """``contact``: the conversation's contact when the caller has read it (not read again)."""
    messages = yield from all_visible_messages(conversation.id)
    return (yield from _shaped(conversation, messages, link, contact))


def public_conversation_within(
    conversation: Conversation, contact: Contact, link: presenters.LinkBuilder, most: int
) -> Op[p.PublicConversation | None]:
    """:func:`public_conversation` of a conversation with at most ``most`` visible messages
    (a bounded read: it may run as a short read); None for a longer one."""
    messages = yield from all_visible_messages_within(conversation.id, most)
    if messages is None:
        return None
    return (yield from _shaped(conversation, messages, link, contact))


def _shaped(
    conversation: Conversation,
    messages: list[Message],
    link: presenters.LinkBuilder,
    contact: Contact | None,
) -> Op[p.PublicConversation]:
    if contact is None or contact.id != conversation.contact_id:
        row = yield from one(
            f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", conversation.contact_id
        )
        if row is None:
            raise NotFound("contact")
        contact = Contact.from_row(row)
    public = yield from render_public(messages, conversation.display_id, link, contact)
    return presenters.public_conversation(conversation, public, contact)
