"""Typed realtime events, as a session yields them.

A broadcast's ``{"event": name, "data": {...}}`` becomes one of the classes below. Event types
this SDK does not know, and known ones whose data does not decode, are skipped (logged at debug
level), never raised: a newer gateway may send more than this SDK understands.

Messages are given as :class:`~client_sdk.protocol.PublicMessage`, the shape the HTTP API
returns too, so a message looks the same whether it was sent, listed or heard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec
from msgspec import UNSET

from . import protocol as p

log = logging.getLogger("client_sdk.events")


@dataclass(frozen=True)
class MessageCreated:
    """A new message in one of the contact's conversations (theirs, an agent's, a survey).

    ``echo_id`` is the one the send carried (this SDK's sends always carry one). ``data`` is
    the full push payload; it is None when ``recovered`` is true: the message was fetched over
    HTTP after a reconnect to a server that keeps no history (plain Action Cable).
    """

    message: p.PublicMessage
    echo_id: str | None = None
    data: p.MessageEventData | None = None
    recovered: bool = False

    @property
    def conversation_id(self) -> int:
        return self.message.conversation_id

    @property
    def from_contact(self) -> bool:
        return self.message.message_type == p.MESSAGE_TYPE_INCOMING


@dataclass(frozen=True)
class MessageUpdated:
    """A message changed (read receipts, a CSAT answer, a delivery failure)."""

    message: p.PublicMessage
    data: p.MessageEventData

    @property
    def conversation_id(self) -> int:
        return self.message.conversation_id


@dataclass(frozen=True)
class ConversationCreated:
    conversation: p.ConversationEventData

    @property
    def conversation_id(self) -> int:
        return self.conversation.id


@dataclass(frozen=True)
class ConversationStatusChanged:
    """``conversation.status`` is the new status (``resolved``, ``open``...)."""

    conversation: p.ConversationEventData

    @property
    def conversation_id(self) -> int:
        return self.conversation.id


@dataclass(frozen=True)
class ConversationUpdated:
    conversation: p.ConversationEventData

    @property
    def conversation_id(self) -> int:
        return self.conversation.id


@dataclass(frozen=True)
class TypingChanged:
    """An agent started (``typing`` true) or stopped typing in a conversation."""

    typing: bool
    data: p.TypingEventData

    @property
    def conversation_id(self) -> int:
        return self.data.conversation.id


@dataclass(frozen=True)
class PresenceUpdated:
    data: p.PresenceEventData


@dataclass(frozen=True)
class Connected:
    """The subscription is live. ``restored``: the server resumed the previous session;
    ``reconnect``: this is not the first connection of the subscription."""

    reconnect: bool
    restored: bool


@dataclass(frozen=True)
class Disconnected:
    """The socket dropped; the subscription is reconnecting. ``reason`` says why."""

    reason: str


Event: TypeAlias = (
    MessageCreated
    | MessageUpdated
    | ConversationCreated
    | ConversationStatusChanged
    | ConversationUpdated
    | TypingChanged
    | PresenceUpdated
    | Connected
    | Disconnected
)


def public_message(data: p.MessageEventData) -> p.PublicMessage:
    """The public view (§3.15) of a pushed message."""
    return p.PublicMessage(
        id=data.id,
        content=data.content,
        message_type=data.message_type,
        content_type=data.content_type,
        content_attributes=data.content_attributes,
        created_at=data.created_at,
        conversation_id=data.conversation_id,
        attachments=data.attachments,
        sender=data.sender,
    )


_CONVERSATION_EVENTS: dict[
    str, type[ConversationCreated] | type[ConversationStatusChanged] | type[ConversationUpdated]
] = {
    "conversation.created": ConversationCreated,
    "conversation.status_changed": ConversationStatusChanged,
    "conversation.updated": ConversationUpdated,
}


def decode_event(message: Any) -> Event | None:
    """The typed event of a broadcast's ``message``, or None to skip it."""
    if not isinstance(message, dict):
        return None
    name, data = message.get("event"), message.get("data")
    try:
        if name in ("message.created", "message.updated"):
            pushed = msgspec.convert(data, p.MessageEventData)
            if name == "message.updated":
                return MessageUpdated(public_message(pushed), pushed)
            echo = None if pushed.echo_id is UNSET else pushed.echo_id
            return MessageCreated(public_message(pushed), echo, pushed)
        if isinstance(name, str) and name in _CONVERSATION_EVENTS:
            return _CONVERSATION_EVENTS[name](msgspec.convert(data, p.ConversationEventData))
        if name in ("conversation.typing_on", "conversation.typing_off"):
            typing = msgspec.convert(data, p.TypingEventData)
            return TypingChanged(name == "conversation.typing_on", typing)
        if name == "presence.update":
            return PresenceUpdated(msgspec.convert(data, p.PresenceEventData))
    except msgspec.ValidationError as exc:
        log.debug("skipping a %s event that does not decode: %s", name, exc)
        return None
    log.debug("skipping unknown event %r", name)
    return None
