"""The embedded SQLite store: one file, WAL mode, one writer thread with group commit.

Why a writer thread: a commit costs 30-200 µs of disk work, which must never run on the event
loop. All writes go through one thread (SQLite allows one writer anyway); it takes every
queued operation, runs them all in one transaction, commits once and only then resolves the
callers' futures. A burst of N writes costs one commit (reference performance-notes §6.5: 113k
rows/s at 16 callers vs 34k with a commit per row); while writes arrive densely it waits a
fraction of a millisecond for one more before it commits (:mod:`.sqlite_gather`). A failing
operation undoes its own work only: see :meth:`SQLiteStore._run_batch` for how, without a
SAVEPOINT per operation. Being the only writer, the thread also keeps the event log's stream
heads (:mod:`.sqlite_heads`).

Reads run on a small pool of threads, each with its own read-only connection; WAL lets them
see the last committed state while the writer works. A short read (``sql.short_read``: a few
indexed rows) runs on the event loop's own read-only connection instead: a WAL reader never
waits for the writer, and the hop to a reader thread (a future, a thread wake-up, two GIL
hand-overs) costs more than the read. Should it ever meet a busy database (recovery after a
crash), it goes to the pool rather than wait on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .. import metrics
from ..logs import StateLog
from .base import Store, StoreUnavailable, UniqueViolation
from .schema import SQLITE_MIGRATIONS
from .sql import (
    ATOMIC,
    DIALECT,
    LAST_ROWID,
    NEXT_OFFSETS,
    OUTSIDE,
    Op,
    Rows,
    batch_of,
    is_short_read,
)
from .sqlite_checkpoint import Checkpointer, backstop
from .sqlite_gather import GATHER_SECONDS, Gathering
from .sqlite_heads import StreamHeads, upsert

T = TypeVar("T")

MAX_BATCH = 512
# Prepared statements kept per connection (the default, 128, is fewer than the distinct SQL
# texts the operations use, so hot statements were re-prepared).
STATEMENT_CACHE = 1024
MAX_PENDING_WRITES = 10_000
log = logging.getLogger("inboxgate.store")
_READ = metrics.HotHistogram(metrics.STORE_READ.labels("sqlite"))
_WRITE = metrics.HotHistogram(metrics.STORE_WRITE.labels("sqlite"))
_COMMIT = metrics.STORE_COMMIT.labels("sqlite")
_BATCH = metrics.STORE_WRITE_BATCH.labels("sqlite")
_WRITER_CPU = metrics.STORE_WRITER_CPU.labels("sqlite")
_UNAVAILABLE = metrics.STORE_UNAVAILABLE.labels("sqlite")


_DIALECT: Rows = [("sqlite",)]
_INSIDE: Rows = [(False,)]


def _as_is(value: bytes | bool | None) -> bytes | bool | None:
    return value


# The sqlite3 module binds an int, float, str or bytearray as it is, but asks its adapters
# about any other value: None, a bool, bytes. Finding none registered, it looks for an
# ``__adapt__`` on its protocol class, whose failed lookup builds an AttributeError with a
# formatted message, then drops it and binds the value as it is. A message's write binds
# four such values (two NULLs, a bool, the event's payload), whose lookups were 3% of the
# writer's instructions under callgrind (about 0.3 µs a value, timed alone: a 4-value
# statement 2.2-2.6 µs without adapters, 1.4 with). Registered, the adapter answers the
# value as it is: the same binding, one dictionary lookup and one call. (Process-wide, as
# the module's adapters are; a value bound as it is before is bound as it is after.)
for _type in (type(None), bool, bytes):
    sqlite3.register_adapter(_type, _as_is)


def _run_op(
    conn: sqlite3.Connection | sqlite3.Cursor, gen: Op[Any], heads: StreamHeads | None = None
) -> Any:
    """Feed ``gen`` from ``conn``; ``heads``: the writer's copy of the streams' heads."""
    last: sqlite3.Cursor | None = None  # the cursor of the last statement run
    try:
        query = next(gen)
        while True:
            if query is DIALECT:
                result = _DIALECT
            elif query is ATOMIC:  # every write runs in the batch's transaction
                result = []
            elif query is OUTSIDE:
                result = _INSIDE
            elif query is LAST_ROWID:
                if last is None:
                    raise RuntimeError("LAST_ROWID asked before any statement ran")
                result = [(last.lastrowid,)]
            elif query.sql is NEXT_OFFSETS:
                streams = query.params
                result = upsert(conn, streams) if heads is None else heads.next(conn, streams)
            else:
                last = conn.execute(query.sql, tuple(query.params))
                result = last.fetchall()
            query = gen.send(result)
    except StopIteration as stop:
        return stop.value


# Extended result codes of a broken UNIQUE or PRIMARY KEY constraint (a foreign key or CHECK
# failure is an IntegrityError too, but a bug, not a lost race: it stays as it is).
_UNIQUE_ERRORS = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _neutral(exc: Exception) -> Exception:
    """The operation's failure as callers see it from every engine."""
    if isinstance(exc, sqlite3.IntegrityError) and exc.sqlite_errorname in _UNIQUE_ERRORS:
        neutral = UniqueViolation(str(exc))
        neutral.__cause__ = exc
        return neutral
    return exc


