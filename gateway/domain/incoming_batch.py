"""Customers' messages written together: SQLite's writer runs the ``create_incoming`` calls
that follow one another in its queue as ONE operation (``sql.batched``).

Alone, a message costs its writer about 80 µs, most of it the fixed cost of its statements
and of the operation around them: a read of its context, an insert per row and an update of
its conversation and its sender. Together, every message is inserted by one statement, every
event and every stream entry by one more, and each conversation and contact is updated once,
with the values the last of its messages leaves; and each conversation's context is read once,
then remembered from batch to batch (``sql.batched``'s memory, which the writer keeps only
while these batches are all that writes), so that a busy conversation is read once, not once
per message (``benchmarks.store_writes``; the POST load of ``benchmarks.http_load``).

The batch keeps, for each conversation it read, the state the calls one after the other would
have read back: the conversation's row as the writes leave it, the unread and flood counts,
and the ``echo_id``s of its messages not yet written (those written, the index answers for).
That state is the truth while nothing else writes (SQLite's one writer; any other operation,
another connection's commit, a rollback: the writer drops it). The messages' rows are written
when the batch ends or before any call it does not take itself. Those calls, and every call
that needs more than the common case (an attachment, an ``echo_id`` seen before, the flood
guard near its limit, a conversation to reopen, a webhook receiver to enqueue for, another
sender, an unknown conversation), run as ``create_incoming`` itself, in their turn: their
outcome is the operation's own, and the batch forgets every state its writes may change.

PostgreSQL runs the same batch for the calls a node queued in the batch's turn
(``sql.turn_of``; a call alone, only when its conversation is remembered: see
:func:`serves_alone`), in as few round trips as it allows: one
statement reads every conversation the batch needs and does not remember, by ids or by reach,
and takes an id from the sequences for each call's message and event (:func:`_read_ahead`);
one more writes everything (:data:`_WRITE_BATCH`), outside any transaction, and only if every
conversation is still the version read or remembered (``xmin``) and the rest of what its
payloads show is still as read (``incoming_reads.PREMISE``: the sender's and the session's
row versions, names, receivers, verified sessions; checked for a state remembered from an
earlier batch, as one just read is as fresh as the read), which stands in for the state
SQLite's one writer knows. The node remembers each conversation's state after its write,
with the versions that write left, and a pool of ids (:class:`_Ids`): the next message to
a remembered conversation is ONE statement, its write. Another node's write to anything the
state holds makes that write write nothing; the store forgets everything and runs the batch
again, reading, and the conversation is read before each write for ``SHARED_SECONDS``.
(``python -m benchmarks.store_writes --drivers postgresql``, against the batch that read
every time, two interleaved pairs: 16 writers 3,905-5,138 -> 7,184-7,276 messages/s, 64
writers 7,330-8,134 -> 9,664-10,726; one writer, each message alone and as its operation,
691-888 -> 743-870.)
It does not ask about an ``echo_id`` the batch has not met: the unique index does. A call
the batch does not take itself runs in a transaction the batch asks for first
(``sql.atomic``), with the messages before it. Run in a transaction from the start (the store
runs a batch so after it lost a race twice), the batch locks the conversations it read, then
reads them again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, ParamSpec, TypeVar

from msgspec import Struct

from client_sdk import protocol as p

from ..store.base import Conflict
from ..store.records import Conversation, LoggedEvent, Message
from ..store.sql import (
    LASTING,
    Call,
    Memory,
    Op,
    OpFactory,
    Outcome,
    atomic,
    batched,
    dialect,
    execute,
    last_rowid,
    one,
    outside_transaction,
    rows,
    scalar,
)
from ..views import public as presenters
from . import events, notify
from .errors import Flooded, NotFound
from .incoming_reads import (
    PREMISE,
    TAKE_IDS,
    IncomingContext,
    Reach,
    Wanted,
    contexts,
    incoming_context,
    reached_context,
)
from .message_reads import UNREAD_CAP
from .messages import INSERT_MESSAGE, TOUCH_CONTACT, MessageResult, NewAttachment, touched

_MESSAGE_VALUES = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
# No RETURNING: SQLite keeps what a statement returns in a temporary table until it ends.
# The ids are told by the engine instead (``sql.last_rowid``; see :func:`_inserted`).
_INSERT_MESSAGES = INSERT_MESSAGE.split(" VALUES ")[0] + " VALUES {rows}"
# Each conversation and contact as its last message leaves it, all in one statement (SQLite's
# UPDATE ... FROM; a VALUES list's columns are column1, column2...). The contact's activity
# moves forward only, as TOUCH_CONTACT moves it.
_CONVERSATIONS_UPDATE = (
    "UPDATE conversations SET status = v.column2, last_activity_at = v.column3, "
    "waiting_since = v.column4, updated_at = v.column5, snoozed_until = v.column6 "
    "FROM (VALUES {rows}) AS v WHERE conversations.id = v.column1"
)
_CONTACTS_UPDATE = (
    "UPDATE contacts SET last_activity_at = v.column2 FROM (VALUES {rows}) AS v "
    "WHERE contacts.id = v.column1 AND (contacts.last_activity_at IS NULL "
    "OR contacts.last_activity_at < v.column2)"
)
# One row: the same update without the VALUES list, which SQLite fills into a temporary table
# (opened, filled, closed) per statement. A message alone in its commit (most are, in a chat):
# 850k writer instructions with the lists, 732k by key (callgrind, POSTs on one connection).
_CONVERSATION_UPDATE = (
    "UPDATE conversations SET status = ?, last_activity_at = ?, waiting_since = ?, "
    "updated_at = ?, snoozed_until = ? WHERE id = ?"
)
_ROWS_PER_UPDATE = 1_000  # (6 parameters a row)
_ECHO = "SELECT id FROM messages WHERE conversation_id = ? AND echo_id = ?"
# SQLite: the echo_ids of a batch's calls to the conversations it remembers, asked at once (a
# VALUES list joined to the unique index: a search per pair, no scan). Asked one by one they
# were a third of the statements' time under 64 writers (6.5 µs each, the statement's fixed
# cost; ``benchmarks.store_writes``); asked at once, 53 µs for a batch of 64, and less than
# one by one from two pairs on (12.8 µs against 16.6).
_ECHOES = (
    "SELECT m.conversation_id, m.echo_id FROM (VALUES {rows}) AS v "
    "JOIN messages AS m ON m.conversation_id = v.column1 AND m.echo_id = v.column2"
)
_PAIRS_PER_SELECT = 1_000  # (2 parameters a pair)
# PostgreSQL: the ids a batch's rows take (messages: those its reads did not take), in one
# statement.
_ALLOCATE = f"SELECT {TAKE_IDS.format(table='messages')}, {TAKE_IDS.format(table='events')}"
# PostgreSQL: the whole batch in ONE statement, as arrays (one parameter a column): each
# conversation as its last message leaves it, only if every one's row is still the version
# read (``xmin``); if one is not, ``ok`` is false and nothing at all is written. Then the
# messages, the contacts' activity (forward
# only, as TOUCH_CONTACT), the events, the streams' heads (each moved on by its count of
# entries, in name order: one order of row locks for every batch) and the entries (a stream's
# nth of c entries at its new head - c + n).
_WRITE_BATCH = (
    "WITH v AS (SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS TEXT[]), "
    "CAST(? AS DOUBLE PRECISION[]), CAST(? AS DOUBLE PRECISION[]), "
    "CAST(? AS DOUBLE PRECISION[]), CAST(? AS DOUBLE PRECISION[]), CAST(? AS TEXT[]), "
    "CAST(? AS BIGINT[]), CAST(? AS TEXT[])) "
    "AS v (id, status, last_activity_at, waiting_since, updated_at, snoozed_until, version, "
    "contact_id, premise)), "
    # Locked, and re-checked after any wait for the lock (READ COMMITTED), before anything
    # is written: the statement writes all or nothing, in a transaction or not. The premise
    # (the sender's and the session's rows, names, receivers) is checked as read, unlocked:
    # as the read and the write of a batch that reads first always were.
    "locked AS (SELECT c.id FROM conversations c JOIN v ON c.id = v.id "
    "JOIN contact_inboxes ci ON ci.id = c.contact_inbox_id "
    "JOIN contacts ct ON ct.id = v.contact_id "
    "JOIN accounts a ON a.id = c.account_id JOIN inboxes i ON i.id = c.inbox_id "
    f"WHERE CAST(c.xmin AS TEXT) = v.version AND (v.premise IS NULL OR {PREMISE} = v.premise) "
    "ORDER BY c.id FOR UPDATE OF c), "
    "ok AS (SELECT COUNT(*) = CAST(? AS BIGINT) AS ok FROM locked), "
    "conversation AS (UPDATE conversations c SET status = v.status, "
    "last_activity_at = v.last_activity_at, waiting_since = v.waiting_since, "
    "updated_at = v.updated_at, snoozed_until = v.snoozed_until FROM v, ok "
    "WHERE ok.ok AND c.id = v.id RETURNING CAST(c.xmin AS TEXT) AS version), "
    "message AS (INSERT INTO messages (id, account_id, inbox_id, conversation_id, content, "
    "message_type, content_type, content_attributes, private, status, sender_type, sender_id, "
    "echo_id, source_id, created_at, updated_at) SELECT m.id, m.account_id, m.inbox_id, "
    f"m.conversation_id, m.content, {p.MESSAGE_TYPE_INCOMING}, 'text', '{{}}', FALSE, 'sent', "
    "'Contact', m.sender_id, m.echo_id, NULL, m.at, m.at "
    "FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), "
    "CAST(? AS BIGINT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[]), "
    "CAST(? AS DOUBLE PRECISION[])) "
    "AS m (id, account_id, inbox_id, conversation_id, content, sender_id, echo_id, at), ok "
    "WHERE ok.ok), "
    "contact AS (UPDATE contacts SET last_activity_at = a.at "
    "FROM unnest(CAST(? AS BIGINT[]), CAST(? AS DOUBLE PRECISION[])) AS a (id, at), ok "
    "WHERE ok.ok AND contacts.id = a.id "
    "AND (contacts.last_activity_at IS NULL OR contacts.last_activity_at < a.at) "
    "RETURNING contacts.id), "
    "event AS (INSERT INTO events (id, name, payload, created_at) "
    "SELECT e.id, 'message.created', e.payload, e.at "
    "FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BYTEA[]), CAST(? AS DOUBLE PRECISION[])) "
    "AS e (id, payload, at), ok WHERE ok.ok), "
    "heads AS (INSERT INTO streams (name, epoch, last_offset) SELECT h.name, h.epoch, h.n "
    "FROM unnest(CAST(? AS TEXT[]), CAST(? AS TEXT[]), CAST(? AS BIGINT[])) "
    "AS h (name, epoch, n), ok WHERE ok.ok ORDER BY h.name "
    "ON CONFLICT (name) DO UPDATE SET last_offset = streams.last_offset + excluded.last_offset "
    "RETURNING name, epoch, last_offset), "
    "entries AS (INSERT INTO stream_entries (stream, stream_offset, event_id, created_at) "
    "SELECT s.stream, heads.last_offset - s.back, s.event_id, s.at "
    "FROM unnest(CAST(? AS TEXT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), "
    "CAST(? AS DOUBLE PRECISION[])) AS s (stream, back, event_id, at) "
    "JOIN heads ON heads.name = s.stream), "
    # Ids for the batches to come (see _Ids), taken after every version this one leaves.
    f"pool AS (SELECT {TAKE_IDS.format(table='messages')} AS m, "
    f"{TAKE_IDS.format(table='events')} AS e) "
    "SELECT ok.ok, heads.name, heads.epoch, heads.last_offset, "
    "(SELECT MIN(version) FROM conversation), ARRAY(SELECT id FROM contact), pool.m, pool.e "
    "FROM ok CROSS JOIN pool LEFT JOIN heads ON TRUE"
)
# PostgreSQL in a transaction: the batch's conversations locked, in one order for every batch.
_LOCK = "SELECT id FROM conversations WHERE id = ANY(CAST(? AS BIGINT[])) ORDER BY id FOR UPDATE"
# Conversations whose states a batch keeps for the next, the oldest forgotten first: about
# 3.5 KB each, so 35 MB at most (the chat workload's server: 143 MiB resident with 2,000 kept,
# 171 MiB with 10,000, after 30,000 messages to 10,000 conversations). A busy inbox has
# many more conversations going at once than are posted to in a moment: each customer posts
# every few seconds, in turn with everyone else, and when more are active than are kept,
# each message finds its state forgotten (first in, first out over a cycle longer than the
# memory: not one hit) and its context is read again, inside the writer's batch, which every
# message queued behind it waits for. The chat workload (10,000 customers in turn, 10 s a
# rate, two interleaved pairs) with 2,000 kept against 10,000: p99 at 2,000 msg/s 27.4 /
# 18.4 ms against 21.5 / 16.5; at 3,000 msg/s 48.3 / 116.8 ms against 30.5 / 34.5 (p50 12.0
# / 14.3 against 8.8 / 9.4); 1,000 msg/s (each conversation's first message of the run) the
# same.
MAX_REMEMBERED = 10_000
# PostgreSQL: ids the write takes for the batches to come when the pool holds fewer than the
# batch wrote (then twice as many, at least POOL): a message alone takes one of POOL, and a
# batch as large as the last one finds its ids in the pool (one short costs a statement).
POOL = 32
# PostgreSQL: how long a conversation that another node wrote while this one remembered it is
# read before each write instead (a write that finds a state stale writes nothing: one
# statement lost), and how many such conversations are kept (the expired are dropped first).
SHARED_SECONDS = 60.0
SHARED_KEPT = 10_000
# Messages per INSERT (15 parameters each): well under SQLite's 32,766 parameters.
_MESSAGES_PER_INSERT = 500


class Incoming(NamedTuple):
    """A call of ``create_incoming`` (or of an operation that runs it), as the batch reads
    it: the conversation by its ids, or by ``reach``."""

    conversation_id: int
    contact_id: int
    content: str | None
    echo_id: str | None
    attachments: list[NewAttachment]
    per_minute_limit: int
    link: presenters.LinkBuilder
    now: float
    reach: Reach | None = None


P = ParamSpec("P")
T = TypeVar("T")
# Each operation the batch takes -> its arguments as an Incoming.
_CALLS: dict[Callable[..., Any], Callable[..., Incoming]] = {}


def takes(as_incoming: Callable[..., Incoming]) -> Callable[[OpFactory[P, T]], OpFactory[P, T]]:
    """Mark an operation that runs ``create_incoming`` (``as_incoming``: its arguments as
    that call's) to be run in :func:`create_incoming_batch` by SQLite's writer."""

    def mark(op: OpFactory[P, T]) -> OpFactory[P, T]:
        _CALLS[op] = as_incoming
        return batched(create_incoming_batch, alone=serves_alone)(op)

    return mark


class _State(Struct, gc=False):
    """One conversation as the batch's calls so far left it.

    Remembered from one batch to the next (up to ``MAX_REMEMBERED``), so out of the
    collector's reach, as what it holds is (records, counts, the payload of the last message).
    With 10,000 customers every message leaves a new one; tracked, a young collection in the
    writer thread (traced in the chat workload at 1,000 msg/s) found 34,000 objects, most of
    them 2,000 states, their empty sets of echo_ids and their payloads, and held the GIL for
    12 ms. Such collections are rare there (two or three in 30 s of load): this is less work
    for them, not the chat workload's tail."""

    context: IncomingContext
    conversation: Conversation
    limit: int  # the flood guard's limit the read counted up to
    recent: int  # as read (capped at the limit), plus the batch's own
    unread: int
    # echo_ids of its messages not yet written; None between batches (a set is always
    # tracked, even empty)
    echoes: set[str] | None = None
    # PostgreSQL: written from before this batch (its premise is checked by the write; one
    # read by this batch is as fresh as the read, and is not)
    remembered: bool = False

    @classmethod
    def read(cls, context: IncomingContext, limit: int) -> _State:
        return cls(context, context.conversation, limit, context.recent, context.known.unread)


class _Taken(NamedTuple):
    """A message the batch checked: its row's values (the id to come) and what it shows."""

    at: int  # the call's place in the batch
    values: tuple[Any, ...]
    message_id: int | None  # PostgreSQL: its id, when the read ahead took one for it
    conversation: Conversation  # as this message leaves it
    unread: int  # as this message leaves it
    state: _State
    link: presenters.LinkBuilder
    now: float


def create_incoming_batch(calls: list[Call], memory: Memory) -> Op[list[Outcome]]:
    """``calls`` of operations marked with this batch, answered as ``create_incoming`` run
    for each, one after the other, would answer them. ``memory`` keeps the conversations'
    states from one batch to the next (SQLite's writer keeps it only while these batches are
    all that writes: see ``sql.batched``), so that a conversation's context is read once
    however many batches its messages come in."""
    postgres = (yield from dialect()) == "postgresql"
    states: dict[int, _State] = memory.setdefault("states", {})  # conversation id -> state
    reached: dict[Reach, int] = memory.setdefault("reached", {})  # a reach -> its conversation
    while len(states) > MAX_REMEMBERED:  # the oldest first (never during a batch: a state
        del states[next(iter(states))]  # with messages not yet written must stay the truth)
    if len(reached) > 2 * MAX_REMEMBERED:  # (a reach whose state is gone is read again)
        reached.clear()
    outcomes: list[Outcome] = [(False, None)] * len(calls)
    taken: list[_Taken] = []
    as_calls = [_CALLS[op](*args, **kwargs) for op, args, kwargs in calls]
    # PostgreSQL reads every conversation the batch needs in one statement, up front (a read
    # is a round trip there); SQLite reads each when its first call comes.
    read: dict[Reach | int, IncomingContext] = {}
    ids = _Ids()
    if postgres:
        shared: dict[int, float] = memory.setdefault(LASTING, {}).setdefault("shared", {})
        _not_shared(as_calls, states, reached, shared)
        read, ids = yield from _read_ahead(as_calls, states, reached, memory)
        if read and not (yield from outside_transaction()):
            # Run again after it lost a race: the conversations it read locked, then read
            # again (a new statement, a new snapshot), so that nothing changes them before
            # its write.
            yield from execute(_LOCK, sorted({c.conversation.id for c in read.values()}))
            read, ids = yield from _read_ahead(as_calls, states, reached, memory)
    echoes = None if postgres else (yield from _echoes_asked(as_calls, states, reached))
    for index, (op, args, kwargs) in enumerate(calls):
        call = as_calls[index]
        try:
            state, fresh = yield from _state(call, states, reached, read, postgres)
        except NotFound as exc:
            outcomes[index] = (False, exc)
            continue
        if state is not None and (yield from _common(call, state, fresh, postgres, echoes)):
            taken.append(_take(index, call, state, ids))
            continue
        # Not the common case: create_incoming itself, after the messages before it, all in
        # one transaction (PostgreSQL runs a batch outside one until it asks: see _write).
        yield from atomic()
        yield from _guarded_write(taken, outcomes, ids, postgres, memory)
        taken = []
        echoes = None  # what it writes, and the messages before it, the index answers for
        states.clear()  # its writes may change what the states hold
        reached.clear()
        read.clear()
        # Its message takes its id now: those taken ahead, lower, would put the messages that
        # follow it before it in their conversation.
        ids.messages.clear()
        ids.events.clear()
        try:
            outcomes[index] = (True, (yield from op(*args, **kwargs)))
        except (NotFound, Flooded) as exc:  # raised before it wrote anything
            outcomes[index] = (False, exc)
    yield from _guarded_write(taken, outcomes, ids, postgres, memory)
    if postgres:
        _forget_unguarded(as_calls, states, reached)
    return outcomes


def _remembered_id(call: Incoming, reached: dict[Reach, int]) -> int | None:
    """The conversation ``call`` writes, as the batch's memory knows it (a session's reach
    the batch has not met: None)."""
    return reached.get(call.reach) if call.reach is not None else call.conversation_id


def serves_alone(call: Call, memory: Memory) -> bool:
    """PostgreSQL, a call that comes alone (``sql.batched``'s ``alone``): True when the batch
    remembers its conversation (it then writes it with one statement, and keeps remembering
    it); else False, the state (if any: shared with another node) forgotten, and the call
    runs as ``create_incoming``. KeyError: an operation the batch does not take."""
    op, args, kwargs = call
    incoming = _CALLS[op](*args, **kwargs)
    states: dict[int, _State] = memory.get("states", {})
    reached: dict[Reach, int] = memory.get("reached", {})
    shared: dict[int, float] = memory.get(LASTING, {}).get("shared", {})
    conversation_id = _remembered_id(incoming, reached)
    if conversation_id is None:
        return False
    state = states.get(conversation_id)
    if state is None:
        return False
    if (
        shared.get(conversation_id, 0.0) > incoming.now
        or state.context.premise is None
        or incoming.attachments
    ):
        del states[conversation_id]
        return False
    return True


def _forget_unguarded(
    calls: list[Incoming], states: dict[int, _State], reached: dict[Reach, int]
) -> None:
    """PostgreSQL: states read by a call's own read (no premise: see
    ``incoming_reads.PREMISE``) served this batch only; the next one reads them again."""
    for call in calls:
        conversation_id = _remembered_id(call, reached)
        state = states.get(conversation_id) if conversation_id is not None else None
        if state is not None and state.context.premise is None:
            del states[state.conversation.id]


def _not_shared(
    calls: list[Incoming], states: dict[int, _State], reached: dict[Reach, int],
    shared: dict[int, float],
) -> None:  # fmt: skip
    """PostgreSQL: forget the states of the calls' conversations that another node wrote
    lately (``shared``: conversation id -> until when): a customer whose requests a load
    balancer spreads over the nodes finds each node's memory of its conversation stale every
    time, and a write that writes nothing first would cost a statement more than reading."""
    if not shared:
        return
    for call in calls:
        conversation_id = _remembered_id(call, reached)
        if conversation_id is not None and shared.get(conversation_id, 0.0) > call.now:
            states.pop(conversation_id, None)
    if len(shared) > SHARED_KEPT:
        now = max(call.now for call in calls)
        for conversation_id, until in list(shared.items()):
            if until <= now:
                del shared[conversation_id]
        if len(shared) > SHARED_KEPT:
            shared.clear()


def _guarded_write(
    taken: list[_Taken], outcomes: list[Outcome], ids: _Ids, postgres: bool,
    memory: Memory,
) -> Op[None]:  # fmt: skip
    """:func:`_write`; on PostgreSQL, a write that found a remembered conversation changed
    marks the remembered conversations it wrote as shared for ``SHARED_SECONDS``: read
    before they are written, not remembered."""
    try:
        yield from _write(taken, outcomes, ids, postgres)
    except Conflict:
        stale = {t.conversation.id for t in taken if t.state.remembered}
        if stale:
            shared = memory.setdefault(LASTING, {}).setdefault("shared", {})
            until = max(t.now for t in taken) + SHARED_SECONDS
            shared.update(dict.fromkeys(stale, until))
        raise


class _Ids:
    """PostgreSQL: ids taken from the sequences for the batch's messages and events, used in
    the order they were posted (ascending: one conversation's messages get ids in its order).

    Kept in the batch's memory with the conversations' states, as a pool for the batches to
    come: a batch whose conversations are all remembered reads nothing, and its messages take
    the pool's ids. That keeps each conversation's messages in id order across nodes because
    every id of the pool was taken after each remembered conversation was first read (a read
    replaces the pool with the ids it took; the write tops it up), and a conversation another
    node wrote since then (with later ids) is no longer the version remembered: the write
    that would put an older id after them writes nothing."""

    __slots__ = ("events", "messages")

    def __init__(self, messages: Iterable[int] = (), events: Iterable[int] = ()) -> None:
        self.messages = deque(messages)
        self.events = deque(events)


def _read_ahead(
    calls: list[Incoming], states: dict[int, _State], reached: dict[Reach, int], memory: Memory
) -> Op[tuple[dict[Reach | int, IncomingContext], _Ids]]:
    """PostgreSQL: the context of each conversation not remembered (by its ids, or by a
    session's reach) for the first call that needs it, all in one statement, which also
    takes an id for each call's message and event: the new pool of ids. What the read found,
    by reach or conversation id, and the pool (the remembered one when nothing was read). A
    call whose read found nothing reads again alone (for its 404)."""
    wanted: dict[Reach | int, Wanted] = {}
    for call in calls:
        if call.attachments:
            continue
        if call.reach is not None:
            if reached.get(call.reach) in states:
                continue
            key: Reach | int = call.reach
            target: Reach | tuple[int, int] = call.reach
        elif call.conversation_id not in states:
            key, target = call.conversation_id, (call.conversation_id, call.contact_id)
        else:
            continue
        if key not in wanted:
            wanted[key] = (target, call.echo_id, call.per_minute_limit, call.now)
    if not wanted:
        pool: _Ids = memory.setdefault("ids", _Ids())
        return {}, pool
    ahead = yield from contexts(list(wanted.values()), len(calls))
    found = {key: c for key, c in zip(wanted, ahead.contexts, strict=True) if c is not None}
    pool = memory["ids"] = _Ids(ahead.message_ids, ahead.event_ids)
    return found, pool


def _state(
    call: Incoming,
    states: dict[int, _State],
    reached: dict[Reach, int],
    read: dict[Reach | int, IncomingContext],
    postgres: bool,
) -> Op[tuple[_State | None, bool]]:
    """The conversation's state, and whether it was read for this call (its read then
    looked up this call's ``echo_id``): the batch's own state, else read (or taken from
    ``read``, what was read ahead) and kept. None: a call the batch leaves to
    ``create_incoming`` (an attachment; another sender)."""
    if call.attachments:
        return None, False
    if call.reach is not None:
        remembered = states.get(reached.get(call.reach, 0))
        if remembered is not None:
            return remembered, False
        ahead = read.pop(call.reach, None)
        context = ahead or (
            yield from reached_context(
                call.reach, call.echo_id, call.per_minute_limit, call.now, postgres
            )
        )
        reached[call.reach] = context.conversation.id
    else:
        state = states.get(call.conversation_id)
        if state is not None:
            same = state.context.known.contact.id == call.contact_id
            return (state if same else None), False
        ahead = read.pop(call.conversation_id, None)
        context = ahead or (
            yield from incoming_context(
                call.conversation_id, call.contact_id, call.echo_id, call.per_minute_limit,
                call.now, postgres=postgres,
            )
        )  # fmt: skip
    state = states.get(context.conversation.id)
    if state is not None:  # read by other ids: the batch's own state is the truth
        same = state.context.known.contact.id == context.known.contact.id
        return (state if same else None), False
    state = states[context.conversation.id] = _State.read(context, call.per_minute_limit)
    return state, True


Echoes = tuple[set[tuple[int, str]], set[tuple[int, str]]]


def _echoes_asked(
    calls: list[Incoming], states: dict[int, _State], reached: dict[Reach, int]
) -> Op[Echoes]:
    """SQLite: the (conversation, echo_id) pairs of the calls whose conversation the batch
    remembers, and those of them a message already has: asked before the batch writes, so
    good until it writes (the batch's own echo_ids are in its states until then)."""
    asked: set[tuple[int, str]] = set()
    for call in calls:
        if call.echo_id and not call.attachments:
            conversation_id = _remembered_id(call, reached)
            if conversation_id is not None and conversation_id in states:
                asked.add((conversation_id, call.echo_id))
    seen: set[tuple[int, str]] = set()
    if len(asked) < 2:  # one pair: its own lookup costs less than the list's (7.7 µs vs 9.9)
        return set(), seen
    pairs = list(asked)
    for start in range(0, len(pairs), _PAIRS_PER_SELECT):
        chunk = pairs[start : start + _PAIRS_PER_SELECT]
        found = yield from rows(
            _ECHOES.format(rows=", ".join(["(?, ?)"] * len(chunk))),
            *[value for pair in chunk for value in pair],
        )  # fmt: skip
        seen.update((r[0], r[1]) for r in found)
    return asked, seen


def _common(
    call: Incoming, state: _State, fresh: bool, postgres: bool, echoes: Echoes | None
) -> Op[bool]:
    """Whether the batch writes this call itself: the common case, a new message that needs
    nothing but its rows and its event. ``fresh``: the state was read for this call;
    ``echoes``: SQLite's echo_ids asked ahead (:func:`_echoes_asked`), None once the batch
    wrote.

    PostgreSQL asks nothing about an ``echo_id`` the batch has not met (a round trip per
    message): one seen before (a client's retry, rare) makes the batch's one statement fail
    on the unique index, and the store runs the calls one by one, where ``create_incoming``
    answers the original."""
    known = state.context.known
    if known.hooks:  # webhook deliveries to enqueue: create_incoming's path
        return False
    if call.echo_id:  # one seen before: create_incoming answers the original
        if fresh:  # the read looked it up
            seen = state.context.echo_message_id is not None
        elif state.echoes and call.echo_id in state.echoes:  # the batch's, not yet written
            seen = True
        elif postgres:
            seen = False
        elif echoes is not None and (state.conversation.id, call.echo_id) in echoes[0]:
            seen = (state.conversation.id, call.echo_id) in echoes[1]
        else:
            seen = (yield from scalar(_ECHO, state.conversation.id, call.echo_id)) is not None
        if seen:
            return False
    if call.per_minute_limit and (
        call.per_minute_limit != state.limit or state.recent >= call.per_minute_limit
    ):
        return False  # at the limit, or near it: create_incoming counts exactly
    conversation = state.conversation
    return not (conversation.status in ("resolved", "snoozed") and not known.contact.blocked)


def _take(index: int, call: Incoming, state: _State, ids: _Ids) -> _Taken:
    conversation = touched(state.conversation, state.conversation.status, False, call.now)
    contact_id = state.context.known.contact.id
    values = (
        conversation.account_id, conversation.inbox_id, conversation.id, call.content,
        p.MESSAGE_TYPE_INCOMING, "text", "{}", False, "sent", "Contact", contact_id,
        call.echo_id, None, float(call.now), float(call.now),
    )  # fmt: skip
    if call.now > (conversation.agent_last_seen_at or 0.0):  # as create_incoming counts it
        state.unread = min(UNREAD_CAP, state.unread + 1)
    state.conversation = conversation
    state.recent += 1
    if call.echo_id:
        if state.echoes is None:
            state.echoes = set()
        state.echoes.add(call.echo_id)
    message_id = ids.messages.popleft() if ids.messages else None
    return _Taken(index, values, message_id, conversation, state.unread, state, call.link, call.now)


def _write(taken: list[_Taken], outcomes: list[Outcome], ids: _Ids, postgres: bool) -> Op[None]:
    """The rows of the messages taken, their events, and each conversation and contact once."""
    if not taken:
        return
    if postgres:
        message_ids, event_ids = yield from _allocated(taken, ids)
    else:
        message_ids, event_ids = (yield from _inserted(taken)), []
    messages: list[Message] = []
    appended: list[events.Appended] = []
    for t, message_id in zip(taken, message_ids, strict=True):
        message = Message.from_row((message_id, *t.values))
        known = t.state.context.known
        known.unread = t.unread
        data = notify.known_message_data(message, t.conversation, t.link, known)
        known.last_message = data
        payload = p.encode(p.Event(event="message.created", data=data))
        streams = [events.inbox_stream(message.inbox_id), *known.contact_streams]
        appended.append(
            events.Appended("message.created", payload, list(dict.fromkeys(streams)), t.now)
        )
        messages.append(message)
    last: dict[int, _Taken] = {}
    active: dict[int, float] = {}  # contact id -> its latest message
    for t in taken:
        last[t.conversation.id] = t
        contact_id = t.state.context.known.contact.id
        active[contact_id] = max(active.get(contact_id, t.now), t.now)
        t.state.echoes = None  # written below: the index answers for them now
    if postgres:
        logged = yield from _written_postgres(
            list(last.values()), messages, appended, event_ids, active, ids
        )
    else:
        logged = yield from events.append_all(appended)
        yield from _updated_sqlite(list(last.values()), active)
    for t, message, events_of in zip(taken, messages, logged, strict=True):
        known = t.state.context.known
        view = presenters.public_message(
            message, t.conversation.display_id, known.senders(), t.link
        )
        outcomes[t.at] = (
            True,
            MessageResult(
                message=message, conversation=t.conversation, created=True, view=view,
                events=events_of,
            ),
        )  # fmt: skip


def _inserted(taken: list[_Taken]) -> Op[list[int]]:
    """SQLite: the messages' rows, by as few statements as its parameters allow; their ids."""
    ids: list[int] = []
    for start in range(0, len(taken), _MESSAGES_PER_INSERT):
        chunk = taken[start : start + _MESSAGES_PER_INSERT]
        yield from execute(
            _INSERT_MESSAGES.format(rows=", ".join([_MESSAGE_VALUES] * len(chunk))),
            *[v for t in chunk for v in t.values],
        )  # fmt: skip
        # One statement inserts its rows in the order given, each taking the next id (the
        # table's AUTOINCREMENT, one writer): the last one's and those before it.
        last = yield from last_rowid()
        ids += range(last - len(chunk) + 1, last + 1)
    return ids


def _updated_sqlite(last: list[_Taken], active: dict[int, float]) -> Op[None]:
    """SQLite: each conversation as its last message leaves it, each contact's activity."""
    changed = [(c.id, c.status, c.last_activity_at, c.waiting_since, c.updated_at,
                c.snoozed_until) for c in (t.conversation for t in last)]  # fmt: skip
    if len(changed) == 1:
        conversation_id, *values = changed[0]
        yield from execute(_CONVERSATION_UPDATE, *values, conversation_id)
    else:
        for start in range(0, len(changed), _ROWS_PER_UPDATE):
            group = changed[start : start + _ROWS_PER_UPDATE]
            yield from execute(
                _CONVERSATIONS_UPDATE.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * len(group))),
                *[v for row in group for v in row],
            )  # fmt: skip
    touched_contacts = list(active.items())
    if len(touched_contacts) == 1:
        contact_id, at = touched_contacts[0]
        yield from execute(TOUCH_CONTACT, at, contact_id, at)
        return
    for start in range(0, len(touched_contacts), _ROWS_PER_UPDATE):
        pairs = touched_contacts[start : start + _ROWS_PER_UPDATE]
        yield from execute(
            _CONTACTS_UPDATE.format(rows=", ".join(["(?, ?)"] * len(pairs))),
            *[v for pair in pairs for v in pair],
        )  # fmt: skip


