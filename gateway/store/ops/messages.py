"""Messages: create (idempotent on echo_id), update submitted values (forms, CSAT)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from msgspec import Struct

from client_sdk import protocol as p

from ... import presenters
from ...errors import Locked, NotFound, ValidationFailed
from ..records import (
    Attachment,
    Contact,
    ContactInbox,
    Conversation,
    CsatResponse,
    LoggedEvent,
    Message,
)
from ..sql import Op, dialect, dump_json, one, prefixed, rows, scalar, width
from . import notify
from .agent_bots import ACTIVE, reopened_with
from .message_views import get_message, hydrate, render_public
from .webhooks import ANY_RECEIVER

CSAT_LOCK_ERROR = "You cannot update the CSAT survey after {days} days"


class NewAttachment(Struct, kw_only=True):
    file_type: str
    extension: str | None
    file_name: str
    content_type: str
    file_size: int
    storage_key: str
    width: int | None = None
    height: int | None = None


class MessageResult(Struct, kw_only=True):
    message: Message
    conversation: Conversation
    created: bool
    # The public view, rendered in the same transaction: the route needs no second read.
    view: p.PublicMessage
    events: list[LoggedEvent] = []


def _view(
    message: Message, conversation: Conversation, link: presenters.LinkBuilder
) -> Op[p.PublicMessage]:
    rendered = yield from render_public([message], conversation.display_id, link)
    return rendered[0]


def get_conversation(conversation_id: int) -> Op[Conversation]:
    row = yield from one(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE id = ?", conversation_id
    )
    if row is None:
        raise NotFound("conversation")
    return Conversation.from_row(row)


_INSERT_MESSAGE = (
    "INSERT INTO messages (account_id, inbox_id, conversation_id, content, message_type, "
    "content_type, content_attributes, private, status, sender_type, sender_id, echo_id, "
    "source_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def insert_message(
    conversation: Conversation,
    *,
    content: str | None,
    message_type: int,
    now: float,
    content_type: str = "text",
    content_attributes: dict[str, Any] | None = None,
    private: bool = False,
    sender_type: str | None = None,
    sender_id: int | None = None,
    echo_id: str | None = None,
    attachments: list[NewAttachment] | None = None,
    source_id: str | None = None,
) -> Op[Message]:
    row = yield from one(
        f"{_INSERT_MESSAGE} RETURNING {Message.COLUMNS}",
        conversation.account_id, conversation.inbox_id, conversation.id, content, message_type,
        content_type, dump_json(content_attributes or {}), private, "sent", sender_type,
        sender_id, echo_id, source_id, now, now,
    )  # fmt: skip
    assert row is not None
    message = Message.from_row(row)
    for att in attachments or []:
        # RETURNING builds the message's attachment list as it is written: no re-read.
        inserted = yield from one(
            "INSERT INTO attachments (message_id, account_id, file_type, extension, file_name, "
            "content_type, file_size, storage_key, width, height, created_at) "
            f"VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING {Attachment.COLUMNS}",
            message.id, conversation.account_id, att.file_type, att.extension, att.file_name,
            att.content_type, att.file_size, att.storage_key, att.width, att.height, now,
        )  # fmt: skip
        assert inserted is not None
        message.attachments.append(Attachment.from_row(inserted))
    return message


def _find_echo(conversation_id: int, echo_id: str) -> Op[Message | None]:
    row = yield from one(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND echo_id = ?",
        conversation_id, echo_id,
    )  # fmt: skip
    if row is None:
        return None
    return (yield from hydrate([Message.from_row(row)]))[0]


FLOOD_WINDOW = 60.0


def flood_guard(conversation_id: int, per_minute_limit: int, now: float) -> Op[int | None]:
    """Chatwoot's flood guard: ``None`` while the conversation has fewer than
    ``per_minute_limit`` messages in the last minute, else the seconds until one more fits
    (when the oldest message that keeps it full leaves the minute), for ``Retry-After``."""
    if not per_minute_limit:
        return None
    since = now - FLOOD_WINDOW
    recent = yield from scalar(
        "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND created_at > ?",
        conversation_id, since,
    )  # fmt: skip
    excess = int(recent or 0) - per_minute_limit
    if excess < 0:
        return None
    freeing = yield from scalar(
        "SELECT created_at FROM messages WHERE conversation_id = ? AND created_at > ? "
        "ORDER BY created_at LIMIT 1 OFFSET ?",
        conversation_id, since, excess,
    )  # fmt: skip
    if freeing is None:  # raced with a delete: the window is already freer
        return 1
    return max(1, math.ceil(float(freeing) + FLOOD_WINDOW - now))


_CONVERSATION_WIDTH = width(Conversation.COLUMNS)
_SESSION_WIDTH = width(ContactInbox.COLUMNS)
_CONTACT_WIDTH = width(Contact.COLUMNS)
# Everything a customer's message needs to know before it is written, in one statement: the
# conversation, its session, the sender, an earlier message with the same echo_id, the flood
# guard's count (capped at its limit), the unread count (capped as shown), whether the inbox
# has an active bot (reopening) and any webhook receiver, the account's and inbox's names.
_INCOMING_CONTEXT = (
    f"SELECT {prefixed(Conversation.COLUMNS, 'c')}, {prefixed(ContactInbox.COLUMNS, 'ci')}, "
    f"{prefixed(Contact.COLUMNS, 'ct')}, "
    "(SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.echo_id = ?), "
    "(SELECT COUNT(*) FROM (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
    "AND m.created_at > ? LIMIT ?) AS recent), "
    "(SELECT COUNT(*) FROM (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
    f"AND m.message_type = {p.MESSAGE_TYPE_INCOMING} "
    f"AND m.created_at > COALESCE(c.agent_last_seen_at, 0) LIMIT {notify.UNREAD_CAP}) AS unread), "
    "EXISTS (SELECT 1 FROM agent_bot_inboxes x WHERE x.inbox_id = c.inbox_id "
    f"AND x.status = '{ACTIVE}'), "
    f"a.name, i.name, {ANY_RECEIVER} "
    "FROM conversations c JOIN contact_inboxes ci ON ci.id = c.contact_inbox_id "
    "JOIN accounts a ON a.id = c.account_id JOIN inboxes i ON i.id = c.inbox_id "
    "JOIN contacts ct ON ct.id = ? WHERE c.id = ?"
)


# Activity times only move forward: concurrent writers (several nodes) may commit out of the
# order of their clocks.
_TOUCH_CONVERSATION = (
    "UPDATE conversations SET status = ?, "
    "last_activity_at = CASE WHEN last_activity_at < ? THEN ? ELSE last_activity_at END, "
    "waiting_since = COALESCE(waiting_since, ?), updated_at = ?, "
    "snoozed_until = CASE WHEN ? THEN NULL ELSE snoozed_until END WHERE id = ?"
)
_TOUCH_CONTACT = (
    "UPDATE contacts SET last_activity_at = ? "
    "WHERE id = ? AND (last_activity_at IS NULL OR last_activity_at < ?)"
)
_MESSAGE_WIDTH = width(Message.COLUMNS)
# PostgreSQL: the message, its conversation and its sender's activity in one statement.
_WRITE_INCOMING = (
    f"WITH message AS ({_INSERT_MESSAGE} RETURNING {Message.COLUMNS}), "
    f"conversation AS ({_TOUCH_CONVERSATION} RETURNING {Conversation.COLUMNS}), "
    f"contact AS ({_TOUCH_CONTACT}) "
    f"SELECT {prefixed(Message.COLUMNS, 'message')}, "
    f"{prefixed(Conversation.COLUMNS, 'conversation')} FROM message, conversation"
)


def _incoming_values(
    conversation: Conversation,
    content: str | None,
    contact_id: int,
    echo_id: str | None,
    now: float,
) -> tuple[Any, ...]:
    """The values of :data:`_INSERT_MESSAGE` for a customer's message."""
    return (
        conversation.account_id, conversation.inbox_id, conversation.id, content,
        p.MESSAGE_TYPE_INCOMING, "text", "{}", False, "sent", "Contact", contact_id, echo_id,
        None, now, now,
    )  # fmt: skip