OnCommit = Callable[[Any], None] | None


class _WriteJob:
    __slots__ = ("args", "at", "future", "kwargs", "loop", "on_commit", "op")

    def __init__(
        self,
        op: Callable[..., Op[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        on_commit: OnCommit,
        at: float,
    ) -> None:
        self.op = op
        self.args = args
        self.kwargs = kwargs
        self.loop = loop
        self.future = future
        self.on_commit = on_commit
        self.at = at  # when it was submitted (perf_counter): the writer spaces its commits by it


def _wrote(conn: sqlite3.Connection, heads: StreamHeads, mark: tuple[int, int]) -> bool:
    """Whether anything was written since ``mark`` (the change count and the heads' advances
    then), or the transaction is gone (an I/O error rolled it back)."""
    return conn.total_changes != mark[0] or heads.advances != mark[1] or not conn.in_transaction


def _run_together(
    conn: sqlite3.Connection, batch: list[_WriteJob], heads: StreamHeads
) -> list[tuple[bool, Any]] | None:
    """Every operation of ``batch`` in the open transaction, none in a savepoint; None as soon
    as one fails having written something (its writes cannot be undone alone): a row, or a
    stream head it advanced. Consecutive calls of operations ``batched`` together run as one
    operation (``sql.batched``), with the memory the writer keeps for it in ``heads``."""
    outcomes: list[tuple[bool, Any]] = []
    cursor = conn.cursor()  # one for every statement: a cursor made and freed per statement costs
    at = 0
    while at < len(batch):
        job, end = batch[at], at + 1
        together = batch_of(job.op)
        while together is not None and end < len(batch) and batch_of(batch[end].op) is together:
            end += 1
        mark = (conn.total_changes, heads.advances)
        if together is not None:
            calls = [(j.op, j.args, j.kwargs) for j in batch[at:end]]
            memory = heads.batches.get(together)
            if memory is None:  # another batch wrote last: what any other remembers may be old
                heads.batches.clear()
                memory = heads.batches[together] = {}
            try:
                values = _run_op(cursor, together(calls, memory), heads)
            except Exception:
                heads.batches.clear()
                if _wrote(conn, heads, mark):
                    return None
                end = at + 1  # nothing written: the calls run one by one instead
            else:
                outcomes += [(ok, value if ok else _neutral(value)) for ok, value in values]
                at = end
                continue
        # What any other operation writes may change what a batch remembers.
        heads.batches.clear()
        try:
            value = _run_op(cursor, job.op(*job.args, **job.kwargs), heads)
        except Exception as exc:
            if _wrote(conn, heads, mark):
                return None
            outcomes.append((False, _neutral(exc)))  # it left nothing behind
        else:
            outcomes.append((True, value))
        at = end
    return outcomes


def _run_isolated(
    conn: sqlite3.Connection, batch: list[_WriteJob], heads: StreamHeads
) -> list[tuple[bool, Any]]:
    """Every operation of ``batch`` in a savepoint of its own: a failing one undoes only its
    own work. The heads advanced before each savepoint are written first, so that the table
    is the truth again once a failed operation has been rolled back (its copy is dropped)."""
    outcomes: list[tuple[bool, Any]] = []
    heads.batches.clear()  # the operations run alone here, each as itself
    for job in batch:
        heads.flush(conn)
        conn.execute("SAVEPOINT op")
        try:
            value = _run_op(conn, job.op(*job.args, **job.kwargs), heads)
        except Exception as exc:  # the operation's own failure: undo only its work
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            heads.forget()
            outcomes.append((False, _neutral(exc)))
        else:
            conn.execute("RELEASE op")
            outcomes.append((True, value))
    return outcomes


Settled = tuple[asyncio.Future[Any], bool, Any, OnCommit]


def _resolve(settled: list[Settled]) -> None:
    """On the loop: settle every future of one committed batch (one wake-up for all). A
    write's ``on_commit`` runs here, not when its caller resumes: that is a turn of the loop
    later (the future's callbacks are scheduled, not run), which a busy loop makes long, and
    what it sets off (the events' fan-out) would wait for it."""
    for future, ok, value, on_commit in settled:
        if ok and on_commit is not None:
            try:
                on_commit(value)
            except Exception as exc:  # as if raised where the caller would have called it
                ok, value = False, exc
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class SQLiteStore(Store):
    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "full",
        readers: int = 2,
        clock: Callable[[], float] = time.time,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.path = str(path)
        self._gathering = Gathering(gather_seconds)  # used by the writer thread only
        self.synchronous = synchronous.upper()
        self.clock = clock
        self._readers = readers
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_ready = threading.Event()  # the writer's connection is open (or failed to)
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._loop_local = threading.local()  # the short reads' connection, per loop thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._pending: asyncio.Semaphore | None = None
        self._closed = True
        self.batches = 0
        self.batched_ops = 0
        self.replayed_batches = 0  # batches run again op by op after an op failed mid-write
        self._heads = StreamHeads()  # used by the writer thread only
        self._commits = StateLog(log)  # used by the writer thread only
        self._checkpointer = Checkpointer(lambda: self._connect(readonly=False))

    # -- connections ---------------------------------------------------------------------

    def _connect(self, *, readonly: bool, busy_timeout: int = 5000) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False,
            cached_statements=STATEMENT_CACHE,
        )  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        else:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            # A statement that writes several rows keeps a statement journal (the pages it
            # changes, to undo it alone should it fail): in memory, not a temporary file
            # created, written and deleted per statement (a batch of messages has three).
            conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _reader_conn(self, local: threading.local | None = None) -> sqlite3.Connection:
        local = local or self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            # The loop's connection never waits for a lock: it hands the read to the pool.
            conn = self._connect(
                readonly=True, busy_timeout=0 if local is self._loop_local else 5000
            )
            local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        if not self._closed:
            return
        if self.path == ":memory:":
            raise ValueError("SQLiteStore needs a file: readers and the writer share it")
        await asyncio.to_thread(self._migrate_sync)
        self._pending = asyncio.Semaphore(MAX_PENDING_WRITES)
        self._closed = False
        self._writer_ready.clear()
        self._writer = threading.Thread(target=self._writer_main, name="sqlite-writer", daemon=True)
        self._writer.start()
        self._checkpointer.start()
        self._reader_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sqlite-reader")
        # Opening, the writer's and the checkpointer's connections set the journal mode, which
        # locks the file a moment: until both are open, a read on the loop (which never waits
        # for a lock) could find it busy (1 start in 50 did; data_version answered None).
        await asyncio.to_thread(self._wait_connected)

    def _wait_connected(self) -> None:
        self._writer_ready.wait()
        self._checkpointer.ready.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        writer = self._writer
        if writer is not None:
            await asyncio.to_thread(writer.join)
        await asyncio.to_thread(self._checkpointer.stop)
        if self._reader_pool is not None:
            self._reader_pool.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._local = threading.local()
        self._loop_local = threading.local()

    async def migrate(self) -> list[int]:
        return await asyncio.to_thread(self._migrate_sync)

    def _migrate_sync(self) -> list[int]:
        conn = self._connect(readonly=False)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, statements in sorted(SQLITE_MIGRATIONS, key=lambda m: m[0]):
                if version in done:
                    continue
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
                        (version, name, time.time()),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                applied.append(version)
            return applied
        finally:
            conn.close()

    # -- operations ----------------------------------------------------------------------

    async def write(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        return await self._submit(None, op, args, kwargs)

    async def write_on_commit(
        self, on_commit: Callable[[T], None], op: Callable[..., Op[T]], *args: Any, **kwargs: Any
    ) -> T:
        return await self._submit(on_commit, op, args, kwargs)

    async def _submit(
        self,
        on_commit: Callable[[T], None] | None,
        op: Callable[..., Op[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        if self._closed or self._pending is None:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        async with self._pending:
            if self._closed:  # closed while this write waited for a slot: the writer is gone
                raise StoreUnavailable("the store is closed")
            future: asyncio.Future[T] = loop.create_future()
            self._jobs.put(_WriteJob(op, args, kwargs, loop, future, on_commit, started))
            # The writer resolves the future only after COMMIT: awaiting it is the durability ack.
            # It runs every queued job whatever became of the caller: a cancelled caller cancels
            # only the future (``_resolve`` skips it), never the write. So no shield, which cost
            # a second future and a second turn of the loop on every write.
            try:
                return await future
            finally:
                _WRITE.observe(time.perf_counter() - started)

    async def read(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        if self._closed or self._reader_pool is None:
            raise StoreUnavailable("the store is closed")
        started = time.perf_counter()
        try:
            if is_short_read(op):
                try:
                    return self._read_here(op, args, kwargs)
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF not in (
                        sqlite3.SQLITE_BUSY,
                        sqlite3.SQLITE_LOCKED,
                    ):
                        raise
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._reader_pool, self._read_sync, op, args, kwargs)
        finally:
            _READ.observe(time.perf_counter() - started)

    def _read_here(
        self, op: Callable[..., Op[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        """A short read on the calling (loop) thread; its statements autocommit (a short read
        needs no common snapshot), so no transaction is left open on the loop's connection."""
        result: T = _run_op(self._reader_conn(self._loop_local), op(*args, **kwargs))
        return result

    def data_version(self) -> object | None:
        """``PRAGMA data_version`` of the loop's read connection, which changes with every
        commit of any other connection or process (a few microseconds: a read lock, no page
        read). The token holds the connection too: numbers of two connections never compare
        equal. None when closed or when the database is busy (recovery)."""
        if self._closed:
            return None
        conn = self._reader_conn(self._loop_local)
        try:
            row = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.OperationalError:
            return None
        return (conn, row[0])

    def _read_sync(
        self, op: Callable[..., Op[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        conn = self._reader_conn()
        conn.execute("BEGIN")  # one snapshot for every query of the operation
        try:
            result: T = _run_op(conn, op(*args, **kwargs))
        finally:
            conn.execute("COMMIT")
        return result

    # -- the writer thread ---------------------------------------------------------------

    def _writer_main(self) -> None:
        try:
            conn = self._connect(readonly=False)
            backstop(conn)  # the checkpoints run on their own thread, not in the acks' COMMIT
        finally:
            self._writer_ready.set()
        self._heads = StreamHeads()  # a copy per connection: data_version is per connection
        try:
            stop = False
            while not stop:
                first = self._jobs.get()
                if first is None:
                    break
                batch, stop = self._take_batch(first)
                self._run_batch(conn, batch)
        finally:
            conn.close()

    def _take_batch(self, first: _WriteJob) -> tuple[list[_WriteJob], bool]:
        """``first`` and the jobs queued behind it; once none is left, when writes have been
        coming close together, a wait for one more (:mod:`.sqlite_gather`). True: the store
        is closing (after this batch)."""
        jobs, gathering = self._jobs, self._gathering
        gathering.arrived(first.at)
        batch = [first]
        waited = False
        while len(batch) < MAX_BATCH:
            try:
                job = jobs.get_nowait()
            except queue.Empty:
                seconds = 0.0 if waited else gathering.wait()
                if seconds <= 0:
                    break
                waited = True
                try:
                    job = jobs.get(timeout=seconds)
                except queue.Empty:
                    gathering.waited(False)
                    break
                gathering.waited(True)
            if job is None:
                return batch, True
            gathering.arrived(job.at)
            batch.append(job)
        return batch, False

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_WriteJob]) -> None:
        """Run ``batch`` in one transaction and commit it.

        The operations first run one after the other with nothing between them. A SAVEPOINT
        per operation costs more than most operations' own statements (SQLite copies every
        page an operation first touches into the savepoint's journal: about a quarter of the
        writer's time on a customer's message), and operations seldom fail after writing: a
        failure is nearly always a check (not found, flooded) before the first write, or a
        statement that failed and, as every SQLite statement does, undid its own rows. Either
        way nothing of the failing operation is left (the connection's change count did not
        move), so the batch goes on. Only when an operation fails after writing, the whole
        transaction (nothing committed yet) rolls back and every operation runs again, each in
        a savepoint of its own, as fresh generators (every write operation is re-runnable: the
        PostgreSQL store re-runs one after a serialization failure)."""
        started, cpu = time.perf_counter(), time.thread_time()
        heads = self._heads
        try:
            conn.execute("BEGIN IMMEDIATE")
            heads.check(conn)
            outcomes = _run_together(conn, batch, heads)
            if outcomes is None:
                self.replayed_batches += 1
                heads.forget()
                if conn.in_transaction:  # an I/O error may have rolled it back already
                    conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = _run_isolated(conn, batch, heads)
            heads.flush(conn)
            conn.execute("COMMIT")
            self._checkpointer.committed()
        except sqlite3.Error as exc:
            heads.forget()
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"sqlite commit failed: {exc}")
            outcomes = [(False, failure)] * len(batch)
            _UNAVAILABLE.inc(len(batch))
            self._commits.failing(None, "database unavailable: %s", failure)
        else:
            _COMMIT.observe(time.perf_counter() - started)
            _BATCH.observe(len(batch))
            self._commits.recovered(None, "database available again (%d failed commits)")
        # The writer is the node's one lane for writes: its own CPU per write is what a write
        # costs the core, whatever the load (a clock call per batch).
        _WRITER_CPU.inc(time.thread_time() - cpu)
        self.batches += 1
        self.batched_ops += len(batch)
        # One call_soon_threadsafe per loop and batch, not per job: each is a wake-up of the
        # loop (a write to its self-pipe) and a GIL hand-over.
        by_loop: dict[asyncio.AbstractEventLoop, list[Settled]] = {}
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, ok, value, job.on_commit))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting
                loop.call_soon_threadsafe(_resolve, settled)
