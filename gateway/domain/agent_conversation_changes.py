"""What agents change on a conversation (reference agent §3.1.6-3.3): status, priority,
custom attributes, assignee, team, labels, last seen. Each change that Chatwoot reports is
reported the same way: the conversation event, and an activity message agents see.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..store.records import Conversation, Inbox, LoggedEvent, Performer, Team, User
from ..store.sql import Op, dump_json, one, rows
from ..views import public as presenters
from . import agent_events as ev
from .conversations import send_csat
from .messages import get_conversation


class ChangeResult(Struct, kw_only=True):
    conversation: Conversation
    events: list[LoggedEvent] = []


def _update(conversation_id: int, sql: str, *params: object) -> Op[Conversation]:
    row = yield from one(
        f"UPDATE conversations SET {sql} WHERE id = ? RETURNING {Conversation.COLUMNS}",
        *params, conversation_id,
    )  # fmt: skip
    assert row is not None
    return Conversation.from_row(row)


def _assign(
    conversation: Conversation,
    assignee: User | None,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    previous = conversation.assignee_id
    if previous == (assignee.id if assignee else None):
        return ChangeResult(conversation=conversation)
    conversation = yield from _update(
        conversation.id, "assignee_id = ?, updated_at = ?", assignee.id if assignee else None, now
    )
    logged = yield from ev.conversation_event(
        "assignee.changed", conversation, link, now, to_contact=False
    )
    logged += yield from ev.conversation_event(
        "conversation.updated", conversation, link, now,
        changed={"assignee_id": (previous, conversation.assignee_id)},
    )  # fmt: skip
    if assignee is None:
        text = ev.UNASSIGNED.format(user=performer.name)
    elif isinstance(performer, User) and assignee.id == performer.id:
        text = ev.SELF_ASSIGNED.format(user=performer.name)
    else:
        text = ev.ASSIGNED.format(assignee=assignee.name, user=performer.name)
    logged += yield from ev.activity(conversation, text, link, now)
    return ChangeResult(conversation=conversation, events=logged)


def toggle_status(
    conversation_id: int,
    status: str | None,
    snoozed_until: float | None,
    performer: Performer,
    self_assign: bool,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    """Set ``status`` (none: open <-> resolved). ``snoozed_until`` is kept only while snoozed.
    An agent (not an administrator) who opens a conversation becomes its assignee."""
    conversation = yield from get_conversation(conversation_id)
    before = conversation
    if status is None:
        status = "resolved" if conversation.status == "open" else "open"
    until = snoozed_until if status == "snoozed" else None
    logged: list[LoggedEvent] = []
    if (status, until) != (conversation.status, conversation.snoozed_until):
        conversation = yield from _update(
            conversation.id, "status = ?, snoozed_until = ?, updated_at = ?", status, until, now
        )
        if status != before.status:
            logged += yield from ev.conversation_event(
                "conversation.status_changed", conversation, link, now
            )
            text = ev.STATUS_ACTIVITY[status].format(user=performer.name)
            logged += yield from ev.activity(conversation, text, link, now)
            if status == "resolved":
                row = yield from one(
                    f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", conversation.inbox_id
                )
                assert row is not None
                logged += yield from send_csat(conversation, Inbox.from_row(row), link, now)
        else:
            logged += yield from ev.conversation_event(
                "conversation.updated", conversation, link, now,
                changed={"snoozed_until": (presenters.iso(before.snoozed_until),
                                           presenters.iso(until))},
            )  # fmt: skip
    if status == "open" and self_assign and isinstance(performer, User):
        assigned = yield from _assign(conversation, performer, performer, link, now)
        conversation = assigned.conversation
        logged += assigned.events
    return ChangeResult(conversation=conversation, events=logged)


def set_priority(
    conversation_id: int,
    priority: str | None,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    conversation = yield from get_conversation(conversation_id)
    old = conversation.priority
    if priority == old:
        return ChangeResult(conversation=conversation)
    conversation = yield from _update(
        conversation.id, "priority = ?, updated_at = ?", priority, now
    )
    logged = yield from ev.conversation_event(
        "conversation.updated", conversation, link, now, changed={"priority": (old, priority)}
    )
    if priority is None:
        text = ev.PRIORITY_REMOVED.format(user=performer.name)
    elif old is None:
        text = ev.PRIORITY_ADDED.format(user=performer.name, new=priority)
    else:
        text = ev.PRIORITY_CHANGED.format(user=performer.name, old=old, new=priority)
    logged += yield from ev.activity(conversation, text, link, now)
    return ChangeResult(conversation=conversation, events=logged)


def set_custom_attributes(
    conversation_id: int, attributes: dict[str, Any], link: presenters.LinkBuilder, now: float
) -> Op[ChangeResult]:
    """Replaces the whole hash (§3.1.9)."""
    conversation = yield from get_conversation(conversation_id)
    previous = conversation.custom_attributes
    if attributes == previous:
        return ChangeResult(conversation=conversation)
    conversation = yield from _update(
        conversation.id, "custom_attributes = ?, updated_at = ?", dump_json(attributes), now
    )
    logged = yield from ev.conversation_event(
        "conversation.updated", conversation, link, now,
        changed={"custom_attributes": (previous, attributes)},
    )  # fmt: skip
    return ChangeResult(conversation=conversation, events=logged)


def update_last_seen(conversation_id: int, viewer: User, now: float) -> Op[Conversation]:
    """The agent read the conversation: no event (Chatwoot writes the columns directly)."""
    conversation = yield from get_conversation(conversation_id)
    mine = conversation.assignee_id == viewer.id
    updated = yield from _update(
        conversation.id,
        "agent_last_seen_at = ?, assignee_last_seen_at = CASE WHEN ? THEN ? "
        "ELSE assignee_last_seen_at END",
        now, mine, now,
    )  # fmt: skip
    return updated


def assign_user(
    conversation_id: int,
    assignee: User | None,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    conversation = yield from get_conversation(conversation_id)
    return (yield from _assign(conversation, assignee, performer, link, now))


def assign_team(
    conversation_id: int,
    team: Team | None,
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    conversation = yield from get_conversation(conversation_id)
    if conversation.team_id == (team.id if team else None):
        return ChangeResult(conversation=conversation)
    previous, previous_id = None, conversation.team_id
    if conversation.team_id is not None:
        name = yield from one("SELECT name FROM teams WHERE id = ?", conversation.team_id)
        previous = str(name[0]) if name else None
    conversation = yield from _update(
        conversation.id, "team_id = ?, updated_at = ?", team.id if team else None, now
    )
    logged = yield from ev.conversation_event(
        "team.changed", conversation, link, now, to_contact=False
    )
    logged += yield from ev.conversation_event(
        "conversation.updated", conversation, link, now,
        changed={"team_id": (previous_id, conversation.team_id)},
    )  # fmt: skip
    if team is not None:
        text = ev.TEAM_ASSIGNED.format(team=team.name, user=performer.name)
        logged += yield from ev.activity(conversation, text, link, now)
    elif previous is not None:
        text = ev.TEAM_REMOVED.format(team=previous, user=performer.name)
        logged += yield from ev.activity(conversation, text, link, now)
    return ChangeResult(conversation=conversation, events=logged)


def set_labels(
    conversation_id: int,
    labels: list[str],
    performer: Performer,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ChangeResult]:
    """Replaces the label list (§3.3); ``[]`` clears it."""
    conversation = yield from get_conversation(conversation_id)
    old = list(conversation.labels)
    if labels == old:
        return ChangeResult(conversation=conversation)
    yield from rows("DELETE FROM conversation_labels WHERE conversation_id = ?", conversation.id)
    for label in labels:
        yield from rows(
            "INSERT INTO conversation_labels (conversation_id, label) VALUES (?, ?)",
            conversation.id, label,
        )  # fmt: skip
    conversation = yield from _update(
        conversation.id, "labels = ?, updated_at = ?", dump_json(labels), now
    )
    logged = yield from ev.conversation_event(
        "conversation.updated", conversation, link, now, changed={"label_list": (old, labels)}
    )
    added = [label for label in labels if label not in old]
    removed = [label for label in old if label not in labels]
    if added:
        text = ev.LABELS_ADDED.format(user=performer.name, labels=", ".join(added))
        logged += yield from ev.activity(conversation, text, link, now)
    if removed:
        text = ev.LABELS_REMOVED.format(user=performer.name, labels=", ".join(removed))
        logged += yield from ev.activity(conversation, text, link, now)
    return ChangeResult(conversation=conversation, events=logged)


# Found by the partial index of the snoozed conversations (``conversations_snoozed``).
REOPEN_SNOOZED = (
    "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = ? "
    f"WHERE status = 'snoozed' AND snoozed_until <= ? RETURNING {Conversation.COLUMNS}"
)


def reopen_snoozed(link: presenters.LinkBuilder, now: float) -> Op[list[LoggedEvent]]:
    """Snoozed conversations whose ``snoozed_until`` has come open again (Chatwoot's
    ``ReopenSnoozedConversationsJob``)."""
    result = yield from rows(REOPEN_SNOOZED, now, now)
    logged: list[LoggedEvent] = []
    for conversation in sorted(map(Conversation.from_row, result), key=lambda c: c.id):
        logged += yield from ev.conversation_event(
            "conversation.status_changed", conversation, link, now
        )
    return logged


def delete_conversation(conversation_id: int) -> Op[list[str]]:
    """Remove a conversation and everything in it; returns the attachment files to delete."""
    keys = yield from rows(
        "SELECT a.storage_key FROM attachments a JOIN messages m ON m.id = a.message_id "
        "WHERE m.conversation_id = ?",
        conversation_id,
    )
    yield from rows(
        "DELETE FROM attachments WHERE message_id IN "
        "(SELECT id FROM messages WHERE conversation_id = ?)",
        conversation_id,
    )
    for table in ("csat_survey_responses", "messages", "conversation_labels"):
        yield from rows(f"DELETE FROM {table} WHERE conversation_id = ?", conversation_id)
    yield from rows("DELETE FROM conversations WHERE id = ?", conversation_id)
    return [str(r[0]) for r in keys]
