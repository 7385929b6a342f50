"""Conversations through the agent API: the filtered list with its counts (reference agent
§3.1.1-2) and create (§3.1.4, seed 000)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import (
    ContactInbox,
    Conversation,
    Inbox,
    LoggedEvent,
    Performer,
)
from ..store.sql import Op, one, rows, scalar
from ..views import public as presenters
from .agent_messages import NewAgentMessage, add_message
from .conversations import Opening, open_conversation
from .errors import Duplicate, NotFound
from .tokens import secure_token, uuid4

PAGE_SIZE = 25
_PRIORITY_RANK = (
    "CASE c.priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 1 END"
)
# Unknown sort_by values fall back to the default, the newest activity first.
SORTS = {
    "last_activity_at_desc": "c.last_activity_at DESC, c.id DESC",
    "last_activity_at_asc": "c.last_activity_at ASC, c.id ASC",
    "created_at_desc": "c.created_at DESC, c.id DESC",
    "created_at_asc": "c.created_at ASC, c.id ASC",
    "priority_desc": f"(c.priority IS NULL), {_PRIORITY_RANK} DESC, c.last_activity_at DESC",
    "priority_asc": f"(c.priority IS NULL), {_PRIORITY_RANK} ASC, c.last_activity_at DESC",
    "waiting_since_asc": "(c.waiting_since IS NULL), c.waiting_since ASC, c.id ASC",
    "waiting_since_desc": "(c.waiting_since IS NULL), c.waiting_since DESC, c.id DESC",
}


class ConversationFilter(Struct, kw_only=True):
    """Validated list parameters; ``status`` None means every status."""

    status: str | None = "open"
    assignee_type: str = "all"
    inbox_id: int | None = None
    team_id: int | None = None
    labels: list[str] = []
    q: str | None = None
    source_id: str | None = None
    conversation_type: str | None = None
    updated_within: float | None = None
    sort_by: str = "last_activity_at_desc"
    page: int = 1


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(
    account_id: int, inbox_ids: tuple[int, ...], viewer_id: int, f: ConversationFilter, now: float
) -> tuple[str, list[object]]:
    """The filters the counts are computed over (everything but ``assignee_type``)."""
    if not inbox_ids:
        return "1 = 0", []
    clauses = ["c.account_id = ?", f"c.inbox_id IN ({_marks(len(inbox_ids))})"]
    params: list[object] = [account_id, *inbox_ids]
    if f.q:
        clauses.append(
            "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
            f"AND m.message_type IN ({p.MESSAGE_TYPE_INCOMING}, {p.MESSAGE_TYPE_OUTGOING}) "
            "AND LOWER(m.content) LIKE ? ESCAPE '\\')"
        )
        params.append(_like(f.q))
    elif f.status is not None:
        clauses.append("c.status = ?")
        params.append(f.status)
    if f.inbox_id is not None:
        clauses.append("c.inbox_id = ?")
        params.append(f.inbox_id)
    if f.team_id is not None:
        clauses.append("c.team_id = ?")
        params.append(f.team_id)
    if f.labels:
        clauses.append(
            "EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = c.id "
            f"AND l.label IN ({_marks(len(f.labels))}))"
        )
        params += f.labels
    if f.source_id:
        clauses.append("c.contact_inbox_id IN (SELECT id FROM contact_inboxes WHERE source_id = ?)")
        params.append(f.source_id)
    if f.conversation_type == "unattended":
        clauses.append("(c.first_reply_created_at IS NULL OR c.waiting_since IS NOT NULL)")
    elif f.conversation_type == "participating":
        clauses.append(
            "(c.assignee_id = ? OR EXISTS (SELECT 1 FROM messages m WHERE "
            "m.conversation_id = c.id AND m.sender_type = 'User' AND m.sender_id = ?))"
        )
        params += [viewer_id, viewer_id]
    elif f.conversation_type == "mention":
        clauses.append("1 = 0")  # mentions are not implemented: nobody is ever mentioned
    if f.updated_within is not None:
        clauses.append("c.updated_at >= ?")
        params.append(now - f.updated_within)
    return " AND ".join(clauses), params


def counts(
    account_id: int, inbox_ids: tuple[int, ...], viewer_id: int, f: ConversationFilter, now: float
) -> Op[p.ConversationCounts]:
    where, params = _where(account_id, inbox_ids, viewer_id, f, now)
    row = yield from one(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.assignee_id = ? THEN 1 ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN c.assignee_id IS NULL THEN 1 ELSE 0 END), 0) "
        f"FROM conversations c WHERE {where}",
        viewer_id, *params,
    )  # fmt: skip
    total, mine, unassigned = (int(v) for v in row) if row else (0, 0, 0)
    return p.ConversationCounts(
        mine_count=mine, assigned_count=total - unassigned, unassigned_count=unassigned,
        all_count=total,
    )  # fmt: skip


def list_conversations(
    account_id: int,
    inbox_ids: tuple[int, ...],
    viewer_id: int,
    f: ConversationFilter,
    now: float,
) -> Op[ConversationPage]:
    counted = yield from counts(account_id, inbox_ids, viewer_id, f, now)
    where, params = _where(account_id, inbox_ids, viewer_id, f, now)
    if f.assignee_type == "me":
        where += " AND c.assignee_id = ?"
        params.append(viewer_id)
    elif f.assignee_type == "unassigned":
        where += " AND c.assignee_id IS NULL"
    elif f.assignee_type == "assigned":
        where += " AND c.assignee_id IS NOT NULL"
    order = SORTS.get(f.sort_by, SORTS["last_activity_at_desc"])
    columns = ", ".join("c." + name for name in Conversation.COLUMNS.split(", "))
    sql = f"SELECT {columns} FROM conversations c WHERE {where} ORDER BY {order}"
    if f.updated_within is None:  # as Chatwoot: updated_within returns everything at once
        sql += f" LIMIT {PAGE_SIZE} OFFSET {(max(f.page, 1) - 1) * PAGE_SIZE}"
    result = yield from rows(sql, *params)
    return ConversationPage(
        counts=counted, conversations=[Conversation.from_row(r) for r in result]
    )


# -- create -------------------------------------------------------------------------------


class Target(Struct, kw_only=True):
    """Where a new conversation goes: the inbox, the contact, and the session if one was
    named by ``source_id`` alone."""

    inbox: Inbox
    contact_id: int
    session: ContactInbox | None = None


def resolve_target(
    account_id: int, inbox_id: int | None, contact_id: int | None, source_id: str | None
) -> Op[Target]:
    """Chatwoot's lookup (§3.1.4): with ``inbox_id`` and ``contact_id`` a session is found or
    made later; otherwise ``source_id`` must name an existing session (of this account)."""
    if inbox_id is not None and contact_id is not None:
        row = yield from one(
            f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ? AND account_id = ?",
            inbox_id, account_id,
        )  # fmt: skip
        if row is None:
            raise NotFound("inbox")
        inbox = Inbox.from_row(row)
        found = yield from scalar(
            "SELECT id FROM contacts WHERE id = ? AND account_id = ?", contact_id, account_id
        )
        if found is None:
            raise NotFound("contact")
        return Target(inbox=inbox, contact_id=contact_id)
    if not source_id:
        raise NotFound("contact inbox")
    columns = ", ".join("ci." + name for name in ContactInbox.COLUMNS.split(", "))
    where = "ci.source_id = ? AND i.account_id = ?"
    params: list[object] = [source_id, account_id]
    if inbox_id is not None:
        where += " AND ci.inbox_id = ?"
        params.append(inbox_id)
    row = yield from one(
        f"SELECT {columns} FROM contact_inboxes ci JOIN inboxes i ON i.id = ci.inbox_id "
        f"WHERE {where} ORDER BY ci.id LIMIT 1",
        *params,
    )
    if row is None:
        raise NotFound("contact inbox")
    session = ContactInbox.from_row(row)
    inbox_row = yield from one(
        f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", session.inbox_id
    )
    assert inbox_row is not None
    return Target(inbox=Inbox.from_row(inbox_row), contact_id=session.contact_id, session=session)


class NewConversation(Struct, kw_only=True):
    target: Target
    source_id: str | None = None
    hmac_verified: bool = False
    status: str = "open"
    assignee_id: int | None = None
    team_id: int | None = None
    snoozed_until: float | None = None
    custom_attributes: dict[str, Any] = {}
    additional_attributes: dict[str, Any] = {}
    message: NewAgentMessage | None = None


class ConversationPage(Struct, kw_only=True):
    counts: p.ConversationCounts
    conversations: list[Conversation]


class AgentConversationResult(Struct, kw_only=True):
    """The conversation as opened (its view is rendered by the service, in the same
    transaction)."""

    conversation: Conversation
    events: list[LoggedEvent] = []


def _session(new: NewConversation, now: float) -> Op[ContactInbox]:
    """The target's session, or the contact's session with ``source_id`` in the inbox, made if
    needed (a generated UUID without ``source_id``)."""
    target = new.target
    if target.session is not None:
        return target.session
    if new.source_id:
        row = yield from one(
            f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE inbox_id = ? "
            "AND source_id = ?",
            target.inbox.id, new.source_id,
        )  # fmt: skip
        if row is not None:
            existing = ContactInbox.from_row(row)
            if existing.contact_id != target.contact_id:
                raise Duplicate("source_id should be unique")
            return existing
    row = yield from one(
        "INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, pubsub_token, "
        "hmac_verified, created_at, updated_at) VALUES (?,?,?,?,?,?,?) "
        f"RETURNING {ContactInbox.COLUMNS}",
        target.contact_id, target.inbox.id, new.source_id or uuid4(), secure_token(),
        new.hmac_verified, now, now,
    )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row)


def create(
    new: NewConversation,
    performer: Performer,
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[AgentConversationResult]:
    """An agent's new conversation (with its first message, if given)."""
    inbox = new.target.inbox  # one of the caller's account (resolve_target)
    session = yield from _session(new, now)
    opening = Opening(
        status=new.status, assignee_id=new.assignee_id, team_id=new.team_id,
        snoozed_until=new.snoozed_until, custom_attributes=new.custom_attributes,
        additional_attributes=new.additional_attributes,
    )  # fmt: skip
    opened = yield from open_conversation(inbox, session, opening, link, now)
    conversation, logged = opened.conversation, opened.events
    if not opened.created:
        return AgentConversationResult(conversation=conversation)
    if new.message is not None:
        added = yield from add_message(
            conversation, new.message, performer, per_minute_limit, link, now
        )
        conversation = added.conversation
        logged += added.events
    return AgentConversationResult(conversation=conversation, events=logged)


def find_conversation(account_id: int, display_id: int) -> Op[Conversation]:
    """A conversation by its per-account display id (what agent API URLs carry)."""
    row = yield from one(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE account_id = ? "
        "AND display_id = ?",
        account_id, display_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("conversation")
    return Conversation.from_row(row)
