"""A customer's new message: the gateway's hot path, in as few statements as each engine allows.

One statement reads everything the message needs to know (:func:`incoming_context`); payloads
render from what it read, never from a second read. Then:

* SQLite: one statement per row written (message, conversation, the sender's activity),
  returning no more than the message's id (the rest is known), and two for the event log (the
  streams' heads are the writer's, ``sql.NEXT_OFFSETS``), in the writer's group commit;
* PostgreSQL, the common case (no attachment, no reopening, no webhook receiver): ONE
  statement, outside any transaction, writes the message, the conversation, the sender's
  activity and the event log together. Its payload was rendered before it ran (the message id
  comes from the sequence in the read), so the conversation is written only if its row is
  still the version that was read (``xmin``): every writer of the conversation's messages
  updates that row, so nothing the payload shows (unread count included) changed meanwhile.
  A concurrent change makes it write nothing; the operation then raises
  :class:`~gateway.store.base.Conflict` and the store runs it again, this time in a
  transaction from the start (below), where the conversation's row lock orders it;
* PostgreSQL otherwise: a transaction (:func:`~gateway.store.sql.atomic`), the three rows in
  one statement and the log in one more.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec
from msgspec import Struct

from client_sdk import protocol as p

from ..store.base import Conflict
from ..store.records import Contact, ContactInbox, Conversation, LoggedEvent, Message
from ..store.sql import (
    Op,
    Row,
    atomic,
    dialect,
    lazy_transaction,
    one,
    one_at_a_time,
    outside_transaction,
    prefixed,
    rows,
    width,
)
from ..views import public as presenters
from . import events, notify
from .agent_bots import ACTIVE, reopened_with
from .conversations import MEMBER_IDS, reached_ids
from .errors import Flooded, NotFound
from .message_reads import UNREAD_CAP
from .messages import (
    FLOOD_WINDOW,
    INSERT_MESSAGE,
    TOUCH_CONTACT,
    TOUCH_CONVERSATION,
    MessageResult,
    NewAttachment,
    contact_wrote,
    find_echo,
    flood_guard,
    insert_message,
    view_of,
)
from .webhooks import ANY_RECEIVER

_CONVERSATION_WIDTH = width(Conversation.COLUMNS)
_SESSION_WIDTH = width(ContactInbox.COLUMNS)
_CONTACT_WIDTH = width(Contact.COLUMNS)
_MESSAGE_WIDTH = width(Message.COLUMNS)
_UNREAD = (
    "(SELECT COUNT(*) FROM (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
    f"AND m.message_type = {p.MESSAGE_TYPE_INCOMING} "
    f"AND m.created_at > COALESCE(c.agent_last_seen_at, 0) LIMIT {UNREAD_CAP}) AS unread)"
)
# Everything a customer's message needs to know before it is written, in one statement: the
# conversation, its session, the sender, an earlier message with the same echo_id, the flood
# guard's count (capped at its limit), the unread count (capped as shown), whether the inbox
# has an active bot (reopening) and any webhook receiver, the account's and inbox's names;
# on PostgreSQL also the new message's id.
_CONTEXT = (
    f"SELECT {prefixed(Conversation.COLUMNS, 'c')}, {prefixed(ContactInbox.COLUMNS, 'ci')}, "
    f"{prefixed(Contact.COLUMNS, 'ct')}, "
    "(SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.echo_id = ?), "
    "(SELECT COUNT(*) FROM (SELECT 1 FROM messages m WHERE m.conversation_id = c.id "
    f"AND m.created_at > ? LIMIT ?) AS recent), {_UNREAD}, "
    "EXISTS (SELECT 1 FROM agent_bot_inboxes x WHERE x.inbox_id = c.inbox_id "
    f"AND x.status = '{ACTIVE}'), a.name, i.name, {ANY_RECEIVER}, "
    # The contact's verified sessions when this one is verified (its messages go to each:
    # ``events.contact_streams``), as a list of ids in any order ('' for none).
    "CASE WHEN ci.hmac_verified THEN COALESCE((SELECT {list_of}(CAST(v.id AS TEXT), ',') "
    "FROM contact_inboxes v WHERE v.contact_id = c.contact_id AND v.hmac_verified = TRUE), '') "
    "END{next_id} "
    "FROM conversations c JOIN contact_inboxes ci ON ci.id = c.contact_inbox_id "
    "JOIN accounts a ON a.id = c.account_id JOIN inboxes i ON i.id = c.inbox_id "
    "JOIN contacts ct ON ct.id = ? WHERE c.id = ?"
)
_CONTEXT_SQLITE = _CONTEXT.format(list_of="group_concat", next_id="")
# PostgreSQL also reads the new message's id and the conversation row's version (xmin: the
# transaction that wrote it, new with every UPDATE of the row, whatever the values).
_CONTEXT_POSTGRES = _CONTEXT.format(
    list_of="string_agg",
    next_id=", nextval(pg_get_serial_sequence('messages', 'id')), CAST(c.xmin AS TEXT)",
)


def _reaching(context: str) -> str:
    """PostgreSQL's read for the public route: the conversation found by the session's reach
    (``conversations.reached_ids``' rule, the same text) in the same statement, so a widget's
    message costs one read and one write, not a read of its ids first."""
    by_ids, joined = "JOIN contacts ct ON ct.id = ? WHERE c.id = ?", "FROM conversations c JOIN"
    if not context.endswith(by_ids) or context.count(joined) != 1:
        raise RuntimeError("incoming: the context read no longer ends as _reaching expects")
    return (
        f"WITH reach (contact_id, conversation_id) AS ({MEMBER_IDS}) "
        + context[: -len(by_ids)].replace(
            joined, "FROM reach JOIN conversations c ON c.id = reach.conversation_id JOIN"
        )
        + "JOIN contacts ct ON ct.id = reach.contact_id"
    )


_CONTEXT_REACHED = _reaching(_CONTEXT_POSTGRES)
_CONTEXT_REACHED_SQLITE = _reaching(_CONTEXT_SQLITE)

_INSERT_WITH_ID = INSERT_MESSAGE.replace("(account_id,", "(id, account_id,", 1).replace(
    "VALUES (?,", "VALUES (?, ?,", 1
)
# PostgreSQL in a transaction: the message, its conversation and its sender's activity.
_WRITE_ROWS = (
    f"WITH message AS ({_INSERT_WITH_ID} RETURNING {Message.COLUMNS}), "
    f"conversation AS ({TOUCH_CONVERSATION} RETURNING {Conversation.COLUMNS}), "
    f"contact AS ({TOUCH_CONTACT}) "
    f"SELECT {prefixed(Message.COLUMNS, 'message')}, "
    f"{prefixed(Conversation.COLUMNS, 'conversation')} FROM message, conversation"
)
# PostgreSQL without a transaction: everything, if the conversation is still as read. The
# message, the sender's activity and the log are written FROM the updated conversation, so a
# guard that fails writes nothing at all.
_WRITE_ALL = (
    "WITH conversation AS (UPDATE conversations c SET "
    "last_activity_at = CASE WHEN c.last_activity_at < ? THEN ? ELSE c.last_activity_at END, "
    "waiting_since = COALESCE(c.waiting_since, ?), updated_at = ? "
    "WHERE c.id = ? AND CAST(c.xmin AS TEXT) = ? "
    f"RETURNING {prefixed(Conversation.COLUMNS, 'c')}), "
    "message AS (INSERT INTO messages (id, account_id, inbox_id, conversation_id, content, "
    "message_type, content_type, content_attributes, private, status, sender_type, sender_id, "
    "echo_id, source_id, created_at, updated_at) SELECT CAST(? AS BIGINT), account_id, "
    f"inbox_id, id, CAST(? AS TEXT), {p.MESSAGE_TYPE_INCOMING}, 'text', '{{{{}}}}', FALSE, "
    "'sent', "
    "'Contact', CAST(? AS BIGINT), CAST(? AS TEXT), NULL, CAST(? AS DOUBLE PRECISION), "
    "CAST(? AS DOUBLE PRECISION) FROM conversation), "
    f"contact AS ({TOUCH_CONTACT} AND EXISTS (SELECT 1 FROM conversation)), "
    "event AS (INSERT INTO events (name, payload, created_at) SELECT CAST(? AS TEXT), "
    "CAST(? AS BYTEA), CAST(? AS DOUBLE PRECISION) FROM conversation RETURNING id), "
    "heads AS (INSERT INTO streams (name, epoch, last_offset) SELECT v.name, v.epoch, 1 "
    "FROM (VALUES {heads}) AS v (name, epoch), conversation "
    "ON CONFLICT (name) DO UPDATE SET last_offset = streams.last_offset + 1 "
    "RETURNING name, epoch, last_offset), "
    "entries AS (INSERT INTO stream_entries (stream, stream_offset, event_id, created_at) "
    "SELECT heads.name, heads.last_offset, event.id, CAST(? AS DOUBLE PRECISION) "
    "FROM heads, event) "
    f"SELECT heads.name, heads.epoch, heads.last_offset, {prefixed(Conversation.COLUMNS, 'c')} "
    "FROM heads, conversation c"
)


class Reach(NamedTuple):
    """The conversation as the public route addresses it: a session's, by display id."""

    inbox_id: int
    account_id: int
    source_id: str
    display_id: int


class IncomingContext(Struct, kw_only=True):
    conversation: Conversation
    echo_message_id: int | None
    recent: int  # messages of the last minute, at most the flood guard's limit
    bot_active: bool
    known: notify.Known  # unread: before the new message
    next_id: int | None  # PostgreSQL: the new message's id, from the sequence
    version: str | None  # PostgreSQL: the conversation row's xmin as read


def incoming_context(
    conversation_id: int,
    contact_id: int,
    echo_id: str | None,
    per_minute_limit: int,
    now: float,
    *,
    postgres: bool = False,
    lock: bool = False,
) -> Op[IncomingContext]:
    """``lock`` (PostgreSQL, in a transaction): lock the conversation's row first, so that
    nothing read about it (the echo, the unread and flood counts) changes before the write:
    every writer of its messages updates that row. (Not FOR UPDATE in the read itself: after
    waiting for the lock, its counts would still come from the snapshot taken before.)"""
    if lock:
        yield from one("SELECT id FROM conversations WHERE id = ? FOR UPDATE", conversation_id)
    row = yield from one(
        _CONTEXT_POSTGRES if postgres else _CONTEXT_SQLITE, echo_id, now - FLOOD_WINDOW,
        max(0, per_minute_limit), contact_id, conversation_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("conversation")
    return _context_of(row)


def _reached_context(
    reach: Reach, echo_id: str | None, per_minute_limit: int, now: float, postgres: bool
) -> Op[IncomingContext]:
    """:func:`incoming_context` of the conversation the session reaches, in the same one
    statement (SQLite, or PostgreSQL outside a transaction); its 404s are those of
    ``reached_ids``."""
    sql = _CONTEXT_REACHED if postgres else _CONTEXT_REACHED_SQLITE
    row = yield from one(
        sql, reach.account_id, reach.display_id, reach.inbox_id, reach.source_id, echo_id,
        now - FLOOD_WINDOW, max(0, per_minute_limit),
    )  # fmt: skip
    if row is not None:
        return _context_of(row)
    # Nothing reached (or gone meanwhile): tell which 404 it is, by the route's own rule.
    ids = yield from reached_ids(*reach)
    return (
        yield from incoming_context(
            ids.conversation_id,
            ids.contact_id,
            echo_id,
            per_minute_limit,
            now,
            postgres=postgres,
        )
    )


def _context_of(row: Row) -> IncomingContext:
    at = _CONVERSATION_WIDTH
    conversation = Conversation.from_row(row[:at])
    session = ContactInbox.from_row(row[at : at + _SESSION_WIDTH])
    at += _SESSION_WIDTH
    contact = Contact.from_row(row[at : at + _CONTACT_WIDTH])
    echo, recent, unread, bot, account_name, inbox_name, hooks, verified, *postgres_only = row[
        at + _CONTACT_WIDTH :
    ]
    next_id, version = postgres_only if postgres_only else (None, None)
    known = notify.Known(
        session=session, contact=contact, unread=int(unread), account_name=account_name or "",
        inbox_name=inbox_name or "", hooks=bool(hooks),
        contact_streams=events.verified_streams(session, verified),
    )  # fmt: skip
    return IncomingContext(
        conversation=conversation, echo_message_id=echo, recent=int(recent),
        bot_active=bool(bot), known=known, next_id=None if next_id is None else int(next_id),
        version=version,
    )  # fmt: skip


def _conversation_key(conversation_id: int, *args: object, **kwargs: object) -> tuple[str, int]:
    return ("conversation", conversation_id)


# One conversation's messages posted together on this node write its row one after another:
# racing, all but one would fail the one statement's version check and run again locked.
@one_at_a_time(_conversation_key)
@lazy_transaction
def create_incoming(
    conversation_id: int,
    contact_id: int,
    content: str | None,
    echo_id: str | None,
    attachments: list[NewAttachment],
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
    *,
    reach: Reach | None = None,
) -> Op[MessageResult]:
    """A customer's message. A repeated ``echo_id`` in the conversation returns the original
    and creates nothing, so a client may retry a send it never saw acknowledged.

    ``reach``: the conversation the session reaches, with ``reached_ids``' 404s (the ids given
    are then unused): SQLite, and PostgreSQL outside a transaction, read it with the context in
    one statement; PostgreSQL in a transaction reads it first (to lock the row it finds)."""
    postgres = (yield from dialect()) == "postgresql"
    # PostgreSQL in a transaction (a re-run after a Conflict) reads the conversation locked.
    locked = postgres and not (yield from outside_transaction())
    if reach is not None and locked:
        ids = yield from reached_ids(*reach)
        conversation_id, contact_id, reach = ids.conversation_id, ids.contact_id, None
    while True:
        if reach is not None:
            context = yield from _reached_context(reach, echo_id, per_minute_limit, now, postgres)
            conversation_id, contact_id = context.conversation.id, context.known.contact.id
            reach = None
        else:
            context = yield from incoming_context(
                conversation_id, contact_id, echo_id, per_minute_limit, now,
                postgres=postgres, lock=locked,
            )  # fmt: skip
        conversation, known = context.conversation, context.known
        if echo_id and context.echo_message_id is not None:
            original = yield from find_echo(conversation.id, echo_id)
            if original is not None:
                if original.sender_type == "Contact" and original.sender_id == known.contact.id:
                    view = presenters.public_message(
                        original, conversation.display_id, known.senders(), link
                    )
                else:
                    view = yield from view_of(original, conversation, link)
                return MessageResult(
                    message=original, conversation=conversation, created=False, view=view
                )
        if per_minute_limit and context.recent >= per_minute_limit:
            retry_after = yield from flood_guard(conversation.id, per_minute_limit, now)
            if retry_after is not None:
                raise Flooded(retry_after)
        reopen = conversation.status in ("resolved", "snoozed") and not known.contact.blocked
        if not postgres or locked:
            break
        if not (attachments or reopen or known.hooks):
            return (yield from _write_all(context, content, contact_id, echo_id, link, now))
        # More than one statement to write: in a transaction, locking the conversation and
        # reading it again, so that what the payloads show is what is written.
        yield from atomic()
        locked = True
    status = conversation.status
    if reopen:
        status = reopened_with(conversation.status, context.bot_active)
    if context.next_id is not None and not attachments:
        touch_conversation = (status, now, now, now, now, reopen, conversation.id)
        touch_contact = (now, contact_id, now)
        row = yield from one(
            _WRITE_ROWS, context.next_id, conversation.account_id, conversation.inbox_id,
            conversation.id, content, p.MESSAGE_TYPE_INCOMING, "text", "{}", False, "sent",
            "Contact", contact_id, echo_id, None, now, now, *touch_conversation, *touch_contact,
        )  # fmt: skip
        assert row is not None
        message = Message.from_row(row)
        conversation = Conversation.from_row(row[_MESSAGE_WIDTH:])
    else:
        message = yield from insert_message(
            conversation, content=content, message_type=p.MESSAGE_TYPE_INCOMING, now=now,
            sender_type="Contact", sender_id=contact_id, echo_id=echo_id,
            attachments=attachments,
        )  # fmt: skip
        conversation = yield from contact_wrote(
            conversation, status, reopen, contact_id, now,
            contact_active_at=known.contact.last_activity_at, current=not postgres,
        )  # fmt: skip
    _count_new_message(known, conversation, now)
    data = notify.known_message_data(message, conversation, link, known)
    known.last_message = data
    logged = yield from notify.emit_message(
        "message.created", message, conversation, link, now, known=known, data=data
    )
    if reopen:
        logged += yield from notify.emit_conversation(
            "conversation.status_changed", conversation, link, now, known=known
        )
    view = presenters.public_message(message, conversation.display_id, known.senders(), link)
    return MessageResult(
        message=message, conversation=conversation, created=True, view=view, events=logged
    )


def _count_new_message(known: notify.Known, conversation: Conversation, now: float) -> None:
    """The new message counts as unread unless an agent has seen past it (clocks of nodes)."""
    if now > (conversation.agent_last_seen_at or 0.0):
        known.unread = min(UNREAD_CAP, known.unread + 1)


def _write_all(
    context: IncomingContext,
    content: str | None,
    contact_id: int,
    echo_id: str | None,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[MessageResult]:
    """PostgreSQL's one statement (see the module's docstring)."""
    read, known = context.conversation, context.known
    assert context.next_id is not None
    last_activity = now if read.last_activity_at < now else read.last_activity_at
    conversation = msgspec.structs.replace(
        read, last_activity_at=last_activity, updated_at=now,
        waiting_since=read.waiting_since if read.waiting_since is not None else now,
    )  # fmt: skip
    message = Message(
        id=context.next_id, account_id=read.account_id, inbox_id=read.inbox_id,
        conversation_id=read.id, content=content, message_type=p.MESSAGE_TYPE_INCOMING,
        content_type="text", content_attributes={}, private=False, status="sent",
        sender_type="Contact", sender_id=contact_id, echo_id=echo_id, source_id=None,
        created_at=now, updated_at=now,
    )  # fmt: skip
    _count_new_message(known, conversation, now)
    data = notify.known_message_data(message, conversation, link, known)
    payload = p.encode(p.Event(event="message.created", data=data))
    streams = [events.inbox_stream(read.inbox_id), *known.contact_streams]
    targets = list(dict.fromkeys(streams))
    found = yield from rows(
        _WRITE_ALL.format(heads=", ".join(["(CAST(? AS TEXT), CAST(? AS TEXT))"] * len(targets))),
        now, now, now, now, read.id, context.version, message.id, content, contact_id, echo_id,
        now, now, now, contact_id, now, "message.created", payload, now,
        *events.new_heads(targets), now,
    )  # fmt: skip
    if not found:
        raise Conflict("the conversation changed since it was read")
    written = Conversation.from_row(found[0][3:])
    at = {r[0]: (r[1], r[2]) for r in found}
    logged = [
        LoggedEvent(
            stream=stream, epoch=at[stream][0], offset=at[stream][1], name="message.created",
            payload=payload, created_at=now,
        )
        for stream in targets
    ]  # fmt: skip
    view = presenters.public_message(message, read.display_id, known.senders(), link)
    return MessageResult(
        message=message, conversation=written, created=True, view=view, events=logged
    )
