"""The PostgreSQL store (asyncpg), for several gateway nodes sharing one database.

Each write runs its operation in one READ COMMITTED transaction on a pooled connection and
returns after COMMIT. What keeps concurrent writers on many nodes correct:

- counters are bumped by a statement that locks their row until commit (``UPDATE accounts SET
  last_display_id = last_display_id + 1 ... RETURNING``, the ``streams`` upsert), so display ids
  and stream offsets are handed out one transaction at a time, unique and gap-free, and an
  offset commits before the next one can be taken;
- uniqueness (``echo_id`` per conversation, contact identity, source ids) is a constraint: the
  loser of a race gets a unique violation, and the operation is run again from the start in a
  fresh transaction, where it finds the winner's row (operations are sans-I/O generators, so a
  re-run repeats no side effect);
- serialization failures and deadlocks (two writers appending to the same streams in another
  order) are retried the same way, as is an operation's own optimistic check that found its
  premise changed (:class:`Conflict`);
- the webhook outbox is leased by an ``UPDATE ... RETURNING`` that re-checks the lease in its
  WHERE clause, so a second claimer skips a row the first one took.

A lazy write (``sql.lazy_transaction``) runs without a transaction until it asks for one, so
a write of one statement costs one round trip.

Writes of one key (``sql.one_at_a_time``: a conversation's) run one after another on a node,
in arrival order; those that queued while one ran go next together: one connection, one
transaction, a savepoint each, one COMMIT (``PostgresStore._group``). A burst to one
conversation then costs one WAL flush, one connection checkout and one loop wake-up per group
instead of per message (measured: the gateway's CPU per message about halved in
``benchmarks.cross_node``'s one-conversation burst).

A batched write (``sql.batched``: customers' messages) takes its batch's turn, one lane per
node, and waits one turn of the loop on an idle lane for the calls that arrived with it;
the calls of a group (or one call alone whose conversation the batch remembers: see
``_served_alone``) run as ONE operation (``_batch_alone``), outside a
transaction until the batch asks for one: one statement reads what they need, one more writes
them all or nothing (see ``domain.incoming_batch``), and what the batch remembers of its
conversations (kept per node from one batch to the next, checked again by the write) spares
the read next time; a batch that lost a race to another node runs again reading, then once
more in a transaction, locking its conversations first. A burst then costs the database two
statements per batch (``benchmarks.cross_node``: PostgreSQL's burst 0.21x -> 0.60x of a
SQLite node's), one when its conversations are remembered.

Reads run in a READ ONLY REPEATABLE READ transaction: one snapshot for every query of the
operation; a short read (``sql.short_read``) runs without one, one round trip per statement.
Connection trouble (PostgreSQL down, restarting, unreachable, a timeout) becomes
:class:`StoreUnavailable`, which the app answers with 503; every connect and statement has a
bounded timeout so a request fails fast instead of hanging. A write that lost its connection
before COMMIT is retried on a new connection (the server rolled it back); one that lost it
during COMMIT is reported unavailable, as its outcome is unknown (clients retry with echo_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from .. import metrics
from ..backoff import backoff
from ..logs import StateLog
from .base import Conflict, Store, StoreUnavailable, UniqueViolation
from .schema import POSTGRES_MIGRATIONS
from .sql import (
    ATOMIC,
    DIALECT,
    LAST_ROWID,
    OUTSIDE,
    Memory,
    Op,
    Rows,
    alone_hook,
    batch_of,
    forget,
    is_lazy_transaction,
    is_short_read,
    turn_of,
)

T = TypeVar("T")
Conn = asyncpg.Connection | PoolConnectionProxy

# Any 64-bit constant: the key of the advisory lock that serialises migrations across nodes.
MIGRATION_LOCK = 0x1B0C_6A7E_0001
MAX_RETRIES = 8
# At most this many writes of one key in one transaction (``_group``).
GROUP_MAX = 32
RETRY_BASE_SECONDS = 0.005
RETRY_CAP_SECONDS = 2.0
_MAX_CACHED_SQL = 8192
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.QueryCanceledError,  # statement_timeout
)
# Connecting also fails on a wrong password or a missing database: not this store's to fix,
# but reported the same way (``inboxgate migrate`` prints it; the app answers 503).
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    *_CONNECTION_ERRORS,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
_RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.UniqueViolationError,
)

# Run the operation again: a lost race (above) or its own optimistic check.
_RERUN: tuple[type[BaseException], ...] = (*_RETRYABLE, Conflict)
# A batch that lost a race it may win when it runs again, reading again (a unique violation
# stays: an echo_id seen before fails it again).
_AGAIN: tuple[type[BaseException], ...] = (
    Conflict,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
_dollar_cache: dict[str, str] = {}
log = logging.getLogger("inboxgate.store")
_READ = metrics.HotHistogram(metrics.STORE_READ.labels("postgresql"))
_WRITE = metrics.HotHistogram(metrics.STORE_WRITE.labels("postgresql"))
_COMMIT = metrics.STORE_COMMIT.labels("postgresql")
_BATCH = metrics.STORE_WRITE_BATCH.labels("postgresql")
_UNAVAILABLE = metrics.STORE_UNAVAILABLE.labels("postgresql")
_RETRIES = metrics.STORE_RETRIES.labels("postgresql")


def to_dollar(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...``; a ``?`` inside a quoted string, a quoted
    identifier or a ``--`` comment stays as it is. Translated once per distinct SQL text."""
    cached = _dollar_cache.get(sql)
    if cached is not None:
        return cached
    out: list[str] = []
    n = 0
    quote = ""
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            out.append(ch)
            if ch == quote or (quote == "\n" and ch == "\n"):
                quote = ""  # a doubled quote ('') closes and reopens: still correct
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "-" and sql.startswith("--", i):
            quote = "\n"
            out.append(ch)
        elif ch == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(ch)
        i += 1
    translated = "".join(out)
    if len(_dollar_cache) < _MAX_CACHED_SQL:  # dynamic SQL is bounded, but stay bounded anyway
        _dollar_cache[sql] = translated
    return translated


