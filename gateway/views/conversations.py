"""The public API's conversation shape (§3.15): the conversation with every message its
contact may see, and the contact."""

from __future__ import annotations

from client_sdk import protocol as p

from ..domain.errors import NotFound
from ..domain.message_reads import all_visible_messages
from ..store.records import Contact, Conversation
from ..store.sql import Op, one
from . import public as presenters
from .messages import render_public


def public_conversation(
    conversation: Conversation, link: presenters.LinkBuilder
) -> Op[p.PublicConversation]:
    messages = yield from all_visible_messages(conversation.id)
    public = yield from render_public(messages, conversation.display_id, link)
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", conversation.contact_id
    )
    if row is None:
        raise NotFound("contact")
    return presenters.public_conversation(conversation, public, Contact.from_row(row))
