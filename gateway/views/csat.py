"""A CSAT survey as the survey page reads it (§3.14)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..domain.csat import Survey
from ..store.records import CsatResponse
from .public import iso_required


def response_record(response: CsatResponse) -> p.CsatResponseRecord:
    return p.CsatResponseRecord(
        id=response.id, account_id=response.account_id,
        conversation_id=response.conversation_id, message_id=response.message_id,
        rating=response.rating, feedback_message=response.feedback_message,
        contact_id=response.contact_id, assigned_agent_id=response.assigned_agent_id,
        created_at=iso_required(response.created_at),
        updated_at=iso_required(response.updated_at),
    )  # fmt: skip


def csat_survey(survey: Survey) -> p.CsatSurvey:
    message, inbox = survey.message, survey.inbox
    return p.CsatSurvey(
        id=message.id,
        csat_survey_response=response_record(survey.response) if survey.response else None,
        display_type=str(message.content_attributes.get("display_type") or inbox.csat_display_type),
        content=inbox.csat_message,
        inbox_name=inbox.name,
        conversation_id=survey.conversation.id,
        created_at=iso_required(message.created_at),
    )
