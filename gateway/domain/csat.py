"""The CSAT survey page API by conversation uuid (§3.14)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import CsatResponse, Inbox, Message
from ..store.sql import Op, one
from ..views import public as presenters
from . import messages as message_ops
from .conversations import conversation_by_uuid
from .errors import NotFound


class CsatSurveyView(Struct, kw_only=True):
    survey: p.CsatSurvey
    conversation_id: int
    message_id: int


def _survey(uuid: str) -> Op[tuple[Any, Message, Inbox]]:
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
    inbox_row = yield from one(
        f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", conversation.inbox_id
    )
    assert inbox_row is not None
    return conversation, Message.from_row(row), Inbox.from_row(inbox_row)


def _record(response: CsatResponse) -> p.CsatResponseRecord:
    return p.CsatResponseRecord(
        id=response.id, account_id=response.account_id,
        conversation_id=response.conversation_id, message_id=response.message_id,
        rating=response.rating, feedback_message=response.feedback_message,
        contact_id=response.contact_id, assigned_agent_id=response.assigned_agent_id,
        created_at=presenters.iso_required(response.created_at),
        updated_at=presenters.iso_required(response.updated_at),
    )  # fmt: skip


def get_response(message_id: int) -> Op[CsatResponse | None]:
    row = yield from one(
        f"SELECT {CsatResponse.COLUMNS} FROM csat_survey_responses WHERE message_id = ?",
        message_id,
    )
    return CsatResponse.from_row(row) if row else None


def show(uuid: str) -> Op[p.CsatSurvey]:
    conversation, message, inbox = yield from _survey(uuid)
    response = yield from get_response(message.id)
    return p.CsatSurvey(
        id=message.id,
        csat_survey_response=_record(response) if response else None,
        display_type=str(message.content_attributes.get("display_type") or inbox.csat_display_type),
        content=inbox.csat_message,
        inbox_name=inbox.name,
        conversation_id=conversation.id,
        created_at=presenters.iso_required(message.created_at),
    )


def submit(
    uuid: str,
    submitted_values: Any,
    csat_lock_days: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[tuple[p.CsatSurvey, message_ops.MessageResult]]:
    conversation, message, _inbox = yield from _survey(uuid)
    result = yield from message_ops.update_submitted_values(
        conversation.id, message.id, submitted_values, csat_lock_days, link, now
    )
    survey = yield from show(uuid)
    return survey, result
