"""Conversations: lookup under Chatwoot's visibility rules, create, resolve (with CSAT), read."""

from __future__ import annotations

from typing import Any, NamedTuple

from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import Contact, ContactInbox, Conversation, Inbox, LoggedEvent, Message
from ..store.sql import Op, dump_json, one, prefixed, rows, scalar, short_read
from ..views import public as presenters
from . import notify
from .agent_bots import initial_status
from .assignees import hydrate_conversation
from .contacts import CONTACT_WIDTH, SESSION_AND_CONTACT, SESSION_WIDTH, SESSIONS_WITH_CONTACT
from .errors import NotFound
from .message_reads import hydrate
from .messages import get_conversation, insert_message
from .tokens import uuid4

CSAT_DEFAULT_MESSAGE = "Please rate the conversation"
CSAT_NOT_SENT = "CSAT survey not sent due to outgoing message restrictions"


class Ids(NamedTuple):
    """What a session reaches, by id: its contact, and one conversation (:func:`reached_ids`)."""

    contact_id: int
    conversation_id: int


_VISIBLE_TO_SESSION = (
    "CASE WHEN ci.hmac_verified THEN c.contact_id = ci.contact_id "
    "ELSE c.contact_inbox_id = ci.id END"
)
_MEMBER = (
    f"SELECT {SESSION_AND_CONTACT}, {prefixed(Conversation.COLUMNS, 'c')} "
    f"FROM {SESSIONS_WITH_CONTACT} LEFT JOIN conversations c "
    f"ON c.account_id = ? AND c.display_id = ? AND {_VISIBLE_TO_SESSION} "
    "WHERE ci.inbox_id = ? AND ci.source_id = ?"
)


# The session's contact and the conversation it reaches (NULL: none), also read by PostgreSQL's
# message create inside its one read (``incoming.create_reached``): one rule, one text.
MEMBER_IDS = (
    f"SELECT ci.contact_id, c.id FROM {SESSIONS_WITH_CONTACT} LEFT JOIN conversations c "
    f"ON c.account_id = ? AND c.display_id = ? AND {_VISIBLE_TO_SESSION} "
    "WHERE ci.inbox_id = ? AND ci.source_id = ?"
)


@short_read
def reached_ids(inbox_id: int, account_id: int, source_id: str, display_id: int) -> Op[Ids]:
    """:func:`reached` for a route that needs only the ids (contact, conversation): the same
    rule and the same errors, without reading the three records (a write that follows reads
    what it needs in its own transaction)."""
    row = yield from one(MEMBER_IDS, account_id, display_id, inbox_id, source_id)
    if row is None:
        raise NotFound("contact")
    if row[1] is None:
        raise NotFound("conversation")
    return Ids(contact_id=row[0], conversation_id=row[1])


@short_read
def member(
    inbox_id: int, account_id: int, source_id: str, display_id: int
) -> Op[tuple[ContactInbox, Contact, Conversation | None] | None]:
    """The session with ``source_id`` in the inbox, its contact, and its conversation
    ``display_id`` (None when the session does not reach it: :func:`conversation_for_session`'s
    rule), in one statement; None without such a session."""
    row = yield from one(_MEMBER, account_id, display_id, inbox_id, source_id)
    if row is None:
        return None
    at = SESSION_WIDTH + CONTACT_WIDTH
    conversation = Conversation.from_row(row[at:]) if row[at] is not None else None
    return ContactInbox.from_row(row), Contact.from_row(row[SESSION_WIDTH:]), conversation


@short_read
def reached(
    inbox_id: int, account_id: int, source_id: str, display_id: int
) -> Op[tuple[ContactInbox, Contact, Conversation]]:
    """:func:`member`, for a route that needs all three: NotFound for a missing session
    ("contact"), then for a conversation it does not reach ("conversation")."""
    found = yield from member(inbox_id, account_id, source_id, display_id)
    if found is None:
        raise NotFound("contact")
    session, contact, conversation = found
    if conversation is None:
        raise NotFound("conversation")
    return session, contact, conversation