def _allocated(taken: list[_Taken], ids: _Ids) -> Op[tuple[list[int], list[int]]]:
    """PostgreSQL: the messages' and events' ids, those the read ahead took first, the rest
    (if any) from the sequences in one statement. In the order the messages were posted."""
    events_ahead = [ids.events.popleft() for _ in range(min(len(taken), len(ids.events)))]
    missing = sum(1 for t in taken if t.message_id is None)
    if not missing and len(events_ahead) == len(taken):
        return [t.message_id for t in taken if t.message_id is not None], events_ahead
    row = yield from one(_ALLOCATE, missing, len(taken) - len(events_ahead))
    assert row is not None
    fresh = iter(sorted(row[0]))
    message_ids = [t.message_id if t.message_id is not None else next(fresh) for t in taken]
    return message_ids, events_ahead + sorted(row[1])


def _written_postgres(
    last: list[_Taken],
    messages: list[Message],
    appended: list[events.Appended],
    event_ids: list[int],
    active: dict[int, float],
    pool: _Ids,
) -> Op[list[list[LoggedEvent]]]:
    """PostgreSQL: everything in ONE statement (:data:`_WRITE_BATCH`), if every conversation
    is still the version its read saw (every writer of its messages updates its row, so
    nothing the payloads show changed meanwhile) and the rest of what they show is still its
    premise; else nothing, and :class:`Conflict`: the store runs the batch again, reading.
    The conversations' states, as remembered, take the versions the write leaves, and the
    pool of ids is topped up for the batches to come."""
    want = 0 if len(pool.messages) >= len(messages) else max(POOL, 2 * len(messages))
    counts: dict[str, int] = {}
    entries: list[tuple[str, int, int, float]] = []  # stream, its nth entry, event id, time
    for a, event_id in zip(appended, event_ids, strict=True):
        for stream in a.streams:
            counts[stream] = counts.get(stream, 0) + 1
            entries.append((stream, counts[stream], event_id, a.now))
    heads = sorted(counts)  # one order of row locks for every batch of every node
    epochs = events.new_heads(heads)[1::2]
    found = yield from rows(
        _WRITE_BATCH,
        [t.conversation.id for t in last], [t.conversation.status for t in last],
        [t.conversation.last_activity_at for t in last],
        [t.conversation.waiting_since for t in last], [t.conversation.updated_at for t in last],
        [t.conversation.snoozed_until for t in last], [t.state.context.version for t in last],
        [t.state.context.known.contact.id for t in last],
        [t.state.context.premise if t.state.remembered else None for t in last], len(last),
        [m.id for m in messages], [m.account_id for m in messages],
        [m.inbox_id for m in messages], [m.conversation_id for m in messages],
        [m.content for m in messages], [m.sender_id for m in messages],
        [m.echo_id for m in messages], [m.created_at for m in messages],
        list(active), list(active.values()),
        event_ids, [a.payload for a in appended], [a.now for a in appended],
        heads, epochs, [counts[h] for h in heads],
        [e[0] for e in entries], [counts[e[0]] - e[1] for e in entries],
        [e[2] for e in entries], [e[3] for e in entries], want, want,
    )  # fmt: skip
    if not found or not found[0][0]:
        raise Conflict("a conversation of the batch changed since it was read")
    version, contacts, more_messages, more_events = found[0][4:8]
    pool.messages.extend(sorted(more_messages))
    pool.events.extend(sorted(more_events))
    touched_contacts = set(contacts)
    for t in last:
        t.state.remembered = True
        context = t.state.context
        context.version = version  # the transaction's, as every row it wrote
        if context.known.contact.id in touched_contacts and context.premise is not None:
            context.premise = version + context.premise[context.premise.index("/") :]
    at = {r[1]: (r[2], r[3]) for r in found}
    seen: dict[str, int] = {}
    logged: list[list[LoggedEvent]] = []
    for a in appended:
        mine = []
        for stream in a.streams:
            seen[stream] = seen.get(stream, 0) + 1
            epoch, final = at[stream]
            mine.append(
                LoggedEvent(
                    stream=stream, epoch=epoch, offset=final - counts[stream] + seen[stream],
                    name=a.name, payload=a.payload, created_at=a.now,
                )
            )  # fmt: skip
        logged.append(mine)
    return logged
