"""The realtime side of agent actions, through the same ``notify`` functions the public API
uses (so every consumer of those events sees agent actions too), plus what only agents hear.

Conversation payloads are hydrated first: their ``meta`` shows the assignee and team.
"""

from __future__ import annotations

from typing import Any

from client_sdk import protocol as p

from ..store.records import Conversation, LoggedEvent, Message
from ..store.sql import Op
from ..views import public as presenters
from . import events, notify
from .assignees import hydrate_conversation
from .messages import insert_message, someone_wrote

# Chatwoot's activity texts (config/locales/en.yml, conversations.activity).
STATUS_ACTIVITY = {
    "resolved": "Conversation was marked resolved by {user}",
    "open": "Conversation was reopened by {user}",
    "pending": "Conversation was marked as pending by {user}",
    "snoozed": "Conversation was snoozed by {user}",
}
ASSIGNED = "Assigned to {assignee} by {user}"
SELF_ASSIGNED = "{user} self-assigned this conversation"
UNASSIGNED = "Conversation unassigned by {user}"
TEAM_ASSIGNED = "Assigned to {team} by {user}"
TEAM_REMOVED = "Unassigned from {team} by {user}"
LABELS_ADDED = "{user} added {labels}"
LABELS_REMOVED = "{user} removed {labels}"
PRIORITY_ADDED = "{user} set the priority to {new}"
PRIORITY_CHANGED = "{user} changed the priority from {old} to {new}"
PRIORITY_REMOVED = "{user} removed the priority"


def conversation_event(
    name: str,
    conversation: Conversation,
    link: presenters.LinkBuilder,
    now: float,
    *,
    to_contact: bool = True,
    changed: dict[str, tuple[Any, Any]] | None = None,
) -> Op[list[LoggedEvent]]:
    """``conversation.*``, ``assignee.changed``, ``team.changed`` (the last two and
    ``.read`` reach agents only: pass ``to_contact=False``). ``changed`` maps each changed
    attribute to ``(previous, current)``: the ``conversation_updated`` webhook lists them."""
    yield from hydrate_conversation(conversation)
    attributes = (
        [
            {key: {"previous_value": old, "current_value": new}}
            for key, (old, new) in changed.items()
        ]
        if changed
        else None
    )
    return (
        yield from notify.emit_conversation(
            name, conversation, link, now, to_contact=to_contact, changed_attributes=attributes
        )
    )


def activity(
    conversation: Conversation, content: str, link: presenters.LinkBuilder, now: float
) -> Op[list[LoggedEvent]]:
    """An activity message (no sender); agents hear it, customers never do."""
    message = yield from insert_message(
        conversation, content=content, message_type=p.MESSAGE_TYPE_ACTIVITY, now=now
    )
    # Every message counts as activity in Chatwoot, activity messages too.
    yield from someone_wrote(conversation, now)
    return (yield from notify.emit_message("message.created", message, conversation, link, now))


def first_reply(
    message: Message, conversation: Conversation, link: presenters.LinkBuilder, now: float
) -> Op[list[LoggedEvent]]:
    """``first.reply.created``: the message push payload, to agents only."""
    data = yield from notify.message_data(message, conversation, link)
    return (
        yield from events.append(
            "first.reply.created", data, [events.inbox_stream(conversation.inbox_id)], now
        )
    )