@short_read
def conversation_for_session(session: ContactInbox, display_id: int) -> Op[Conversation]:
    """Conversation member routes: a verified session sees all the contact's conversations,
    an unverified one only its own (§3 lookup chain)."""
    if session.hmac_verified:
        where, key = "contact_id = ?", session.contact_id
    else:
        where, key = "contact_inbox_id = ?", session.id
    row = yield from one(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE {where} AND display_id = ?",
        key, display_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("conversation")
    return Conversation.from_row(row)


def conversation_by_uuid(uuid: str) -> Op[Conversation | None]:
    row = yield from one(f"SELECT {Conversation.COLUMNS} FROM conversations WHERE uuid = ?", uuid)
    return Conversation.from_row(row) if row else None


def session_conversations(session: ContactInbox) -> Op[list[Conversation]]:
    """Every conversation the session reaches: its own, or (HMAC-verified) its contact's."""
    if session.hmac_verified:
        where, key = "contact_id = ?", session.contact_id
    else:
        where, key = "contact_inbox_id = ?", session.id
    result = yield from rows(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE {where} ORDER BY id", key
    )
    return [Conversation.from_row(r) for r in result]


class ConversationResult(Struct, kw_only=True):
    """A conversation as written (the service renders its view in the same transaction)."""

    conversation: Conversation
    events: list[LoggedEvent] = []


class Opening(Struct, kw_only=True):
    """What a new conversation starts with. A customer gives custom attributes only; an agent
    may ask for a status (a bot or a blocked contact overrules it), an assignee, a team."""

    status: str = "open"
    assignee_id: int | None = None
    team_id: int | None = None
    snoozed_until: float | None = None
    custom_attributes: dict[str, Any] = {}
    additional_attributes: dict[str, Any] = {}


class Opened(Struct, kw_only=True):
    conversation: Conversation
    created: bool
    events: list[LoggedEvent] = []


def open_conversation(
    inbox: Inbox, session: ContactInbox, opening: Opening, link: presenters.LinkBuilder, now: float
) -> Op[Opened]:
    """A new conversation of ``session`` in ``inbox``, whoever asks (the customer or an
    agent): in an inbox locked to one conversation, the session's latest instead. Logs
    ``conversation.created`` (and the assignment and team events an agent's opening makes)."""
    if inbox.lock_to_single_conversation:
        row = yield from one(
            f"SELECT {Conversation.COLUMNS} FROM conversations WHERE contact_inbox_id = ? "
            "ORDER BY id DESC LIMIT 1",
            session.id,
        )
        if row is not None:
            return Opened(conversation=Conversation.from_row(row), created=False)
    blocked = yield from scalar("SELECT blocked FROM contacts WHERE id = ?", session.contact_id)
    status = yield from initial_status(inbox.id, bool(blocked), opening.status)
    display_id = yield from scalar(
        "UPDATE accounts SET last_display_id = last_display_id + 1 WHERE id = ? "
        "RETURNING last_display_id",
        inbox.account_id,
    )
    row = yield from one(
        "INSERT INTO conversations (account_id, inbox_id, contact_id, contact_inbox_id, "
        "display_id, uuid, status, assignee_id, team_id, snoozed_until, last_activity_at, "
        "waiting_since, custom_attributes, additional_attributes, created_at, updated_at) "
        f"VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING {Conversation.COLUMNS}",
        inbox.account_id, inbox.id, session.contact_id, session.id, display_id, uuid4(), status,
        opening.assignee_id, opening.team_id,
        opening.snoozed_until if status == "snoozed" else None, now, now,
        dump_json(opening.custom_attributes), dump_json(opening.additional_attributes), now, now,
    )  # fmt: skip
    assert row is not None
    conversation = yield from hydrate_conversation(Conversation.from_row(row))
    logged = yield from notify.emit_conversation("conversation.created", conversation, link, now)
    # Assignments reach the agents only.
    if conversation.assignee_id is not None:
        logged += yield from notify.emit_conversation(
            "assignee.changed", conversation, link, now, to_contact=False
        )
    if conversation.team_id is not None:
        logged += yield from notify.emit_conversation(
            "team.changed", conversation, link, now, to_contact=False
        )
    return Opened(conversation=conversation, created=True, events=logged)


def create(
    inbox: Inbox,
    session: ContactInbox,
    custom_attributes: dict[str, Any],
    link: presenters.LinkBuilder,
    now: float,
) -> Op[ConversationResult]:
    """A customer's new conversation."""
    opening = Opening(custom_attributes=custom_attributes)
    opened = yield from open_conversation(inbox, session, opening, link, now)
    return ConversationResult(conversation=opened.conversation, events=opened.events)


def _can_reply(conversation: Conversation, inbox: Inbox, now: float) -> Op[bool]:
    if not inbox.reply_time_window_hours:
        return True
    last_incoming = yield from scalar(
        "SELECT MAX(created_at) FROM messages WHERE conversation_id = ? AND message_type = ?",
        conversation.id, p.MESSAGE_TYPE_INCOMING,
    )  # fmt: skip
    if last_incoming is None:
        return False
    return bool(now - float(last_incoming) <= inbox.reply_time_window_hours * 3600)


def send_csat(
    conversation: Conversation, inbox: Inbox, link: presenters.LinkBuilder, now: float
) -> Op[list[LoggedEvent]]:
    """One survey per conversation, ever (§5)."""
    if not inbox.csat_survey_enabled:
        return []
    existing = yield from scalar(
        "SELECT id FROM messages WHERE conversation_id = ? AND content_type = 'input_csat' LIMIT 1",
        conversation.id,
    )
    if existing is not None:
        return []
    allowed = yield from _can_reply(conversation, inbox, now)
    if allowed:
        message = yield from insert_message(
            conversation, content=inbox.csat_message or CSAT_DEFAULT_MESSAGE,
            message_type=p.MESSAGE_TYPE_TEMPLATE, content_type="input_csat",
            content_attributes={"display_type": inbox.csat_display_type or "emoji"}, now=now,
        )  # fmt: skip
    else:
        message = yield from insert_message(
            conversation, content=CSAT_NOT_SENT, message_type=p.MESSAGE_TYPE_ACTIVITY, now=now
        )
    return (yield from notify.emit_message("message.created", message, conversation, link, now))


def resolve(
    conversation_id: int, link: presenters.LinkBuilder, now: float
) -> Op[ConversationResult]:
    """The contact resolves (§3.8). Already resolved: nothing changes. There is no reopen here;
    the contact's next message reopens."""
    conversation = yield from get_conversation(conversation_id)
    logged: list[LoggedEvent] = []
    if conversation.status != "resolved":
        row = yield from one(
            "UPDATE conversations SET status = 'resolved', updated_at = ? WHERE id = ? "
            f"RETURNING {Conversation.COLUMNS}",
            now, conversation.id,
        )  # fmt: skip
        assert row is not None
        conversation = Conversation.from_row(row)
        logged += yield from notify.emit_conversation(
            "conversation.status_changed", conversation, link, now
        )
        name = yield from scalar("SELECT name FROM contacts WHERE id = ?", conversation.contact_id)
        activity = yield from insert_message(
            conversation, content=f"Conversation was resolved by {name}",
            message_type=p.MESSAGE_TYPE_ACTIVITY, now=now,
        )  # fmt: skip
        logged += yield from notify.emit_message(
            "message.created", activity, conversation, link, now
        )
        inbox_row = yield from one(
            f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", conversation.inbox_id
        )
        assert inbox_row is not None
        logged += yield from send_csat(conversation, Inbox.from_row(inbox_row), link, now)
    return ConversationResult(conversation=conversation, events=logged)


def update_last_seen(
    conversation_id: int, link: presenters.LinkBuilder, now: float
) -> Op[list[LoggedEvent]]:
    """Read receipt (§3.10): stamp the contact's last seen and mark agent messages read."""
    row = yield from one(
        "UPDATE conversations SET contact_last_seen_at = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {Conversation.COLUMNS}",
        now, now, conversation_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("conversation")
    conversation = Conversation.from_row(row)
    result = yield from rows(
        "UPDATE messages SET status = 'read', updated_at = ? WHERE conversation_id = ? "
        "AND status IN ('sent', 'delivered') AND message_type <> ? AND created_at <= ? "
        f"RETURNING {Message.COLUMNS}",
        now, conversation.id, p.MESSAGE_TYPE_INCOMING, now,
    )  # fmt: skip
    logged: list[LoggedEvent] = []
    read = yield from hydrate([Message.from_row(r) for r in sorted(result, key=lambda r: r[0])])
    for message in read:
        logged += yield from notify.emit_message(
            "message.updated", message, conversation, link, now,
            previous_changes={"status": ["sent", "read"]},
        )  # fmt: skip
    # Agents see that the contact read the conversation; the contact is not told (§6.5).
    logged += yield from notify.emit_conversation(
        "conversation.read", conversation, link, now, to_contact=False
    )
    return logged
