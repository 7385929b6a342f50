"""Records to the agent API's conversation and message shapes (reference agent §2.1-2.2).
Pure functions, like :mod:`gateway.views.public`: whatever they need is loaded beforehand into a
:class:`ConversationParts`.

The agent API shows more than the public one: private notes and activity messages, the
assignee and team, and the seeds' white-label extras (``created_at_exact``, ``label_list``,
``see_all_conversations``, a sender's ``email`` and ``logo_user_url``).
"""

from __future__ import annotations

from msgspec import UNSET, Struct

from client_sdk import protocol as p

from ..store.records import Contact, ContactInbox, Conversation, Message, Team, User
from .public import (
    LinkBuilder,
    attachment,
    contact_sender,
    epoch,
    iso,
    iso_required,
    user_sender,
)
from .push import message_fields

AgentSenders = dict[tuple[str, int], p.ContactSender | p.AgentUserSender | p.AgentBotSender]


class ConversationParts(Struct, kw_only=True):
    """What a full conversation view needs beyond the conversation row."""

    contact: Contact
    session: ContactInbox
    assignee: User | None = None
    assignee_role: str | None = None
    team: Team | None = None
    team_member: bool = False  # the requesting user is in the team
    last: Message | None = None
    last_non_activity: Message | None = None
    unread_count: int = 0
    can_reply: bool = True


def agent_user_sender(user: User) -> p.AgentUserSender:
    return p.AgentUserSender(
        id=user.id, name=user.name, available_name=user.name, email=user.email,
        availability_status=user.availability,
    )  # fmt: skip


def _sender(message: Message, senders: AgentSenders) -> p.AgentSender | None:
    if message.sender_type is None or message.sender_id is None:
        return None
    return senders.get((message.sender_type, message.sender_id))


def conversation_contact(contact: Contact) -> p.ConversationContact:
    return p.ConversationContact(
        additional_attributes=contact.additional_attributes,
        email=contact.email,
        id=contact.id,
        name=contact.name,
        phone_number=contact.phone_number,
        blocked=contact.blocked,
        identifier=contact.identifier,
        custom_attributes=contact.custom_attributes,
        last_activity_at=epoch(contact.last_activity_at)
        if contact.last_activity_at is not None
        else UNSET,
        created_at=epoch(contact.created_at),
    )


def assignee(user: User, account_id: int, role: str) -> p.ConversationAssignee:
    return p.ConversationAssignee(
        id=user.id, account_id=account_id, availability_status=user.availability,
        email=user.email, available_name=user.name, name=user.name, role=role,
        see_all_conversations=role == "administrator",
    )  # fmt: skip


def team(record: Team, is_member: bool) -> p.ConversationTeam:
    return p.ConversationTeam(
        id=record.id, name=record.name, description=record.description,
        allow_auto_assign=record.allow_auto_assign, account_id=record.account_id,
        is_member=is_member,
    )  # fmt: skip


def team_record(record: Team) -> p.TeamRecord:
    return p.TeamRecord(
        id=record.id, name=record.name, description=record.description,
        allow_auto_assign=record.allow_auto_assign, account_id=record.account_id,
        created_at=iso_required(record.created_at), updated_at=iso_required(record.updated_at),
    )  # fmt: skip


def conversation_message(
    message: Message,
    conversation: Conversation,
    session: ContactInbox,
    senders: AgentSenders,
    link: LinkBuilder,
    unread_count: int,
) -> p.ConversationMessage:
    """The push shape of a message inside a conversation, with the seeds' extras."""
    sender = _sender(message, senders)
    return p.ConversationMessage(
        **message_fields(message, conversation, session, link, unread_count),
        label_list=list(conversation.labels),
        created_at_exact=iso_required(message.created_at),
        sender=sender if sender is not None else UNSET,
    )


def conversation(
    record: Conversation,
    parts: ConversationParts,
    senders: AgentSenders,
    link: LinkBuilder,
) -> p.AgentConversation:
    def pushed(message: Message | None) -> p.ConversationMessage | None:
        if message is None:
            return None
        return conversation_message(
            message, record, parts.session, senders, link, parts.unread_count
        )

    last = pushed(parts.last)
    meta = p.AgentConversationMeta(
        sender=conversation_contact(parts.contact), hmac_verified=parts.session.hmac_verified
    )
    if parts.assignee is not None and parts.assignee_role is not None:
        meta.assignee = assignee(parts.assignee, record.account_id, parts.assignee_role)
        meta.assignee_type = "User"
    if parts.team is not None:
        meta.team = team(parts.team, parts.team_member)
    return p.AgentConversation(
        meta=meta,
        id=record.display_id,
        messages=[last] if last is not None else [],
        account_id=record.account_id,
        uuid=record.uuid,
        additional_attributes=record.additional_attributes,
        agent_last_seen_at=epoch(record.agent_last_seen_at),
        assignee_last_seen_at=epoch(record.assignee_last_seen_at),
        can_reply=parts.can_reply,
        contact_last_seen_at=epoch(record.contact_last_seen_at),
        custom_attributes=record.custom_attributes,
        inbox_id=record.inbox_id,
        labels=list(record.labels),
        snoozed_until=iso(record.snoozed_until),
        status=record.status,
        created_at=epoch(record.created_at),
        updated_at=float(record.updated_at),
        timestamp=epoch(record.last_activity_at),
        first_reply_created_at=epoch(record.first_reply_created_at),
        unread_count=parts.unread_count,
        last_non_activity_message=pushed(parts.last_non_activity),
        last_activity_at=epoch(record.last_activity_at),
        priority=record.priority,
        waiting_since=epoch(record.waiting_since),
    )


def api_message(
    message: Message, display_id: int, senders: AgentSenders, link: LinkBuilder
) -> p.AgentMessage:
    """Reference agent §2.2a. ``echo_id`` is shown when the message carries one: the agent
    API's create response echoes it (unlike the public API's)."""
    sender = _sender(message, senders)
    return p.AgentMessage(
        id=message.id,
        content=message.content,
        inbox_id=message.inbox_id,
        conversation_id=display_id,
        message_type=message.message_type,
        content_type=message.content_type,
        status=message.status,
        content_attributes=message.content_attributes,
        created_at=epoch(message.created_at),
        private=message.private,
        source_id=message.source_id,
        sender=sender if sender is not None else UNSET,
        created_at_exact=iso_required(message.created_at),
        echo_id=message.echo_id if message.echo_id is not None else UNSET,
        attachments=[attachment(a, link) for a in message.attachments]
        if message.attachments
        else UNSET,
    )


def messages_meta(
    record: Conversation, contact: Contact, assignee_user: User | None
) -> p.MessagesMeta:
    return p.MessagesMeta(
        labels=list(record.labels),
        additional_attributes=record.additional_attributes,
        contact=contact_sender(contact),
        assignee=user_sender(assignee_user) if assignee_user is not None else UNSET,
        agent_last_seen_at=iso(record.agent_last_seen_at),
        assignee_last_seen_at=iso(record.assignee_last_seen_at),
    )


def toggle_status(record: Conversation, success: bool | None = True) -> p.ToggleStatusResponse:
    return p.ToggleStatusResponse(
        payload=p.ToggleStatusPayload(
            success=success, conversation_id=record.display_id, current_status=record.status,
            snoozed_until=iso(record.snoozed_until),
        )
    )  # fmt: skip
