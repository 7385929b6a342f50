"""Records to the push shapes of realtime events (§6.6: ISO times, the sender as the event
names it), which the domain renders once when it logs an event; the agent views reuse
:func:`message_fields`. Pure functions, as ``views.public``."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from client_sdk import protocol as p

from ..store.records import AgentBot, Contact, ContactInbox, Conversation, Message, Performer
from .public import (
    LinkBuilder,
    Senders,
    agent_bot_sender,
    attachment,
    contact_sender,
    epoch,
    iso,
    iso_required,
    sender_of,
    user_sender,
)


def message_event_data(
    message: Message,
    conversation: Conversation,
    session: ContactInbox | None,
    senders: Senders,
    link: LinkBuilder,
    *,
    unread_count: int = 0,
    previous_changes: dict[str, list[object]] | None = None,
) -> p.MessageEventData:
    sender = sender_of(message, senders)
    return p.MessageEventData(
        **message_fields(message, conversation, session, link, unread_count),
        echo_id=message.echo_id if message.echo_id is not None else UNSET,
        sender=sender if sender is not None else UNSET,
        previous_changes=previous_changes if previous_changes is not None else UNSET,
        performer=performer_sender(message.performer) if message.performer is not None else UNSET,
    )


def message_fields(
    message: Message,
    conversation: Conversation,
    session: ContactInbox | None,
    link: LinkBuilder,
    unread_count: int,
) -> dict[str, Any]:
    """The fields every push shape of a message has (the realtime event, the agent API's
    conversation message); each Struct keeps its own key order."""
    return {
        "id": message.id,
        "content": message.content,
        "account_id": message.account_id,
        "inbox_id": message.inbox_id,
        "conversation_id": conversation.display_id,
        "message_type": message.message_type,
        "created_at": epoch(message.created_at),
        "updated_at": iso_required(message.updated_at),
        "private": message.private,
        "status": message.status,
        "source_id": message.source_id,
        "content_type": message.content_type,
        "content_attributes": message.content_attributes,
        "sender_type": message.sender_type,
        "sender_id": message.sender_id,
        "processed_message_content": message.content,
        "conversation": p.MessageConversationRef(
            assignee_id=conversation.assignee_id,
            unread_count=unread_count,
            last_activity_at=epoch(conversation.last_activity_at),
            contact_inbox=p.ContactInboxRef(source_id=session.source_id) if session else None,
        ),
        "attachments": [attachment(a, link) for a in message.attachments]
        if message.attachments
        else UNSET,
    }


def performer_sender(performer: Performer) -> p.UserSender | p.AgentBotSender:
    if isinstance(performer, AgentBot):
        return agent_bot_sender(performer)
    return user_sender(performer)


def conversation_event_data(
    conversation: Conversation,
    session: ContactInbox,
    contact: Contact,
    last_message: p.MessageEventData | None,
    *,
    unread_count: int = 0,
) -> p.ConversationEventData:
    return p.ConversationEventData(
        additional_attributes=conversation.additional_attributes,
        contact_inbox=p.ContactInboxPush(
            id=session.id,
            contact_id=session.contact_id,
            inbox_id=session.inbox_id,
            source_id=session.source_id,
            created_at=iso_required(session.created_at),
            updated_at=iso_required(session.updated_at),
            hmac_verified=session.hmac_verified,
            pubsub_token=session.pubsub_token,
        ),
        id=conversation.display_id,
        inbox_id=conversation.inbox_id,
        messages=[last_message] if last_message is not None else [],
        meta=p.ConversationMeta(
            sender=contact_sender(contact),
            assignee=user_sender(conversation.assignee) if conversation.assignee else None,
            assignee_type="User" if conversation.assignee else None,
            team={"id": conversation.team.id, "name": conversation.team.name}
            if conversation.team
            else None,
            hmac_verified=session.hmac_verified,
        ),
        status=conversation.status,
        labels=list(conversation.labels),
        custom_attributes=conversation.custom_attributes,
        snoozed_until=iso(conversation.snoozed_until),
        unread_count=unread_count,
        first_reply_created_at=iso(conversation.first_reply_created_at),
        priority=conversation.priority,
        waiting_since=epoch(conversation.waiting_since),
        agent_last_seen_at=epoch(conversation.agent_last_seen_at),
        contact_last_seen_at=epoch(conversation.contact_last_seen_at),
        last_activity_at=epoch(conversation.last_activity_at),
        timestamp=epoch(conversation.last_activity_at),
        created_at=epoch(conversation.created_at),
        updated_at=float(conversation.updated_at),
        account_id=conversation.account_id,
    )
