"""Records to the public API's shapes (§3.15: epoch ``created_at``, the raw contact record
with ISO times) and the senders and attachments every view shows. Pure functions: no I/O, no
clock but the times they are given. The push shapes of realtime events are ``views.push``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from msgspec import UNSET

from client_sdk import protocol as p

from ..store.records import (
    AgentBot,
    Attachment,
    Contact,
    ContactInbox,
    Conversation,
    Inbox,
    Message,
    User,
)

# Builds the (signed) URL of an attachment; the attachments module provides it.
LinkBuilder = Callable[[Attachment], str]


# Times already formatted: a record's times repeat on every request that shows it (a
# contact's, on every read of its conversation), and formatting one costs microseconds.
_ISO: dict[float, str] = {}
_ISO_HELD = 4096
# A new time (every new message has one) is mostly a second already seen: its date and time
# of day are kept, so only the milliseconds are formatted (0.6 µs instead of 1.8).
_SECONDS: dict[int, str] = {}
_SECONDS_HELD = 1024


def iso(ts: float | None) -> str | None:
    """``ts`` (epoch seconds) as UTC ISO 8601 with milliseconds (truncated): the times of
    Chatwoot's contact record."""
    if ts is None:
        return None
    text = _ISO.get(ts)
    if text is None:
        text = _format(ts)
        if len(_ISO) >= _ISO_HELD:
            _ISO.clear()
        _ISO[ts] = text
    return text


def _format(ts: float) -> str:
    if ts < 0:  # before 1970: no shortcut (the split below assumes a non-negative time)
        return _format_datetime(ts)
    # datetime.fromtimestamp's own split: the whole seconds, and the fraction rounded half to
    # even to microseconds, a million of which carry into the next second.
    second = int(ts)
    micros = round((ts - second) * 1e6)
    if micros >= 1_000_000:
        second += 1
        micros -= 1_000_000
    prefix = _SECONDS.get(second)
    if prefix is None:
        prefix = _format_datetime(second)[:-4]  # without "mmmZ"
        if len(_SECONDS) >= _SECONDS_HELD:
            _SECONDS.clear()
        _SECONDS[second] = prefix
    return f"{prefix}{micros // 1000:03d}Z"


def _format_datetime(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def iso_required(ts: float) -> str:
    value = iso(ts)
    assert value is not None
    return value


def epoch(ts: float | None) -> int:
    return int(ts) if ts is not None else 0


def public_inbox(inbox: Inbox, channel_attributes: dict[str, Any] | None = None) -> p.PublicInbox:
    attributes = channel_attributes or {}
    options = attributes.get("pre_chat_form_options")
    return p.PublicInbox(
        identifier=inbox.identifier,
        identity_validation_enabled=inbox.hmac_mandatory,
        name=inbox.name,
        timezone=inbox.timezone,
        working_hours=[p.WorkingHour(**wh) for wh in inbox.working_hours],
        working_hours_enabled=inbox.working_hours_enabled,
        csat_survey_enabled=inbox.csat_survey_enabled,
        greeting_enabled=inbox.greeting_enabled,
        greeting_message=inbox.greeting_message,
        out_of_office_message=inbox.out_of_office_message,
        csat_display_type=inbox.csat_display_type,
        pre_chat_form_enabled=attributes.get("pre_chat_form_enabled") is True,
        pre_chat_form_options=options if isinstance(options, dict) else {},
    )


def public_contact(session: ContactInbox, contact: Contact) -> p.PublicContact:
    return p.PublicContact(
        source_id=session.source_id,
        pubsub_token=session.pubsub_token,
        id=contact.id,
        name=contact.name,
        email=contact.email,
        phone_number=contact.phone_number,
    )


def contact_record(contact: Contact) -> p.Contact:
    return p.Contact(
        id=contact.id,
        name=contact.name,
        email=contact.email,
        phone_number=contact.phone_number,
        account_id=contact.account_id,
        created_at=iso_required(contact.created_at),
        updated_at=iso_required(contact.updated_at),
        additional_attributes=contact.additional_attributes,
        identifier=contact.identifier,
        custom_attributes=contact.custom_attributes,
        last_activity_at=iso(contact.last_activity_at),
        contact_type=contact.contact_type,
        blocked=contact.blocked,
    )


def contact_sender(contact: Contact) -> p.ContactSender:
    return p.ContactSender(
        additional_attributes=contact.additional_attributes,
        custom_attributes=contact.custom_attributes,
        email=contact.email,
        id=contact.id,
        identifier=contact.identifier,
        name=contact.name,
        phone_number=contact.phone_number,
        thumbnail="",
        blocked=contact.blocked,
    )


def user_sender(user: User) -> p.UserSender:
    return p.UserSender(
        id=user.id,
        name=user.name,
        available_name=user.name,
        availability_status=user.availability,
    )


def agent_bot_sender(bot: AgentBot) -> p.AgentBotSender:
    return p.AgentBotSender(id=bot.id, name=bot.name, avatar_url=bot.avatar_url or "")


def attachment(att: Attachment, link: LinkBuilder) -> p.Attachment:
    url = link(att)
    return p.Attachment(
        id=att.id,
        message_id=att.message_id,
        file_type=att.file_type,
        account_id=att.account_id,
        extension=att.extension,
        data_url=url,
        thumb_url=url if att.file_type == "image" else "",
        file_size=att.file_size,
        width=att.width,
        height=att.height,
    )


Senders = dict[tuple[str, int], p.ContactSender | p.UserSender | p.AgentBotSender]


def sender_of(
    message: Message, senders: Senders
) -> p.ContactSender | p.UserSender | p.AgentBotSender | None:
    if message.sender_type is None or message.sender_id is None:
        return None
    return senders.get((message.sender_type, message.sender_id))


def public_message(
    message: Message, display_id: int, senders: Senders, link: LinkBuilder
) -> p.PublicMessage:
    sender = sender_of(message, senders)
    return p.PublicMessage(
        id=message.id,
        content=message.content,
        message_type=message.message_type,
        content_type=message.content_type,
        content_attributes=message.content_attributes,
        created_at=epoch(message.created_at),
        conversation_id=display_id,
        attachments=[attachment(a, link) for a in message.attachments]
        if message.attachments
        else UNSET,
        sender=sender if sender is not None else UNSET,
    )


def public_conversation(
    conversation: Conversation,
    messages: list[p.PublicMessage],
    contact: Contact,
) -> p.PublicConversation:
    return p.PublicConversation(
        id=conversation.display_id,
        uuid=conversation.uuid,
        inbox_id=conversation.inbox_id,
        contact_last_seen_at=epoch(conversation.contact_last_seen_at),
        status=conversation.status,
        agent_last_seen_at=epoch(conversation.agent_last_seen_at),
        messages=messages,
        contact=contact_record(contact),
    )


def agent(user: User, account_id: int, role: str) -> p.Agent:
    """A user as an agent of ``account_id`` (reference agent §2.4)."""
    return p.Agent(
        id=user.id, account_id=account_id, availability_status=user.availability,
        email=user.email, available_name=user.name, name=user.name, role=role,
    )  # fmt: skip
