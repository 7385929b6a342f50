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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, ParamSpec, TypeVar

from client_sdk import protocol as p

from ..store.records import Conversation, Message
from ..store.sql import Call, Memory, Op, OpFactory, Outcome, batched, execute, rows, scalar
from ..views import public as presenters
from . import events, notify
from .errors import Flooded, NotFound
from .incoming_reads import IncomingContext, Reach, incoming_context, reached_context
from .message_reads import UNREAD_CAP
from .messages import INSERT_MESSAGE, MessageResult, NewAttachment, touched

_MESSAGE_VALUES = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
_INSERT_MESSAGES = INSERT_MESSAGE.split(" VALUES ")[0] + " VALUES {rows} RETURNING id"
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
_ROWS_PER_UPDATE = 1_000  # (6 parameters a row)
_ECHO = "SELECT id FROM messages WHERE conversation_id = ? AND echo_id = ?"
# Conversations whose states a batch keeps for the next (about 4 KB each: 8 MB), the oldest
# forgotten first.
MAX_REMEMBERED = 2_000
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
        return batched(create_incoming_batch)(op)

    return mark


class _State:
    """One conversation as the batch's calls so far left it."""

    __slots__ = ("context", "conversation", "echoes", "limit", "recent", "unread")

    def __init__(self, context: IncomingContext, limit: int) -> None:
        self.context = context
        self.conversation = context.conversation
        self.limit = limit  # the flood guard's limit the read counted up to
        self.recent = context.recent  # as read (capped at the limit), plus the batch's own
        self.unread = context.known.unread
        self.echoes: set[str] = set()  # echo_ids of its messages not yet written


class _Taken(NamedTuple):
    """A message the batch checked: its row's values (the id to come) and what it shows."""

    at: int  # the call's place in the batch
    values: tuple[Any, ...]
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
    states: dict[int, _State] = memory.setdefault("states", {})  # conversation id -> state
    reached: dict[Reach, int] = memory.setdefault("reached", {})  # a reach -> its conversation
    while len(states) > MAX_REMEMBERED:  # the oldest first (never during a batch: a state
        del states[next(iter(states))]  # with messages not yet written must stay the truth)
    if len(reached) > 2 * MAX_REMEMBERED:  # (a reach whose state is gone is read again)
        reached.clear()
    outcomes: list[Outcome] = [(False, None)] * len(calls)
    taken: list[_Taken] = []
    for index, (op, args, kwargs) in enumerate(calls):
        call = _CALLS[op](*args, **kwargs)
        try:
            state, fresh = yield from _state(call, states, reached)
        except NotFound as exc:
            outcomes[index] = (False, exc)
            continue
        if state is not None and (yield from _common(call, state, fresh)):
            taken.append(_take(index, call, state))
            continue
        # Not the common case: create_incoming itself, after the messages before it.
        yield from _write(taken, outcomes)
        taken = []
        states.clear()  # its writes may change what the states hold
        reached.clear()
        try:
            outcomes[index] = (True, (yield from op(*args, **kwargs)))
        except (NotFound, Flooded) as exc:  # raised before it wrote anything
            outcomes[index] = (False, exc)
    yield from _write(taken, outcomes)
    return outcomes


def _state(
    call: Incoming, states: dict[int, _State], reached: dict[Reach, int]
) -> Op[tuple[_State | None, bool]]:
    """The conversation's state, and whether it was read for this call (its read then
    looked up this call's ``echo_id``): the batch's own state, else read and kept. None: a
    call the batch leaves to ``create_incoming`` (an attachment; another sender)."""
    if call.attachments:
        return None, False
    if call.reach is not None:
        remembered = states.get(reached.get(call.reach, 0))
        if remembered is not None:
            return remembered, False
        context = yield from reached_context(
            call.reach, call.echo_id, call.per_minute_limit, call.now, False
        )
        reached[call.reach] = context.conversation.id
    else:
        state = states.get(call.conversation_id)
        if state is not None:
            same = state.context.known.contact.id == call.contact_id
            return (state if same else None), False
        context = yield from incoming_context(
            call.conversation_id, call.contact_id, call.echo_id, call.per_minute_limit, call.now
        )
    state = states.get(context.conversation.id)
    if state is not None:  # read by other ids: the batch's own state is the truth
        same = state.context.known.contact.id == context.known.contact.id
        return (state if same else None), False
    state = states[context.conversation.id] = _State(context, call.per_minute_limit)
    return state, True


def _common(call: Incoming, state: _State, fresh: bool) -> Op[bool]:
    """Whether the batch writes this call itself: the common case, a new message that needs
    nothing but its rows and its event. ``fresh``: the state was read for this call."""
    known = state.context.known
    if known.hooks:  # webhook deliveries to enqueue: create_incoming's path
        return False
    if call.echo_id:  # one seen before: create_incoming answers the original
        if fresh:  # the read looked it up
            seen = state.context.echo_message_id is not None
        elif call.echo_id in state.echoes:  # one of this batch's, not yet written
            seen = True
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


def _take(index: int, call: Incoming, state: _State) -> _Taken:
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
        state.echoes.add(call.echo_id)
    return _Taken(index, values, conversation, state.unread, state, call.link, call.now)


def _write(taken: list[_Taken], outcomes: list[Outcome]) -> Op[None]:
    """The rows of the messages taken, their events, and each conversation and contact once."""
    if not taken:
        return
    ids: list[int] = []
    for start in range(0, len(taken), _MESSAGES_PER_INSERT):
        chunk = taken[start : start + _MESSAGES_PER_INSERT]
        inserted = yield from rows(
            _INSERT_MESSAGES.format(rows=", ".join([_MESSAGE_VALUES] * len(chunk))),
            *[v for t in chunk for v in t.values],
        )  # fmt: skip
        # One statement inserts its rows in the order given, each taking the next id.
        ids += sorted(r[0] for r in inserted)
    messages: list[Message] = []
    appended: list[events.Appended] = []
    for t, message_id in zip(taken, ids, strict=True):
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
    logged = yield from events.append_all(appended)
    last: dict[int, _Taken] = {}
    active: dict[int, float] = {}  # contact id -> its latest message
    for t in taken:
        last[t.conversation.id] = t
        contact_id = t.state.context.known.contact.id
        active[contact_id] = max(active.get(contact_id, t.now), t.now)
    for t in taken:
        t.state.echoes.clear()  # written: the index answers for them now
    changed = [(c.id, c.status, c.last_activity_at, c.waiting_since, c.updated_at,
                c.snoozed_until) for c in (t.conversation for t in last.values())]  # fmt: skip
    for start in range(0, len(changed), _ROWS_PER_UPDATE):
        group = changed[start : start + _ROWS_PER_UPDATE]
        yield from execute(
            _CONVERSATIONS_UPDATE.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * len(group))),
            *[v for row in group for v in row],
        )  # fmt: skip
    touched_contacts = list(active.items())
    for start in range(0, len(touched_contacts), _ROWS_PER_UPDATE):
        pairs = touched_contacts[start : start + _ROWS_PER_UPDATE]
        yield from execute(
            _CONTACTS_UPDATE.format(rows=", ".join(["(?, ?)"] * len(pairs))),
            *[v for pair in pairs for v in pair],
        )  # fmt: skip
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
