"""Messages: insert, find by echo_id, the flood guard, update submitted values (forms, CSAT).
A customer's new message is ``incoming``'s."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgspec
from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import Attachment, Conversation, CsatResponse, LoggedEvent, Message
from ..store.sql import Op, dump_json, execute, one, scalar
from ..views import public as presenters
from ..views.messages import render_public
from . import notify
from .errors import Locked, NotFound
from .message_reads import get_message, hydrate

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


class MessageResult(Struct, kw_only=True, gc=False):  # untracked: records, a view, events
    message: Message
    conversation: Conversation
    created: bool
    # The public view, rendered in the same transaction: the route needs no second read.
    view: p.PublicMessage
    events: list[LoggedEvent] = []


def view_of(
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


INSERT_MESSAGE = (
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
    values = (
        conversation.account_id, conversation.inbox_id, conversation.id, content, message_type,
        content_type, dump_json(content_attributes or {}), private, "sent", sender_type,
        sender_id, echo_id, source_id, float(now), float(now),
    )  # fmt: skip
    message_id = yield from scalar(f"{INSERT_MESSAGE} RETURNING id", *values)
    # The record from what was written (the columns in INSERT_MESSAGE's order are COLUMNS'
    # after the id), read as a row would be: every column back costs more than the id alone.
    message = Message.from_row((message_id, *values))
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


def find_echo(conversation_id: int, echo_id: str) -> Op[Message | None]:
    row = yield from one(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND echo_id = ?",
        conversation_id, echo_id,
    )  # fmt: skip
    if row is None:
        return None
    return (yield from hydrate([Message.from_row(row)]))[0]


# Activity times only move forward: concurrent writers (several nodes) may commit out of the
# order of their clocks. Every new message moves them, whoever sent it.
TOUCH_CONVERSATION = (
    "UPDATE conversations SET status = ?, "
    "last_activity_at = CASE WHEN last_activity_at < ? THEN ? ELSE last_activity_at END, "
    "waiting_since = COALESCE(waiting_since, ?), updated_at = ?, "
    "snoozed_until = CASE WHEN ? THEN NULL ELSE snoozed_until END WHERE id = ?"
)
TOUCH_CONTACT = (
    "UPDATE contacts SET last_activity_at = ? "
    "WHERE id = ? AND (last_activity_at IS NULL OR last_activity_at < ?)"
)
_TOUCH_ACTIVITY = (
    "UPDATE conversations SET "
    "last_activity_at = CASE WHEN last_activity_at < ? THEN ? ELSE last_activity_at END "
    f"WHERE id = ? RETURNING {Conversation.COLUMNS}"
)


def touched(conversation: Conversation, status: str, reopen: bool, now: float) -> Conversation:
    """``conversation`` as :data:`TOUCH_CONVERSATION` leaves it, computed as the UPDATE
    computes it (SQLite's writer knows the row as it stands: nobody else writes)."""
    return msgspec.structs.replace(
        conversation, status=status, updated_at=float(now),
        last_activity_at=max(conversation.last_activity_at, float(now)),
        waiting_since=(
            conversation.waiting_since if conversation.waiting_since is not None else float(now)
        ),
        snoozed_until=None if reopen else conversation.snoozed_until,
    )  # fmt: skip


def contact_wrote(
    conversation: Conversation,
    status: str,
    reopen: bool,
    contact_id: int,
    now: float,
    *,
    contact_active_at: float | None = None,
    current: bool = False,
) -> Op[Conversation]:
    """What a message from the conversation's contact does, whether the customer sent it or
    an agent or bot posted it for them: sets ``status`` (``reopen``: a snooze ends), starts
    the wait for a reply, and moves the conversation's and the contact's activity forward.
    ``contact_active_at``: the contact's activity as the caller read it, if it did (a write
    that cannot move it is skipped). ``current``: ``conversation`` is the row as it stands in
    this transaction (read in it, nobody else writing: SQLite's one writer), so the written
    row is computed as the UPDATE computes it rather than returned (RETURNING costs SQLite a
    temporary table, and reading back every column costs more than the UPDATE)."""
    touch = (status, now, now, now, now, reopen, conversation.id)
    if current:
        yield from execute(TOUCH_CONVERSATION, *touch)
        written = touched(conversation, status, reopen, now)
    else:
        row = yield from one(f"{TOUCH_CONVERSATION} RETURNING {Conversation.COLUMNS}", *touch)
        assert row is not None
        written = Conversation.from_row(row)
    if contact_active_at is None or contact_active_at < now:
        yield from execute(TOUCH_CONTACT, now, contact_id, now)
    return written


def someone_wrote(conversation: Conversation, now: float) -> Op[Conversation]:
    """What any other message does (an agent's, a bot's, an activity): moves the
    conversation's activity forward."""
    row = yield from one(_TOUCH_ACTIVITY, now, now, conversation.id)
    assert row is not None
    return Conversation.from_row(row)


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
        view = yield from view_of(message, conversation, link)
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
    view = yield from view_of(updated, conversation, link)
    return MessageResult(
        message=updated, conversation=conversation, created=False, view=view, events=logged
    )
