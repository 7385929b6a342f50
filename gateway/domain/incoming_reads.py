"""What a customer's new message reads before it is written: everything, in one statement.

:func:`incoming_context` reads the conversation, its session, the sender, an earlier message
with the same ``echo_id``, the flood guard's count, the unread count, whether the inbox has an
active bot and any webhook receiver, the account's and inbox's names and (PostgreSQL) the new
message's id and the conversation row's version; :func:`reached_context` the same for the
conversation a session reaches, found in the same statement. Used by the message operation
(:mod:`.incoming`) and by its batched form in SQLite's writer (:mod:`.incoming_batch`).
"""

from __future__ import annotations

from typing import NamedTuple

from msgspec import Struct

from client_sdk import protocol as p

from ..store.records import Contact, ContactInbox, Conversation
from ..store.sql import Op, Row, one, prefixed, rows, width
from . import events, notify
from .agent_bots import ACTIVE
from .conversations import MEMBER_IDS, reached_ids
from .errors import NotFound
from .message_reads import UNREAD_CAP
from .messages import FLOOD_WINDOW
from .webhooks import ANY_RECEIVER

_CONVERSATION_WIDTH = width(Conversation.COLUMNS)
_SESSION_WIDTH = width(ContactInbox.COLUMNS)
_CONTACT_WIDTH = width(Contact.COLUMNS)
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
# PostgreSQL: what a payload shows that the conversation's row does not hold, as one string:
# the versions (xmin) of the sender's and the session's rows, and a digest of the names, of
# whether any webhook receiver listens and of the contact's verified sessions. Read with the
# context and checked again by the batch's write (``incoming_batch``), which remembers a
# conversation's context from one batch to the next: a contact blocked or renamed, a session
# verified, a receiver added, on any node, makes the remembered context stale, and the write
# then writes nothing. (Over ``c``, ``ci``, ``ct``, ``a`` and ``i`` as the context joins them.)
PREMISE = (
    "CAST(ct.xmin AS TEXT) || '/' || CAST(ci.xmin AS TEXT) || '/' || md5(concat_ws('|', "
    f"a.name, i.name, CAST({ANY_RECEIVER} AS TEXT), COALESCE(CASE WHEN ci.hmac_verified THEN "
    "(SELECT string_agg(CAST(s.id AS TEXT), ',' ORDER BY s.id) FROM contact_inboxes s "
    "WHERE s.contact_id = c.contact_id AND s.hmac_verified = TRUE) END, '-')))"
)
# PostgreSQL also reads the new message's id and the conversation row's version (xmin: the
# transaction that wrote it, new with every UPDATE of the row, whatever the values); the
# batch's read, which remembers what it read, the premise of the rest too (45 us a read: not
# for a message alone, whose write follows its read at once).
_CONTEXT_POSTGRES = _CONTEXT.format(
    list_of="string_agg",
    next_id=", nextval(pg_get_serial_sequence('messages', 'id')), CAST(c.xmin AS TEXT)",
)
_CONTEXT_GUARDED = _CONTEXT.format(
    list_of="string_agg",
    next_id=", nextval(pg_get_serial_sequence('messages', 'id')), CAST(c.xmin AS TEXT), " + PREMISE,
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


class Reach(NamedTuple):
    """The conversation as the public route addresses it: a session's, by display id."""

    inbox_id: int
    account_id: int
    source_id: str
    display_id: int


class IncomingContext(Struct, kw_only=True, gc=False):  # untracked: records, counts
    conversation: Conversation
    echo_message_id: int | None
    recent: int  # messages of the last minute, at most the flood guard's limit
    bot_active: bool
    known: notify.Known  # unread: before the new message
    next_id: int | None  # PostgreSQL: the new message's id, from the sequence
    version: str | None  # PostgreSQL: the conversation row's xmin as read
    premise: str | None = None  # PostgreSQL, the batch's read: ``PREMISE`` as read


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


def reached_context(
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


# What :func:`contexts` reads for one call: a conversation by ``(conversation id, contact
# id)`` or by a session's reach, with the call's echo_id, flood limit and time.
Wanted = tuple[Reach | tuple[int, int], str | None, int, float]


class Ahead(NamedTuple):
    """What :func:`contexts` read: each call's context (None: nothing found), and the ids it
    took from the sequences for the messages and events to come, ascending."""

    contexts: list[IncomingContext | None]
    message_ids: list[int]
    event_ids: list[int]


def contexts(wanted: list[Wanted], allocate: int) -> Op[Ahead]:
    """PostgreSQL: the contexts of several calls, in one statement per kind of call (by ids,
    by reach): the one-statement read run for each row of the calls' parameters (``unnest``,
    ``LATERAL``), in order; None where the read found nothing (the call's own read then tells
    which 404 it is). The first statement also takes ``allocate`` ids from each of the
    messages' and events' sequences (none when it found nothing)."""
    ahead = Ahead([None] * len(wanted), [], [])
    for by_reach, sql in ((False, _CONTEXTS), (True, _CONTEXTS_REACHED)):
        mine = [i for i, w in enumerate(wanted) if isinstance(w[0], Reach) == by_reach]
        if not mine:
            continue
        columns: list[list[object]] = [list(mine)]
        for i in mine:
            target, echo_id, limit, now = wanted[i]
            since, cap = now - FLOOD_WINDOW, max(0, limit)
            if isinstance(target, Reach):
                values: tuple[object, ...] = (
                    target.account_id, target.display_id, target.inbox_id, target.source_id,
                    echo_id, since, cap,
                )  # fmt: skip
            else:
                values = (echo_id, since, cap, target[1], target[0])
            if len(columns) == 1:
                columns += [[] for _ in values]
            for column, value in zip(columns[1:], values, strict=True):
                column.append(value)
        found = yield from rows(sql, allocate, allocate, *columns)
        allocate = 0
        for row in found:
            ahead.contexts[row[0]] = _context_of(row[3:])
        if found:
            ahead.message_ids.extend(sorted(found[0][1]))
            ahead.event_ids.extend(sorted(found[0][2]))
    return ahead


def _lateral(sql: str, types: list[str]) -> str:
    """``sql`` (one read, its parameters ``types``) run for each row of arrays of them: its
    parameters become the columns of the arrays' ``unnest``, the first array numbering the
    rows. Before them, two counts of ids to take from the messages' and events' sequences,
    returned (as arrays) in every row."""
    if sql.count("?") != len(types):
        raise RuntimeError("incoming: a read's parameters are not the ones _lateral was given")
    parts = sql.split("?")
    body = parts[0] + "".join(f"w.p{k}{part}" for k, part in enumerate(parts[1:]))
    # Each array behind a sub-select: the planner then estimates a custom plan as it does the
    # generic one, and keeps the generic plan after its first five runs. Seeing the arrays,
    # it found every custom plan cheaper and planned this statement afresh for each batch
    # (about 2 ms of the database's CPU a batch; 9-24% of its CPU per message).
    arrays = ", ".join(f"(SELECT CAST(? AS {t}[]))" for t in ["INTEGER", *types])
    names = ", ".join(["nth", *(f"p{k}" for k in range(len(types)))])
    return (
        f"WITH ids AS (SELECT {TAKE_IDS.format(table='messages')} AS m, "
        f"{TAKE_IDS.format(table='events')} AS e) "
        f"SELECT w.nth, ids.m, ids.e, x.* FROM ids CROSS JOIN unnest({arrays}) AS w ({names}) "
        f"CROSS JOIN LATERAL ({body}) AS x"
    )


# ``n`` ids from a table's sequence, as an array. The sequence is looked up once (OFFSET 0
# keeps the planner from evaluating the lookup again for each id: 12 µs each).
TAKE_IDS = (
    "ARRAY(SELECT nextval(s.id) FROM (SELECT CAST(pg_get_serial_sequence('{table}', 'id') "
    "AS REGCLASS) AS id OFFSET 0) AS s, generate_series(1, CAST(? AS INTEGER)))"
)
_BIGINT, _TEXT, _TIME = "BIGINT", "TEXT", "DOUBLE PRECISION"
_CONTEXTS = _lateral(_CONTEXT_GUARDED, [_TEXT, _TIME, _BIGINT, _BIGINT, _BIGINT])
_CONTEXTS_REACHED = _lateral(
    _reaching(_CONTEXT_GUARDED), [_BIGINT, _BIGINT, _BIGINT, _TEXT, _TEXT, _TIME, _BIGINT]
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
    next_id, version, premise = (*postgres_only, None, None, None)[:3]
    known = notify.Known(
        session=session, contact=contact, unread=int(unread), account_name=account_name or "",
        inbox_name=inbox_name or "", hooks=bool(hooks),
        contact_streams=events.verified_streams(session, verified),
    )  # fmt: skip
    return IncomingContext(
        conversation=conversation, echo_message_id=echo, recent=int(recent),
        bot_active=bool(bot), known=known, next_id=None if next_id is None else int(next_id),
        version=version, premise=premise,
    )  # fmt: skip