_DIALECT: Rows = [("postgresql",)]


class _Attempt:
    """One run of an operation on a connection: its transaction, begun up front or (a lazy
    operation) when the operation yields ATOMIC, and the statements sent outside of one.

    ``grouped``: one of a group's operations, in the group's transaction under a savepoint of
    its own (:meth:`PostgresStore._group`). A lazy operation is told it runs outside a
    transaction until it asks for one: its single write is atomic by itself under the
    savepoint, as it would be alone, and commits with the group."""

    __slots__ = ("conn", "grouped", "outside", "tx")

    def __init__(self, conn: Conn, *, grouped: bool = False) -> None:
        self.conn = conn
        self.tx: Any = None  # asyncpg's Transaction (grouped: True once the op asked for one)
        self.outside = 0
        self.grouped = grouped

    async def begin(self, **options: Any) -> None:
        self.tx = self.conn.transaction(**options)
        await self.tx.start()


async def _run_op(attempt: _Attempt, gen: Op[Any]) -> Any:
    conn = attempt.conn
    try:
        query = next(gen)
        while True:
            if query is DIALECT:
                query = gen.send(_DIALECT)
                continue
            if query is ATOMIC:
                if attempt.tx is None:
                    if attempt.grouped:
                        attempt.tx = True  # the group's transaction is already there
                    else:
                        await attempt.begin()
                query = gen.send([])
                continue
            if query is OUTSIDE:
                query = gen.send([(attempt.tx is None,)])
                continue
            if query is LAST_ROWID:  # a SQLite branch of an operation ran here: a bug
                raise RuntimeError("LAST_ROWID is SQLite's: PostgreSQL reads ids with RETURNING")
            if attempt.tx is None:
                attempt.outside += 1
            records = await conn.fetch(to_dollar(query.sql), *query.params)
            query = gen.send([tuple(r) for r in records])
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()


