"""Messages through the agent API (reference agent §3.4): list, create, soft delete, delivery
status. Input is validated by the service; these operations apply Chatwoot's side effects.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import AgentBot, Attachment, Conversation, LoggedEvent, Message, Performer
from ..store.sql import Op, dump_json, one, rows, scalar
from ..views import public as presenters
from . import agent_events, notify
from .agent_bots import reopened_status
from .assignees import account_user
from .contacts import get_contact
from .errors import Flooded, NotFound
from .message_reads import get_message, hydrate
from .messages import (
    NewAttachment,
    contact_wrote,
    flood_guard,
    get_conversation,
    insert_message,
    someone_wrote,
)
from .models import MessagePage

DELETED_CONTENT = "This message was deleted"
BEFORE_LIMIT = 20
AFTER_LIMIT = 100
BETWEEN_LIMIT = 1000


class NewAgentMessage(Struct, kw_only=True):
    """A validated message create (``message_type`` as its integer)."""

    content: str | None = None
    message_type: int = p.MESSAGE_TYPE_OUTGOING
    private: bool = False
    content_type: str = "text"
    content_attributes: dict[str, Any] = {}
    echo_id: str | None = None
    source_id: str | None = None
    attachments: list[NewAttachment] = []


class AgentMessageResult(Struct, kw_only=True):
    """The message as written (its view is rendered by the service, in the same transaction)."""

    message: Message
    conversation: Conversation
    events: list[LoggedEvent] = []
    # Files whose rows were deleted in the transaction: the service removes them after commit.
    removed: list[Attachment] = []


def list_messages(
    conversation: Conversation,
    before: int | None,
    after: int | None,
    filter_internal: bool,
) -> Op[MessagePage]:
    """Oldest first: the latest 20; 20 before ``before``; up to 100 after ``after``; with
    both, ids in ``[after, before)`` (up to 1000)."""
    where = "conversation_id = ?"
    params: list[object] = [conversation.id]
    if filter_internal:
        where += f" AND private = ? AND message_type <> {p.MESSAGE_TYPE_ACTIVITY}"
        params.append(False)
    if before is not None and after is not None:
        where += " AND id >= ? AND id < ?"
        params += [after, before]
        order, limit = "DESC", BETWEEN_LIMIT
    elif after is not None:
        where += " AND id > ?"
        params.append(after)
        order, limit = "ASC", AFTER_LIMIT
    else:
        if before is not None:
            where += " AND id < ?"
            params.append(before)
        order, limit = "DESC", BEFORE_LIMIT
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE {where} ORDER BY id {order} LIMIT ?",
        *params, limit,
    )  # fmt: skip
    found = [Message.from_row(r) for r in result]
    if order == "DESC":
        found.reverse()
    found = yield from hydrate(found)
    contact = yield from get_contact(conversation.contact_id)
    if contact is None:
        raise NotFound("contact")
    assignee = None
    if conversation.assignee_id is not None:
        member = yield from account_user(conversation.account_id, conversation.assignee_id)
        assignee = member[0] if member else None
    return MessagePage(messages=found, contact=contact, assignee=assignee)


def _update_conversation(sql: str, *params: object) -> Op[Conversation]:
    row = yield from one(
        f"UPDATE conversations SET {sql} RETURNING {Conversation.COLUMNS}", *params
    )
    assert row is not None
    return Conversation.from_row(row)


def add_message(
    conversation: Conversation,
    new: NewAgentMessage,
    performer: Performer,
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[AgentMessageResult]:
    """Create a message and apply what follows it in Chatwoot: an incoming message reopens
    the conversation (back to pending when its inbox has a bot); the first human reply stamps
    ``first_reply_created_at``; any human reply ends the customer's wait (a bot's does not)."""
    retry_after = yield from flood_guard(conversation.id, per_minute_limit, now)
    if retry_after is not None:
        raise Flooded(retry_after)
    outgoing = new.message_type == p.MESSAGE_TYPE_OUTGOING
    # Outgoing messages are the caller's (a user or a bot); every other type is the contact's
    # (reference §3.4.2).
    caller = "AgentBot" if isinstance(performer, AgentBot) else "User"
    sender = (caller, performer.id) if outgoing else ("Contact", conversation.contact_id)
    message = yield from insert_message(
        conversation, content=new.content, message_type=new.message_type, now=now,
        content_type=new.content_type, content_attributes=new.content_attributes,
        private=new.private, sender_type=sender[0], sender_id=sender[1],
        attachments=new.attachments, source_id=new.source_id,
    )  # fmt: skip
    # echo_id is not stored (as Chatwoot): it comes back in this response and the event only.
    message.echo_id = new.echo_id
    message.performer = performer
    logged: list[LoggedEvent] = []
    reopened = False
    if new.message_type == p.MESSAGE_TYPE_INCOMING:
        blocked = yield from scalar(
            "SELECT blocked FROM contacts WHERE id = ?", conversation.contact_id
        )
        reopened = conversation.status in ("resolved", "snoozed") and not blocked
        status = conversation.status
        if reopened:
            status = yield from reopened_status(conversation.inbox_id, conversation.status)
        conversation = yield from contact_wrote(
            conversation, status, reopened, conversation.contact_id, now
        )
    else:
        conversation = yield from someone_wrote(conversation, now)
    logged += yield from notify.emit_message("message.created", message, conversation, link, now)
    if reopened:
        logged += yield from agent_events.conversation_event(
            "conversation.status_changed", conversation, link, now
        )
    if outgoing and not new.private and caller == "User":
        first = conversation.first_reply_created_at is None
        waited = conversation.waiting_since
        if first or waited is not None:
            conversation = yield from _update_conversation(
                "first_reply_created_at = COALESCE(first_reply_created_at, ?), "
                "waiting_since = NULL, updated_at = ? WHERE id = ?",
                message.created_at, now, conversation.id,
            )  # fmt: skip
            if first:
                logged += yield from agent_events.first_reply(message, conversation, link, now)
            changed: dict[str, tuple[Any, Any]] = {}
            if waited is not None:
                changed["waiting_since"] = (presenters.iso(waited), None)
            if first:
                changed["first_reply_created_at"] = (
                    None, presenters.iso(conversation.first_reply_created_at),
                )  # fmt: skip
            logged += yield from agent_events.conversation_event(
                "conversation.updated", conversation, link, now, changed=changed
            )
    return AgentMessageResult(message=message, conversation=conversation, events=logged)


def create_message(
    conversation_id: int,
    new: NewAgentMessage,
    performer: Performer,
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[AgentMessageResult]:
    conversation = yield from get_conversation(conversation_id)
    return (yield from add_message(conversation, new, performer, per_minute_limit, link, now))


def _message(conversation: Conversation, message_id: int) -> Op[Message]:
    message = yield from get_message(conversation.id, message_id)
    if message is None:
        raise NotFound("message")
    return message


def _set(message: Message, sql: str, *params: object) -> Op[Message]:
    row = yield from one(
        f"UPDATE messages SET {sql} WHERE id = ? RETURNING {Message.COLUMNS}", *params, message.id
    )
    assert row is not None
    return Message.from_row(row)


def delete_message(
    conversation_id: int,
    message_id: int,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[AgentMessageResult]:
    """Soft delete (§3.4.4): the content is replaced and the attachments are dropped; everyone
    who saw the message gets ``message.updated``."""
    conversation = yield from get_conversation(conversation_id)
    message = yield from _message(conversation, message_id)
    deleted = {"deleted": True}
    updated = yield from _set(
        message, "content = ?, content_type = 'text', content_attributes = ?, updated_at = ?",
        DELETED_CONTENT, dump_json(deleted), now,
    )  # fmt: skip
    yield from rows("DELETE FROM attachments WHERE message_id = ?", message.id)
    updated.performer = performer
    changes: dict[str, list[object]] = {
        "content": [message.content, DELETED_CONTENT],
        "content_attributes": [message.content_attributes, deleted],
        "updated_at": [presenters.iso(message.updated_at), presenters.iso(now)],
    }
    if message.content_type != "text":
        changes["content_type"] = [message.content_type, "text"]
    logged = yield from notify.emit_message(
        "message.updated", updated, conversation, link, now, previous_changes=changes
    )
    return AgentMessageResult(
        message=updated, conversation=conversation, events=logged, removed=message.attachments
    )


def update_status(
    conversation_id: int,
    message_id: int,
    status: str | None,
    external_error: str | None,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[AgentMessageResult]:
    """Delivery status from an integrator (§3.4.3). An unknown status, or read → delivered,
    changes nothing; ``failed`` keeps the error in ``content_attributes.external_error``."""
    conversation = yield from get_conversation(conversation_id)
    message = yield from _message(conversation, message_id)
    valid = status in p.MESSAGE_STATUSES and not (
        message.status == "read" and status == "delivered"
    )
    logged: list[LoggedEvent] = []
    if valid and status is not None:
        attributes = dict(message.content_attributes)
        if status == "failed":
            attributes["external_error"] = external_error
        updated = yield from _set(
            message, "status = ?, content_attributes = ?, updated_at = ?",
            status, dump_json(attributes), now,
        )  # fmt: skip
        updated.attachments = message.attachments
        updated.performer = performer
        changes: dict[str, list[object]] = {
            "status": [message.status, status],
            "updated_at": [presenters.iso(message.updated_at), presenters.iso(now)],
        }
        if attributes != message.content_attributes:
            changes["content_attributes"] = [message.content_attributes, attributes]
        logged = yield from notify.emit_message(
            "message.updated", updated, conversation, link, now, previous_changes=changes
        )
        message = updated
    return AgentMessageResult(message=message, conversation=conversation, events=logged)
