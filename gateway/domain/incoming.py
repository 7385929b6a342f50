"""A customer's new message: the gateway's hot path, in as few statements as each engine allows.

One statement reads everything the message needs to know (:mod:`.incoming_reads`); payloads
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

On PostgreSQL this operation serves a message that comes alone to a conversation the node
does not remember, and the calls the batch leaves to it: its read and its one statement cost
the database less than the batch's read and write of one message (0.28 + 0.50 ms against
0.43 + 1.0 ms, new conversations one after another). A message to a conversation the node
remembers (``incoming_batch``: written by a batch before) is a batch of one instead: ONE
statement, the write, guarded by the versions of what its payload shows. (Measured earlier
and not kept: the read inside that same statement, for when a guard fails. It cost the
database what the read and the write cost together, 1.14-1.52 ms against 1.16-1.57: a
statement's cost there follows the size of its plan, every node set up for each run, taken
or not. Leaving the read out is what saves it.)
"""

from __future__ import annotations

import msgspec

from client_sdk import protocol as p

from ..store.base import Conflict
from ..store.records import Conversation, LoggedEvent, Message
from ..store.sql import (
    Op,
    atomic,
    dialect,
    lazy_transaction,
    one,
    outside_transaction,
    prefixed,
    rows,
    width,
)
from ..views import public as presenters
from . import events, notify
from .agent_bots import reopened_with
from .conversations import reached_ids
from .errors import Flooded
from .incoming_batch import Incoming, takes
from .incoming_reads import IncomingContext, Reach, incoming_context, reached_context
from .message_reads import UNREAD_CAP
from .messages import (
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

_MESSAGE_WIDTH = width(Message.COLUMNS)

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


# Batched: SQLite's writer runs the calls queued together as one (:mod:`.incoming_batch`), and
# PostgreSQL runs a node's messages one after another in the batch's turn (``sql.turn_of``),
# those that queued meanwhile as one batch: racing for a conversation's row, all but one would
# fail the one statement's version check and run again locked.
@takes(Incoming)
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
            context = yield from reached_context(reach, echo_id, per_minute_limit, now, postgres)
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
