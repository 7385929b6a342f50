"""The JSON encoder and the decoders of the shapes decoded by type, built once at import:
building a msgspec decoder compiles its type, which no request should pay for.

Anything else decodes with ``msgspec.json.decode(raw, type=...)``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .agent import AgentConversation, AgentMessage, ConversationList, MessagesResponse
from .public import (
    Contact,
    ContactCreateRequest,
    ContactUpdateRequest,
    ConversationCreateRequest,
    CsatSurvey,
    CsatSurveyUpdateRequest,
    MessageCreateRequest,
    MessageUpdateRequest,
    PublicContact,
    PublicConversation,
    PublicInbox,
    PublicMessage,
    ToggleTypingRequest,
)
from .push import Event

__all__ = [
    "agent_conversation_decoder",
    "agent_message_decoder",
    "contact_create_decoder",
    "contact_decoder",
    "contact_update_decoder",
    "conversation_create_decoder",
    "conversation_list_decoder",
    "csat_survey_decoder",
    "csat_survey_update_decoder",
    "encode",
    "event_decoder",
    "json_encoder",
    "message_create_decoder",
    "message_update_decoder",
    "messages_response_decoder",
    "public_contact_decoder",
    "public_conversation_decoder",
    "public_conversations_decoder",
    "public_inbox_decoder",
    "public_message_decoder",
    "public_messages_decoder",
    "toggle_typing_decoder",
]

json_encoder = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    """Encode any protocol Struct (or list of them) to JSON bytes."""
    return json_encoder.encode(value)


# Request bodies of the public API (the gateway's side).
contact_create_decoder = msgspec.json.Decoder(ContactCreateRequest)
contact_update_decoder = msgspec.json.Decoder(ContactUpdateRequest)
conversation_create_decoder = msgspec.json.Decoder(ConversationCreateRequest)
toggle_typing_decoder = msgspec.json.Decoder(ToggleTypingRequest)
message_create_decoder = msgspec.json.Decoder(MessageCreateRequest)
message_update_decoder = msgspec.json.Decoder(MessageUpdateRequest)
csat_survey_update_decoder = msgspec.json.Decoder(CsatSurveyUpdateRequest)

# The public API's answers and the broadcast envelope (the SDK's side).
public_inbox_decoder = msgspec.json.Decoder(PublicInbox)
public_contact_decoder = msgspec.json.Decoder(PublicContact)
contact_decoder = msgspec.json.Decoder(Contact)
public_conversation_decoder = msgspec.json.Decoder(PublicConversation)
public_conversations_decoder = msgspec.json.Decoder(list[PublicConversation])
public_message_decoder = msgspec.json.Decoder(PublicMessage)
public_messages_decoder = msgspec.json.Decoder(list[PublicMessage])
csat_survey_decoder = msgspec.json.Decoder(CsatSurvey)
event_decoder = msgspec.json.Decoder(Event)

# The agent API's answers (integrators' clients and the tests).
agent_conversation_decoder = msgspec.json.Decoder(AgentConversation)
conversation_list_decoder = msgspec.json.Decoder(ConversationList)
agent_message_decoder = msgspec.json.Decoder(AgentMessage)
messages_response_decoder = msgspec.json.Decoder(MessagesResponse)