class IncomingContext(Struct, kw_only=True):
    conversation: Conversation
    echo_message_id: int | None
    recent: int  # messages of the last minute, at most the flood guard's limit
    bot_active: bool
    known: notify.Known  # unread: before the new message


def incoming_context(
    conversation_id: int, contact_id: int, echo_id: str | None, per_minute_limit: int, now: float
) -> Op[IncomingContext]:
    row = yield from one(
        _INCOMING_CONTEXT, echo_id, now - FLOOD_WINDOW, max(0, per_minute_limit), contact_id,
        conversation_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("conversation")
    at = _CONVERSATION_WIDTH
    conversation = Conversation.from_row(row[:at])
    session = ContactInbox.from_row(row[at : at + _SESSION_WIDTH])
    at += _SESSION_WIDTH
    contact = Contact.from_row(row[at : at + _CONTACT_WIDTH])
    echo, recent, unread, bot, account_name, inbox_name, hooks = row[at + _CONTACT_WIDTH :]
    known = notify.Known(
        session=session, contact=contact, unread=int(unread), account_name=account_name or "",
        inbox_name=inbox_name or "", hooks=bool(hooks),
    )  # fmt: skip
    return IncomingContext(
        conversation=conversation, echo_message_id=echo, recent=int(recent),
        bot_active=bool(bot), known=known,
    )  # fmt: skip


def create_incoming(
    conversation_id: int,
    contact_id: int,
    content: str | None,
    echo_id: str | None,
    attachments: list[NewAttachment],
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[MessageResult]:
    """A customer's message. A repeated ``echo_id`` in the conversation returns the original
    and creates nothing, so a client may retry a send it never saw acknowledged.

    The hot path of the gateway: one statement reads what the message needs to know
    (:func:`incoming_context`), then one statement per row written and three for the event
    log; payloads are rendered from what was read, not read again."""
    context = yield from incoming_context(
        conversation_id, contact_id, echo_id, per_minute_limit, now
    )
    conversation, known = context.conversation, context.known
    if echo_id and context.echo_message_id is not None:
        original = yield from _find_echo(conversation.id, echo_id)
        if original is not None:
            if original.sender_type == "Contact" and original.sender_id == known.contact.id:
                view = presenters.public_message(
                    original, conversation.display_id, known.senders(), link
                )
            else:
                view = yield from _view(original, conversation, link)
            return MessageResult(
                message=original, conversation=conversation, created=False, view=view
            )
    if per_minute_limit and context.recent >= per_minute_limit:
        retry_after = yield from flood_guard(conversation.id, per_minute_limit, now)
        if retry_after is not None:
            raise ValidationFailed("Too many messages", ["base"], retry_after=retry_after)
    reopen = conversation.status in ("resolved", "snoozed") and not known.contact.blocked
    status = conversation.status
    if reopen:
        status = reopened_with(conversation.status, context.bot_active)
    touch_conversation = (status, now, now, now, now, reopen, conversation.id)
    touch_contact = (now, contact_id, now)
    if not attachments and (yield from dialect()) == "postgresql":
        # The three rows in one statement: one round trip instead of three.
        row = yield from one(
            _WRITE_INCOMING,
            *_incoming_values(conversation, content, contact_id, echo_id, now),
            *touch_conversation,
            *touch_contact,
        )
        assert row is not None
        message = Message.from_row(row)
        conversation = Conversation.from_row(row[_MESSAGE_WIDTH:])
    else:
        message = yield from insert_message(
            conversation, content=content, message_type=p.MESSAGE_TYPE_INCOMING, now=now,
            sender_type="Contact", sender_id=contact_id, echo_id=echo_id,
            attachments=attachments,
        )  # fmt: skip
        row = yield from one(
            f"{_TOUCH_CONVERSATION} RETURNING {Conversation.COLUMNS}", *touch_conversation
        )
        assert row is not None
        conversation = Conversation.from_row(row)
        if known.contact.last_activity_at is None or known.contact.last_activity_at < now:
            yield from rows(_TOUCH_CONTACT, *touch_contact)
    # The new message counts as unread unless an agent has seen past it (clocks of nodes);
    # it is also the conversation's last visible message now.
    if now > (conversation.agent_last_seen_at or 0.0):
        known.unread = min(notify.UNREAD_CAP, known.unread + 1)
    data = notify.known_message_data(message, conversation, link, known)
    known.last_message = data
    logged = yield from notify.emit_message(
        "message.created", message, conversation, link, now, known=known, data=data
    )
    if reopen:
        logged += yield from notify.emit_conversation(
            "conversation.status_changed", conversation, link, now, known=known
        )
    view = presenters.public_message(message, conversation.display_id, known.senders(), link)
    return MessageResult(
        message=message, conversation=conversation, created=True, view=view, events=logged
    )


def _calendar_days(earlier: float, later: float) -> int:
    return (
        datetime.fromtimestamp(later, UTC).date() - datetime.fromtimestamp(earlier, UTC).date()
    ).days


def _csat_answer(submitted: Any) -> dict[str, Any] | None:
    entries = submitted if isinstance(submitted, list) else [submitted]
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("csat_survey_response"), dict):
            return entry["csat_survey_response"]  # type: ignore[no-any-return]
    return None


def upsert_csat_response(
    message: Message, conversation: Conversation, answer: dict[str, Any], now: float
) -> Op[CsatResponse]:
    row = yield from one(
        "INSERT INTO csat_survey_responses (account_id, conversation_id, message_id, rating, "
        "feedback_message, contact_id, assigned_agent_id, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (message_id) DO UPDATE SET "
        "rating = excluded.rating, feedback_message = excluded.feedback_message, "
        f"updated_at = excluded.updated_at RETURNING {CsatResponse.COLUMNS}",
        conversation.account_id, conversation.id, message.id, int(answer["rating"]),
        answer.get("feedback_message"), conversation.contact_id, conversation.assignee_id,
        now, now,
    )  # fmt: skip
    assert row is not None
    return CsatResponse.from_row(row)


def update_submitted_values(
    conversation_id: int,
    message_id: int,
    submitted_values: Any,
    csat_lock_days: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[MessageResult]:
    """Replace ``content_attributes.submitted_values`` (§3.13); for a CSAT message also record
    the response at once. ``submitted_values`` is already validated plain data (or None)."""
    conversation = yield from get_conversation(conversation_id)
    message = yield from get_message(conversation.id, message_id, customer_visible=True)
    if message is None:
        raise NotFound("message")
    if (
        message.content_type == "input_csat"
        and _calendar_days(message.created_at, now) > csat_lock_days
    ):
        raise Locked(CSAT_LOCK_ERROR.format(days=csat_lock_days))
    if submitted_values is None:
        view = yield from _view(message, conversation, link)
        return MessageResult(message=message, conversation=conversation, created=False, view=view)
    before = dict(message.content_attributes)
    after = {**before, "submitted_values": submitted_values}
    row = yield from one(
        "UPDATE messages SET content_attributes = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {Message.COLUMNS}",
        dump_json(after), now, message.id,
    )  # fmt: skip
    assert row is not None
    updated = Message.from_row(row)
    yield from hydrate([updated])
    answer = _csat_answer(submitted_values)
    if (
        updated.content_type == "input_csat"
        and answer is not None
        and answer.get("rating") is not None
    ):
        yield from upsert_csat_response(updated, conversation, answer, now)
    changes: dict[str, list[object]] = {
        "content_attributes": [before, after],
        "updated_at": [presenters.iso(message.updated_at), presenters.iso(now)],
    }
    logged = yield from notify.emit_message(
        "message.updated", updated, conversation, link, now, previous_changes=changes
    )
    view = yield from _view(updated, conversation, link)
    return MessageResult(
        message=updated, conversation=conversation, created=False, view=view, events=logged
    )