def _units(group: list[_Waiting]) -> list[list[_Waiting]]:
    """``group`` cut where the batch (``sql.batched``) of one call to the next changes: a
    unit of several calls is one batch's; a call of no batch is a unit alone."""
    units: list[list[_Waiting]] = []
    previous: object = None
    for waiting in group:
        batch = batch_of(waiting.op)
        if batch is not None and batch is previous:
            units[-1].append(waiting)
        else:
            units.append([waiting])
        previous = batch
    return units


class _Waiting:
    """A write queued behind the running one of its key, and where its outcome goes."""

    __slots__ = ("args", "future", "kwargs", "op")

    def __init__(
        self, op: Callable[..., Op[Any]], args: tuple[Any, ...], kwargs: dict[str, Any],
        future: asyncio.Future[Any],
    ) -> None:  # fmt: skip
        self.op, self.args, self.kwargs, self.future = op, args, kwargs, future

    def settle(self, value: Any = None, error: BaseException | None = None) -> None:
        if self.future.done():  # its caller gave up waiting (a timeout)
            return
        if error is None:
            self.future.set_result(value)
        else:
            self.future.set_exception(error)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Operations leave no session state behind (no SET, LISTEN or session locks), so the
    pool's default RESET round trip on every release is pure cost."""


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout: float = 3.0,
        command_timeout: float = 10.0,
        op_timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        # The whole of one write or read, retries included: the bound a caller waits.
        self.op_timeout = op_timeout
        self.clock = clock
        self._pool: asyncpg.Pool | None = None
        self._closed = True
        self._inflight = 0
        self._idle = asyncio.Event()
        self.retries = 0  # operations re-run after a conflict or a lost connection
        self._availability = StateLog(log)
        # Keys with a write running (one_at_a_time): the writes queued behind it.
        self._turns: dict[Hashable, deque[_Waiting]] = {}
        self._drainers: set[asyncio.Task[None]] = set()
        # Each batch's memory (``sql.batched``), kept from one run of its lane to the next.
        self._memories: dict[Any, Memory] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if not self._closed:
            return
        await self.migrate()
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=1, max_size=self.pool_size, timeout=self.connect_timeout,
                command_timeout=self.command_timeout, reset=_no_reset,
                statement_cache_size=1024, server_settings={"application_name": "inboxgate"},
            )  # fmt: skip
        except _CONNECT_ERRORS as exc:
            raise StoreUnavailable(f"postgresql unreachable: {exc}") from exc
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()  # operations already running finish and are acknowledged
        # A drainer may still run a write whose caller gave up (its outcome goes nowhere).
        await asyncio.gather(*self._drainers, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.op_timeout)
            except _CONNECTION_ERRORS:  # TimeoutError among them
                pool.terminate()

    async def migrate(self) -> list[int]:
        try:
            conn = await asyncpg.connect(
                self.url, timeout=self.connect_timeout, command_timeout=self.command_timeout
            )
        except _CONNECT_ERRORS as exc:
            raise StoreUnavailable(f"postgresql unreachable: {exc}") from exc
        try:
            return await self._migrate(conn)
        finally:
            await conn.close()

    async def _migrate(self, conn: asyncpg.Connection) -> list[int]:
        # Nodes starting together queue here; the second finds every version applied.
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, statements in sorted(POSTGRES_MIGRATIONS, key=lambda m: m[0]):
                if version in done:
                    continue
                async with conn.transaction():
                    for statement in statements:
                        await conn.execute(statement)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES ($1, $2, $3)",
                        version, name, time.time(),
                    )  # fmt: skip
                applied.append(version)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    # -- operations ----------------------------------------------------------------------

    async def write(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        result: T = await self._run(op, args, kwargs, write=True)
        return result

    async def read(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        result: T = await self._run(op, args, kwargs, write=False)
        return result

    async def _run(
        self, op: Callable[..., Op[Any]], args: tuple[Any, ...], kwargs: dict[str, Any],
        *, write: bool,
    ) -> Any:  # fmt: skip
        pool = self._pool
        if self._closed or pool is None:
            raise StoreUnavailable("the store is closed")
        self._inflight += 1
        self._idle.clear()
        started = time.perf_counter()
        key = turn_of(op, args, kwargs) if write else None
        try:
            async with asyncio.timeout(self.op_timeout):
                if key is None:
                    result = await self._attempts(pool, op, args, kwargs, write)
                else:
                    result = await self._in_turn(pool, key, op, args, kwargs)
        except TimeoutError as exc:
            failure = StoreUnavailable("postgresql did not answer in time")
            self._unavailable(failure)
            raise failure from exc
        except StoreUnavailable as exc:
            self._unavailable(exc)
            raise
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()
            (_WRITE if write else _READ).observe(time.perf_counter() - started)
        self._availability.recovered(None, "database available again (%d failed operations)")
        return result

    # -- one key's writes: one after another, those that queued meanwhile as one group ------

    async def _in_turn(
        self, pool: asyncpg.Pool, key: Hashable, op: Callable[..., Op[Any]],
        args: tuple[Any, ...], kwargs: dict[str, Any],
    ) -> Any:  # fmt: skip
        """A write of a busy key queues (holding no connection) and is run by the key's
        drainer, with whatever else queued meanwhile; on an idle key it runs at once, here."""
        queue = self._turns.get(key)
        if queue is not None:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            queue.append(_Waiting(op, args, kwargs, future))
            return await future
        queue = self._turns[key] = deque()
        if batch_of(op) is not None:
            # The loop's other ready callbacks first: calls of the batch that came in with this
            # one (a burst's requests read in one wake-up) join it, one batch with it.
            try:
                await asyncio.sleep(0)
            except BaseException:  # cancelled: the turn goes on without this call
                if queue:
                    self._drained(pool, key, queue)
                else:
                    del self._turns[key]
                raise
            if queue:
                future = asyncio.get_running_loop().create_future()
                queue.appendleft(_Waiting(op, args, kwargs, future))
                self._drained(pool, key, queue)
                return await future
        try:
            if self._served_alone(op, args, kwargs):
                future = asyncio.get_running_loop().create_future()
                await self._batch_alone(pool, [_Waiting(op, args, kwargs, future)])
                return await future
            return await self._attempts(pool, op, args, kwargs, True)
        finally:
            if queue:  # handed on to a task: this caller may be cancelled, they may not
                self._drained(pool, key, queue)
            else:
                del self._turns[key]

    def _drained(self, pool: asyncpg.Pool, key: Hashable, queue: deque[_Waiting]) -> None:
        """The key's queue handed on to a task of its own."""
        task = asyncio.create_task(self._drain(pool, key, queue))
        self._drainers.add(task)
        task.add_done_callback(self._drainers.discard)

    async def _drain(self, pool: asyncpg.Pool, key: Hashable, queue: deque[_Waiting]) -> None:
        try:
            while queue:
                group: list[_Waiting] = []
                while queue and len(group) < GROUP_MAX:
                    waiting = queue.popleft()
                    if not waiting.future.done():
                        group.append(waiting)
                one = group[0] if len(group) == 1 else None
                if one is not None and not self._served_alone(one.op, one.args, one.kwargs):
                    await self._alone(pool, one)
                elif group:
                    await self._group(pool, group)
        finally:
            for waiting in queue:  # only when this task itself was cancelled (shutdown)
                waiting.settle(error=StoreUnavailable("the store stopped"))
            del self._turns[key]

    async def _alone(self, pool: asyncpg.Pool, waiting: _Waiting) -> None:
        try:
            value = await self._attempts(pool, waiting.op, waiting.args, waiting.kwargs, True)
        except Exception as exc:
            waiting.settle(error=exc)
        except BaseException as exc:
            waiting.settle(error=StoreUnavailable("the store stopped"))
            raise exc
        else:
            waiting.settle(value)

    async def _group(self, pool: asyncpg.Pool, group: list[_Waiting]) -> None:
        """Several queued writes of one key in ONE transaction, each under a savepoint of its
        own, with one COMMIT (one WAL flush) for all: as SQLite's writer commits its batch.
        An operation that fails is rolled back to its savepoint and the others go on: one
        that lost a race (a unique violation, a Conflict, a deadlock) is run again alone
        after the commit, as it would have been; any other error is its own answer. If the
        group itself fails before COMMIT (nothing of it was written), each write runs again
        alone; if COMMIT's outcome is unknown, each is reported unavailable."""
        units = _units(group)
        if len(units) == 1 and batch_of(group[0].op) is not None:
            await self._batch_alone(pool, group)
            return
        outcomes: list[tuple[_Waiting, Any, BaseException | None]] = []
        again: list[_Waiting] = []
        committing = False
        try:
            async with pool.acquire() as conn:
                began = time.perf_counter()
                tx = conn.transaction()
                await tx.start()
                try:
                    savepoint = "SAVEPOINT grouped"
                    for unit in units:
                        if len(unit) > 1:  # calls of one batch: as one operation
                            await conn.execute(savepoint)
                            savepoint = "RELEASE SAVEPOINT grouped; SAVEPOINT grouped"
                            if await self._batch(conn, unit, outcomes):
                                continue
                        for waiting in unit:
                            await conn.execute(savepoint)
                            savepoint = "RELEASE SAVEPOINT grouped; SAVEPOINT grouped"
                            run = _Attempt(conn, grouped=True)
                            if not is_lazy_transaction(waiting.op):
                                run.tx = True
                            try:
                                value = await _run_op(
                                    run, waiting.op(*waiting.args, **waiting.kwargs)
                                )
                            except _RERUN:
                                await conn.execute("ROLLBACK TO SAVEPOINT grouped")
                                again.append(waiting)
                            except Exception as exc:
                                if isinstance(exc, _CONNECTION_ERRORS) or conn.is_closed():
                                    raise  # the group's connection: nothing of it was written
                                await conn.execute("ROLLBACK TO SAVEPOINT grouped")
                                outcomes.append((waiting, None, exc))
                            else:
                                outcomes.append((waiting, value, None))
                except BaseException:
                    with contextlib.suppress(*_CONNECTION_ERRORS, asyncpg.InterfaceError):
                        await tx.rollback()
                    raise
                committing = True
                await tx.commit()
                _COMMIT.observe(time.perf_counter() - began)
                _BATCH.observe(len(outcomes))
        except Exception as exc:
            await self._failed(pool, group, exc, committing)
            return
        for waiting, value, error in outcomes:
            waiting.settle(value, error)
        await self._again(pool, again)

    async def _failed(
        self, pool: asyncpg.Pool, group: list[_Waiting], exc: Exception, committing: bool
    ) -> None:
        """A group (or a batch) that failed: while its COMMIT (or its one write) may have
        committed, each of its writes is reported unavailable (the outcome is unknown);
        having written nothing, each runs again alone."""
        if committing:
            failure = StoreUnavailable(f"postgresql unavailable: {exc!r}")
            for waiting in group:
                waiting.settle(error=failure)
            return
        log.debug("%d writes together failed, each runs alone: %r", len(group), exc)
        await self._again(pool, group)

    async def _again(self, pool: asyncpg.Pool, writes: list[_Waiting]) -> None:
        for waiting in writes:
            self.retries += 1
            _RETRIES.inc()
            await self._alone(pool, waiting)

    async def _batch_alone(self, pool: asyncpg.Pool, group: list[_Waiting]) -> None:
        """A group that is one batch's calls (``sql.batched``) as ONE operation, outside a
        transaction until the batch asks for one (as a lazy write: its reads, then one
        statement that writes everything or nothing). A conversation changed since the batch
        read it (another node's write) or a deadlock: the batch runs once more, in a
        transaction, where it locks the conversations it reads before it reads them again.
        Should it fail otherwise having written nothing, each call runs alone; lost while
        its one write may have committed, each is reported unavailable."""
        batch = batch_of(group[0].op)
        assert batch is not None
        calls = [(w.op, w.args, w.kwargs) for w in group]
        # What the batch remembers from one run to the next (the lane runs one at a time):
        # kept only after a run that committed; any failure forgets it.
        memory = self._memories.setdefault(batch, {})
        committing = False
        try:
            async with pool.acquire() as conn:
                run = _Attempt(conn)
                began = time.perf_counter()
                try:
                    try:
                        # Remembering, a batch may write with its first statement.
                        warm = bool(memory.get("states"))
                        try:
                            values = await _run_op(run, batch(calls, memory))
                        except _AGAIN:
                            if not warm:
                                raise
                            # Something it remembered changed (another node wrote): read.
                            forget(memory)
                            await self._lost_race(run)
                            run = _Attempt(conn)
                            warm = False
                            values = await _run_op(run, batch(calls, memory))
                    except _AGAIN:
                        forget(memory)
                        await self._lost_race(run)
                        run = _Attempt(conn)
                        await run.begin()  # the batch then locks what it reads
                        values = await _run_op(run, batch(calls, memory))
                except BaseException as exc:
                    forget(memory)
                    lost = isinstance(exc, asyncpg.InterfaceError) and conn.is_closed()
                    if (lost or isinstance(exc, _CONNECTION_ERRORS)) and run.tx is None:
                        # Its last statement may have written: a batch that read first
                        # wrote with its second, one that remembered with its first.
                        committing = run.outside > (0 if warm else 1)
                    if run.tx is not None:
                        with contextlib.suppress(*_CONNECTION_ERRORS, asyncpg.InterfaceError):
                            await run.tx.rollback()
                    raise
                if run.tx is not None:
                    committing = True
                    try:
                        await run.tx.commit()
                    except BaseException:
                        forget(memory)
                        raise
                _COMMIT.observe(time.perf_counter() - began)
                _BATCH.observe(len(group))
        except Exception as exc:
            await self._failed(pool, group, exc, committing)
            return
        for waiting, (ok, value) in zip(group, values, strict=True):
            if ok:
                waiting.settle(value)
            else:
                waiting.settle(error=value)

    def _served_alone(
        self, op: Callable[..., Op[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        """Whether a call of a batch that comes alone runs as a batch of one: only when the
        batch serves it from its memory (``sql.batched``'s ``alone``; for a message, one
        statement). Otherwise it runs as its operation (for a message, its own read and
        one-statement write: less than the batch's read and write of one), and the batch
        has forgotten what it will write (without ``alone``, everything)."""
        batch = batch_of(op)
        memory = self._memories.get(batch) if batch is not None else None
        if not memory or batch is None:
            return False
        hook = alone_hook(batch)
        try:
            if hook is None:
                raise LookupError("no alone hook")
            return hook((op, args, kwargs), memory)
        except LookupError:  # (an operation the batch does not know: a test's wrapper)
            forget(memory)
            return False

    async def _lost_race(self, run: _Attempt) -> None:
        if run.tx is not None:
            await run.tx.rollback()
        self.retries += 1
        _RETRIES.inc()

    async def _batch(
        self, conn: Conn, unit: list[_Waiting],
        outcomes: list[tuple[_Waiting, Any, BaseException | None]],
    ) -> bool:  # fmt: skip
        """``unit``'s calls (of one batch, ``sql.batched``) as ONE operation in the group's
        transaction, under its savepoint just taken, with nothing remembered (other nodes
        write too). False when the batch failed (a conversation changed since the batch read
        it, a lost race, an error of its own): rolled back to the savepoint, the calls then
        run one by one."""
        batch = batch_of(unit[0].op)
        assert batch is not None
        run = _Attempt(conn, grouped=True)
        run.tx = True  # a call the batch leaves to its operation runs it in the transaction
        calls = [(w.op, w.args, w.kwargs) for w in unit]
        try:
            values = await _run_op(run, batch(calls, {}))
        except Exception as exc:
            if isinstance(exc, _CONNECTION_ERRORS) or conn.is_closed():
                raise  # the group's connection: nothing of it was written
            log.debug("a batch of %d writes failed, each runs alone: %r", len(unit), exc)
            await conn.execute("ROLLBACK TO SAVEPOINT grouped")
            return False
        for waiting, (ok, value) in zip(unit, values, strict=True):
            outcomes.append((waiting, value, None) if ok else (waiting, None, value))
        return True

    def _unavailable(self, exc: StoreUnavailable) -> None:
        _UNAVAILABLE.inc()
        self._availability.failing(None, "database unavailable: %s", exc)

    async def _attempts(
        self, pool: asyncpg.Pool, op: Callable[..., Op[Any]], args: tuple[Any, ...],
        kwargs: dict[str, Any], write: bool,
    ) -> Any:  # fmt: skip
        # A short read and a lazy write start without a transaction: each statement its own
        # (no BEGIN, no COMMIT: two round trips), until a lazy write asks for one.
        outside = (not write and is_short_read(op)) or (write and is_lazy_transaction(op))
        attempt = uniques = 0
        while True:
            attempt += 1
            committing = lost = False
            try:
                async with pool.acquire() as conn:
                    run = _Attempt(conn)
                    try:
                        began = time.perf_counter()
                        if not outside:
                            await run.begin(
                                **(
                                    {}
                                    if write
                                    else {"isolation": "repeatable_read", "readonly": True}
                                )
                            )
                        result = await _run_op(run, op(*args, **kwargs))
                    except BaseException as exc:
                        # "connection is closed" is an InterfaceError, as are mere misuses
                        # (a wrong argument type): only the connection's state tells them apart.
                        lost = isinstance(exc, asyncpg.InterfaceError) and conn.is_closed()
                        # Outside a transaction, a lazy write's statement after its first may
                        # have been its write: lost there, its outcome is unknown.
                        committing = write and run.tx is None and run.outside > 1
                        if run.tx is not None:
                            with contextlib.suppress(*_CONNECTION_ERRORS, asyncpg.InterfaceError):
                                await run.tx.rollback()
                        raise
                    if run.tx is not None:
                        committing = True
                        await run.tx.commit()
                    if write:
                        _COMMIT.observe(time.perf_counter() - began)
                        _BATCH.observe(1)
                    return result
            except _RERUN as exc:
                if isinstance(exc, Conflict):
                    outside = False  # again, in a transaction from the start: no more guessing
                # A re-run sees the winner of a unique race; one that still collides is the
                # operation's own conflict, reported as it is.
                uniques += isinstance(exc, asyncpg.UniqueViolationError)
                if uniques >= 2:
                    raise UniqueViolation(str(exc)) from exc
                if attempt >= MAX_RETRIES:
                    raise
            except Exception as exc:
                if not (lost or isinstance(exc, _CONNECTION_ERRORS)):
                    raise
                if (write and committing) or attempt >= 3:
                    raise StoreUnavailable(f"postgresql unavailable: {exc!r}") from exc
            self.retries += 1
            _RETRIES.inc()
            # Jittered backoff so retrying writers do not collide again in lockstep.
            await asyncio.sleep(backoff(attempt, RETRY_BASE_SECONDS, RETRY_CAP_SECONDS, least=0.0))
