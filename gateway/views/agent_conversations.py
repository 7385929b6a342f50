"""Loading what the agent API's conversation and message views need: a page of conversations
costs a fixed number of queries, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable

from client_sdk import protocol as p

from ..domain.assignees import account_user
from ..domain.message_reads import UNREAD_CAP, hydrate
from ..domain.models import MessagePage
from ..store.records import Contact, ContactInbox, Conversation, Inbox, Message, Team, User
from ..store.sql import Op, rows
from . import agent as ap
from . import public as presenters
from .messages import senders_of


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _ids(values: Iterable[int | None]) -> list[int]:
    return sorted({v for v in values if v is not None})


def load_agent_senders(messages: list[Message]) -> Op[ap.AgentSenders]:
    """Senders as the agent API shows them (a user with their e-mail and avatar)."""
    return (yield from senders_of(messages, ap.agent_user_sender))


def _last_messages(conversation_ids: list[int], where: str = "") -> Op[dict[int, Message]]:
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE id IN (SELECT MAX(id) FROM messages "
        f"WHERE conversation_id IN ({_marks(len(conversation_ids))}) {where} "
        "GROUP BY conversation_id)",
        *conversation_ids,
    )
    found = yield from hydrate([Message.from_row(r) for r in result])
    return {m.conversation_id: m for m in found}


def _unread_counts(conversation_ids: list[int]) -> Op[dict[int, int]]:
    result = yield from rows(
        "SELECT m.conversation_id, COUNT(*) FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id "
        f"WHERE m.conversation_id IN ({_marks(len(conversation_ids))}) AND m.message_type = ? "
        "AND m.created_at > COALESCE(c.agent_last_seen_at, 0) GROUP BY m.conversation_id",
        *conversation_ids, p.MESSAGE_TYPE_INCOMING,
    )  # fmt: skip
    return {int(r[0]): min(int(r[1]), UNREAD_CAP) for r in result}


def _can_reply(conversations: list[Conversation], now: float) -> Op[dict[int, bool]]:
    """An API inbox with a reply window only lets agents answer within that many hours of the
    customer's last message (reference agent §2.1)."""
    inbox_ids = _ids(c.inbox_id for c in conversations)
    result = yield from rows(
        f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id IN ({_marks(len(inbox_ids))})", *inbox_ids
    )
    windows = {i.id: i.reply_time_window_hours for i in map(Inbox.from_row, result)}
    limited = [c.id for c in conversations if windows.get(c.inbox_id)]
    last_incoming: dict[int, float] = {}
    if limited:
        found = yield from rows(
            "SELECT conversation_id, MAX(created_at) FROM messages "
            f"WHERE conversation_id IN ({_marks(len(limited))}) AND message_type = ? "
            "GROUP BY conversation_id",
            *limited, p.MESSAGE_TYPE_INCOMING,
        )  # fmt: skip
        last_incoming = {int(r[0]): float(r[1]) for r in found}
    allowed: dict[int, bool] = {}
    for c in conversations:
        hours = windows.get(c.inbox_id)
        last = last_incoming.get(c.id)
        allowed[c.id] = not hours or (last is not None and now - last <= hours * 3600)
    return allowed


def conversation_parts(
    conversations: list[Conversation], viewer_id: int, now: float
) -> Op[dict[int, ap.ConversationParts]]:
    """Everything the full views of ``conversations`` need, keyed by conversation id."""
    if not conversations:
        return {}
    ids = [c.id for c in conversations]
    account_id = conversations[0].account_id
    contact_ids = _ids(c.contact_id for c in conversations)
    result = yield from rows(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE id IN ({_marks(len(contact_ids))})",
        *contact_ids,
    )
    contacts = {c.id: c for c in map(Contact.from_row, result)}
    session_ids = _ids(c.contact_inbox_id for c in conversations)
    result = yield from rows(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes "
        f"WHERE id IN ({_marks(len(session_ids))})",
        *session_ids,
    )
    sessions = {s.id: s for s in map(ContactInbox.from_row, result)}
    assignees: dict[int, tuple[User, str]] = {}
    for user_id in _ids(c.assignee_id for c in conversations):
        found = yield from account_user(account_id, user_id)
        if found is not None:
            assignees[user_id] = found
    teams: dict[int, Team] = {}
    mine: set[int] = set()
    team_ids = _ids(c.team_id for c in conversations)
    if team_ids:
        result = yield from rows(
            f"SELECT {Team.COLUMNS} FROM teams WHERE id IN ({_marks(len(team_ids))})", *team_ids
        )
        teams = {t.id: t for t in map(Team.from_row, result)}
        result = yield from rows(
            f"SELECT team_id FROM team_members WHERE user_id = ? AND team_id IN "
            f"({_marks(len(team_ids))})",
            viewer_id, *team_ids,
        )  # fmt: skip
        mine = {int(r[0]) for r in result}
    last = yield from _last_messages(ids)
    last_real = yield from _last_messages(ids, f"AND message_type <> {p.MESSAGE_TYPE_ACTIVITY}")
    unread = yield from _unread_counts(ids)
    can_reply = yield from _can_reply(conversations, now)
    parts: dict[int, ap.ConversationParts] = {}
    for c in conversations:
        assigned = assignees.get(c.assignee_id) if c.assignee_id is not None else None
        team = teams.get(c.team_id) if c.team_id is not None else None
        parts[c.id] = ap.ConversationParts(
            contact=contacts[c.contact_id],
            session=sessions[c.contact_inbox_id],
            assignee=assigned[0] if assigned else None,
            assignee_role=assigned[1] if assigned else None,
            team=team,
            team_member=team is not None and team.id in mine,
            last=last.get(c.id),
            last_non_activity=last_real.get(c.id),
            unread_count=unread.get(c.id, 0),
            can_reply=can_reply[c.id],
        )
    return parts


def render_conversations(
    conversations: list[Conversation], viewer_id: int, link: presenters.LinkBuilder, now: float
) -> Op[list[p.AgentConversation]]:
    parts = yield from conversation_parts(conversations, viewer_id, now)
    shown: list[Message] = []
    for part in parts.values():
        shown += [m for m in (part.last, part.last_non_activity) if m is not None]
    senders = yield from load_agent_senders(shown)
    return [ap.conversation(c, parts[c.id], senders, link) for c in conversations]


def render_conversation(
    conversation: Conversation, viewer_id: int, link: presenters.LinkBuilder, now: float
) -> Op[p.AgentConversation]:
    views = yield from render_conversations([conversation], viewer_id, link, now)
    return views[0]


def render_messages(
    messages: list[Message], display_id: int, link: presenters.LinkBuilder
) -> Op[list[p.AgentMessage]]:
    """API shapes of already hydrated ``messages``."""
    senders = yield from load_agent_senders(messages)
    return [ap.api_message(m, display_id, senders, link) for m in messages]


def messages_page(
    conversation: Conversation, page: MessagePage, link: presenters.LinkBuilder
) -> Op[p.MessagesResponse]:
    """``GET .../messages``: the page and its ``meta``."""
    payload = yield from render_messages(page.messages, conversation.display_id, link)
    meta = ap.messages_meta(conversation, page.contact, page.assignee)
    return p.MessagesResponse(meta=meta, payload=payload)
