"""The CSAT survey page API by conversation uuid (§3.14): the survey a conversation's CSAT
message is, and its answer."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..store.records import Conversation, CsatResponse, Inbox, Message
from ..store.sql import Op, one
from ..views.public import LinkBuilder
from . import messages as message_ops
from .conversations import conversation_by_uuid
from .errors import NotFound


class Survey(Struct, kw_only=True):
    """A conversation's CSAT survey: its message, its inbox (the survey's settings), and the
    answer if there is one."""

    conversation: Conversation
    message: Message
    inbox: Inbox
    response: CsatResponse | None


def get_response(message_id: int) -> Op[CsatResponse | None]:
    row = yield from one(
        f"SELECT {CsatResponse.COLUMNS} FROM csat_survey_responses WHERE message_id = ?",
        message_id,
    )
    return CsatResponse.from_row(row) if row else None


def survey(uuid: str) -> Op[Survey]:
    """The survey of the conversation with this uuid (NotFound without one)."""
    conversation = yield from conversation_by_uuid(uuid)
    if conversation is None:
        raise NotFound("conversation")
    row = yield from one(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? "
        "AND content_type = 'input_csat' ORDER BY id LIMIT 1",
        conversation.id,
    )
    if row is None:
        raise NotFound("csat survey")
    message = Message.from_row(row)
    inbox_row = yield from one(
        f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", conversation.inbox_id
    )
    assert inbox_row is not None
    response = yield from get_response(message.id)
    return Survey(
        conversation=conversation, message=message, inbox=Inbox.from_row(inbox_row),
        response=response,
    )  # fmt: skip


def submit(
    uuid: str, submitted_values: Any, csat_lock_days: int, link: LinkBuilder, now: float
) -> Op[tuple[Survey, message_ops.MessageResult]]:
    """Answer the survey (the lock and the rules are the message update's); returns the
    survey as answered."""
    found = yield from survey(uuid)
    result = yield from message_ops.update_submitted_values(
        found.conversation.id, found.message.id, submitted_values, csat_lock_days, link, now
    )
    return (yield from survey(uuid)), result
