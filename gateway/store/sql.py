"""Sans-I/O store operations.

An operation is a generator that yields :class:`Query` objects and receives each query's rows
back; its return value is the operation's result. It never touches a connection, so one
operation runs unchanged on every Store implementation: the SQLite driver feeds it from a
writer thread, the PostgreSQL driver from asyncpg. Operations are written in the SQL both
engines accept (``?`` placeholders, which a driver may rewrite; ``RETURNING``; ``ON CONFLICT``).

Rows are tuples. Booleans are passed as Python ``bool`` and read back through ``bool()`` so
SQLite's 0/1 and PostgreSQL's boolean look the same to an operation; JSON columns are text.

Where one engine can do in one statement what the other needs several for (PostgreSQL's
data-modifying ``WITH``, a round trip saved each), an operation asks :func:`dialect` and
yields the statements of its engine; every other statement is shared.

A read marked :func:`short_read` promises to be cheap and to need no common snapshot, which
lets an engine skip what a read otherwise costs (SQLite: the hop to a reader thread;
PostgreSQL: BEGIN and COMMIT, two round trips).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Sequence
from typing import Any, NamedTuple, ParamSpec, TypeVar

import msgspec

Row = tuple[Any, ...]
Rows = list[Row]
T = TypeVar("T")
P = ParamSpec("P")


class Query(NamedTuple):
    sql: str
    params: Sequence[Any] = ()


Op = Generator[Query, Rows, T]
OpFactory = Callable[P, Op[T]]

_SHORT = "_inboxgate_short_read"


def short_read(op: OpFactory[P, T]) -> OpFactory[P, T]:
    """Mark a read operation as short: a few statements, each reading a bounded handful of
    rows through an index (never a scan, never an unbounded list), and correct when each of
    its statements sees a later commit than the one before (e.g. a record, then rows that
    only ever follow it). SQLite runs it on the event loop's own read-only connection (a WAL
    reader never waits for the writer); PostgreSQL runs it without a transaction.
    Wrappers made with ``functools.wraps`` keep the mark."""
    setattr(op, _SHORT, True)  # a function attribute: setattr keeps mypy out of it
    return op


def is_short_read(op: Callable[..., Any]) -> bool:
    return bool(getattr(op, _SHORT, False))


# Answered by the engine itself, without touching the database: ``[(name,)]``, the name being
# "sqlite" or "postgresql".
DIALECT = Query("-- dialect")


def dialect() -> Op[str]:
    """The SQL dialect of the engine running this operation."""
    answer = yield DIALECT
    return str(answer[0][0])


# Yielded by a lazy_transaction operation before writes that must commit together: the engine
# begins a transaction there if it is not in one (answer: no rows).
ATOMIC = Query("-- atomic")


def atomic() -> Op[None]:
    yield ATOMIC


# Asked by a lazy_transaction operation: is it running outside a transaction (so a single
# statement commits by itself)? Answer ``[(bool,)]``: False in SQLite's group commit, and on
# PostgreSQL once a transaction began or when the store re-runs the operation after a
# Conflict (then inside a transaction from the start, where its reads see what it locks). In a
# PostgreSQL group it answers True until the operation asks for a transaction: the operation's
# savepoint keeps its one write atomic, as it would be alone.
OUTSIDE = Query("-- outside a transaction?")


def outside_transaction() -> Op[bool]:
    answer = yield OUTSIDE
    return bool(answer[0][0])


# Asked by an append to SQLite's event log, with the stream names (distinct) as params: advance each
# stream's head by one and answer ``[(name, epoch, offset)]``, a stream met for the first time
# starting at offset 1 of a new epoch. SQLite's writer thread answers from the heads it keeps
# (it is the only writer) and writes them back once per batch; any other connection answers
# with an upsert of the ``streams`` rows.
NEXT_OFFSETS = "-- next offsets of streams"


def next_offsets(streams: Sequence[str]) -> Op[Rows]:
    answer = yield Query(NEXT_OFFSETS, tuple(streams))
    return answer


# Asked by a SQLite operation right after an INSERT: ``[(rowid,)]``, the rowid of the last row
# that INSERT wrote (the connection's ``last_insert_rowid()``, which the engine read when the
# statement ran: no statement of its own, no second trip through the SQLite module). SQLite only.
LAST_ROWID = Query("-- last insert rowid")


def last_rowid() -> Op[int]:
    answer = yield LAST_ROWID
    return int(answer[0][0])


def for_the_engine(query: Query) -> bool:
    """Whether ``query`` is a question to the engine (DIALECT, ATOMIC, OUTSIDE,
    NEXT_OFFSETS, LAST_ROWID), not SQL."""
    return (
        query is DIALECT or query is ATOMIC or query is OUTSIDE or query is LAST_ROWID
        or query.sql is NEXT_OFFSETS
    )  # fmt: skip


_LAZY = "_inboxgate_lazy_transaction"


def lazy_transaction(op: OpFactory[P, T]) -> OpFactory[P, T]:
    """Mark a write operation whose statements may run outside a transaction until it yields
    :func:`atomic`: before that it runs reads and at most ONE write, its last statement (a
    single statement is atomic by itself), and only if :func:`outside_transaction` says so.
    An engine may then skip BEGIN and COMMIT (PostgreSQL: two round trips); SQLite's writer
    runs it in its group commit as any other."""
    setattr(op, _LAZY, True)  # a function attribute: setattr keeps mypy out of it
    return op


def is_lazy_transaction(op: Callable[..., Any]) -> bool:
    return bool(getattr(op, _LAZY, False))


_TURNS = "_inboxgate_one_at_a_time"


def one_at_a_time(
    key: Callable[..., Hashable],
) -> Callable[[OpFactory[P, T]], OpFactory[P, T]]:
    """Mark a write whose runs with equal ``key(*args, **kwargs)`` all write one row (a
    conversation's): an engine that runs writes concurrently runs those on this node one after
    another, in arrival order, instead of letting them race for it. (PostgreSQL: a racing
    writer's optimistic check fails, and it runs again in a transaction that waits for the
    row's lock, several round trips more than the one it lost. SQLite's one writer needs
    nothing.) Writers on other nodes may still race; the operation stays correct under it.
    PostgreSQL runs the writes that queued meanwhile together, in one transaction (a savepoint
    each) with one COMMIT."""

    def mark(op: OpFactory[P, T]) -> OpFactory[P, T]:
        setattr(op, _TURNS, key)  # a function attribute: setattr keeps mypy out of it
        return op

    return mark


def turn_of(op: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Hashable:
    """The key of :func:`one_at_a_time` for this run of ``op``; None when it has none. A
    :func:`batched` write takes its batch's turn, whatever its arguments: one lane per node
    for every call the batch may take, so that those that queue run as one batch."""
    batch: Hashable | None = getattr(op, _BATCH, None)
    if batch is not None:
        return batch
    key: Callable[..., Hashable] | None = getattr(op, _TURNS, None)
    return None if key is None else key(*args, **kwargs)


_BATCH = "_inboxgate_batched"

# One call of a write operation as an engine queued it, and its outcome: (True, value), or
# (False, the exception it raised).
Call = tuple[Callable[..., Op[Any]], tuple[Any, ...], dict[str, Any]]
Outcome = tuple[bool, Any]
# What a batch keeps from one run to the next (its engine empties it whenever anything else
# may have changed what it holds).
Memory = dict[str, Any]
# What a batch keeps under this key of its memory outlives the engine's forgetting (:func:`forget`):
# what it learned about how its keys are written, never a state it would write from.
LASTING = "lasting"
BatchOp = Callable[[list[Call], Memory], Op[list[Outcome]]]
AloneHook = Callable[[Call, Memory], bool]
_ALONE = "_inboxgate_alone"


def batched(
    batch: BatchOp, *, alone: AloneHook | None = None
) -> Callable[[OpFactory[P, T]], OpFactory[P, T]]:
    """Mark a write that an engine running queued writes in one transaction (SQLite's writer,
    whose group commit runs them one after the other) may run, with the calls of marked
    operations sharing ``batch`` that follow it in the queue, as ONE operation:
    ``batch(calls, memory)`` answers every call's outcome, in order, exactly as running the
    calls one after the other would have (the same rows, results and errors). It pays each
    statement's cost once for many rows where the calls alone would each pay it.

    ``memory``: what the batch keeps between its runs, which the engine keeps only while the
    batch's own writes are the database's only changes: it empties it before any other
    operation runs, when another connection has committed, and when a transaction the batch
    ran in does not commit as it ran.

    As for any operation of a group commit, a call's error comes before it wrote anything;
    should ``batch`` itself raise, the engine runs the calls again, one by one.

    An engine that runs writes concurrently (PostgreSQL) runs a batched write in its batch's
    turn (:func:`turn_of`): one after another on a node, those that queued meanwhile as one
    batch, outside a transaction until the batch asks for one (:func:`atomic`). Other nodes
    write too, so there ``memory`` holds nothing the batch does not check again in its write
    (row versions): the engine keeps it from one run to the next and empties it when a run
    fails (:func:`forget`: all but the batch's ``LASTING`` entry). A batch that lost a race to
    another writer runs again reading (its memory forgotten), then once more in a transaction
    from the start, before the calls run one by one. A call that comes alone runs as a batch
    of one when ``alone(call, memory)`` says the batch serves it from its memory; otherwise
    it runs as its operation, and ``alone`` has made the batch forget what the call will
    write (without ``alone``, the engine forgets the batch's whole memory)."""

    def mark(op: OpFactory[P, T]) -> OpFactory[P, T]:
        setattr(op, _BATCH, batch)  # a function attribute: setattr keeps mypy out of it
        if alone is not None:
            setattr(batch, _ALONE, alone)
        return op

    return mark


def alone_hook(batch: BatchOp) -> AloneHook | None:
    """The ``alone`` of :func:`batched` for ``batch``, if it has one."""
    hook: AloneHook | None = getattr(batch, _ALONE, None)
    return hook


def forget(memory: Memory) -> None:
    """Empty a batch's memory after a run that failed, but for what it keeps as lasting."""
    lasting = memory.get(LASTING)
    memory.clear()
    if lasting is not None:
        memory[LASTING] = lasting


def batch_of(op: Callable[..., Any]) -> BatchOp | None:
    """The batch of :func:`batched` that may run ``op``; None when it has none."""
    batch: BatchOp | None = getattr(op, _BATCH, None)
    return batch


def prefixed(columns: str, alias: str) -> str:
    """A record's ``COLUMNS`` qualified by a table alias, for joins."""
    return ", ".join(f"{alias}.{name}" for name in columns.split(", "))


def width(columns: str) -> int:
    """How many columns a record's ``COLUMNS`` names (where the next record starts in a row)."""
    return len(columns.split(", "))


def rows(sql: str, *params: Any) -> Op[Rows]:
    result = yield Query(sql, params)
    return result


def one(sql: str, *params: Any) -> Op[Row | None]:
    result = yield Query(sql, params)
    return result[0] if result else None


def scalar(sql: str, *params: Any) -> Op[Any]:
    result = yield Query(sql, params)
    return result[0][0] if result else None


def execute(sql: str, *params: Any) -> Op[None]:
    yield Query(sql, params)


_json_encoder = msgspec.json.Encoder()


def dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def load_json(text: str | bytes | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return msgspec.json.decode(text)
