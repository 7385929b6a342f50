"""SQLiteStore: the Store contract, plus what only the embedded engine promises (WAL, the
synchronous setting, read-only readers, group commit)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gateway.domain import events, incoming
from gateway.domain import provisioning as prov
from gateway.domain.messages import MessageResult
from gateway.store import SQLiteStore
from gateway.store.schema import SQLITE_MIGRATIONS
from gateway.store.sql import Op, execute, last_rowid, rows, scalar
from gateway.store.sqlite import _run_op
from tests.store_contract import (
    T0,
    StoreContract,
    StoreFactory,
    make_world,
    new_conversation,
    send,
)
from tests.store_hot_path import HotPathContract

pytestmark = pytest.mark.anyio


class TestSQLiteStore(StoreContract, HotPathContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: SQLiteStore(tmp_path / "db" / "inboxgate.db")


def pragma(name: str) -> Op[object]:
    return (yield from scalar(f"PRAGMA {name}"))


async def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    async with SQLiteStore(path) as store:
        assert await store.write(pragma, "journal_mode") == "wal"
        await make_world(store)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
    finally:
        conn.close()


@pytest.mark.parametrize(("setting", "level"), [("off", 0), ("normal", 1), ("full", 2)])
async def test_synchronous_setting_is_honoured(tmp_path: Path, setting: str, level: int) -> None:
    async with SQLiteStore(tmp_path / "s.db", synchronous=setting) as store:
        assert await store.write(pragma, "synchronous") == level


async def test_default_synchronous_is_full(sqlite_store: SQLiteStore) -> None:
    assert await sqlite_store.write(pragma, "synchronous") == 2


async def test_readers_are_read_only(sqlite_store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await sqlite_store.read(
            execute, "INSERT INTO accounts (name, created_at, updated_at) VALUES ('x', 0, 0)"
        )
    assert await sqlite_store.read(pragma, "query_only") == 1


async def test_migrate_before_start_then_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "m.db")
    assert await store.migrate() == [v for v, _, _ in SQLITE_MIGRATIONS]
    assert await store.migrate() == []
    await store.start()
    try:
        assert await store.migrate() == []
    finally:
        await store.close()


async def test_memory_database_is_refused() -> None:
    with pytest.raises(ValueError, match="file"):
        await SQLiteStore(":memory:").start()


async def test_start_twice_and_restart(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "r.db")
    await store.start()
    await store.start()
    w = await make_world(store)
    await store.close()
    await store.start()  # the same instance can start again
    try:
        assert await store.read(pragma, "query_only") == 1
        conv = (await new_conversation(store, w.inbox, w.session)).conversation
        assert conv.display_id == 1
    finally:
        await store.close()


async def test_group_commit_batches_concurrent_writes(sqlite_store: SQLiteStore) -> None:
    w = await make_world(sqlite_store)
    conv = (await new_conversation(sqlite_store, w.inbox, w.session)).conversation
    batches, ops = sqlite_store.batches, sqlite_store.batched_ops
    results = await asyncio.gather(
        *[send(sqlite_store, conv, w.contact.id, f"m{i}", now=T0) for i in range(200)]
    )
    assert len({r.message.id for r in results}) == 200
    assert sqlite_store.batched_ops - ops == 200
    assert sqlite_store.batches - batches < 200


async def test_a_queued_write_completes_though_its_caller_is_cancelled(
    sqlite_store: SQLiteStore,
) -> None:
    """Cancelling a caller cancels its wait, never its write: once queued, it commits (with
    its batch), and the store goes on serving."""
    w = await make_world(sqlite_store)
    conv = (await new_conversation(sqlite_store, w.inbox, w.session)).conversation
    callers = [
        asyncio.create_task(send(sqlite_store, conv, w.contact.id, f"m{i}", echo_id=f"e{i}"))
        for i in range(50)
    ]
    await asyncio.sleep(0)  # each caller has queued its write and waits for the ack
    for caller in callers:
        caller.cancel()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)
    # The writer takes jobs in order: the ack of a later write follows their commit.
    await send(sqlite_store, conv, w.contact.id, "after", echo_id="after")
    count = await sqlite_store.read(
        scalar, "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", conv.id
    )
    assert count == 51
    again = await send(sqlite_store, conv, w.contact.id, "m0", echo_id="e0")
    assert not again.created  # the cancelled caller's message, as a retry finds it


async def test_a_commit_sets_off_its_events_though_its_caller_is_cancelled(
    sqlite_store: SQLiteStore,
) -> None:
    """``on_commit`` runs where the writer's batch is settled on the loop, not in the caller:
    a cancelled caller's message is still published (before, its events waited for a caller
    that never resumed, and reached the sockets only once the hub healed the stream from the
    log: a later event showing the gap, or the reconcile every few seconds)."""
    w = await make_world(sqlite_store)
    conv = (await new_conversation(sqlite_store, w.inbox, w.session)).conversation
    published: list[int] = []

    def on_commit(result: MessageResult) -> None:
        published.append(result.message.id)

    async def post(i: int) -> MessageResult:
        return await sqlite_store.write_on_commit(
            on_commit, incoming.create_incoming, conv.id, w.contact.id, f"m{i}", f"e{i}", [],
            1000, lambda _: "", T0,
        )  # fmt: skip

    callers = [asyncio.create_task(post(i)) for i in range(20)]
    await asyncio.sleep(0)  # each has queued its write
    for caller in callers[::2]:
        caller.cancel()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert sum(isinstance(o, asyncio.CancelledError) for o in outcomes) == 10
    await sqlite_store.write(scalar, "SELECT 1")  # queued after them: their batch is settled
    ids = await sqlite_store.read(
        rows, "SELECT id FROM messages WHERE conversation_id = ? ORDER BY id", conv.id
    )
    assert published == [i for (i,) in ids] and len(published) == 20


async def test_on_commit_runs_before_the_callers_next_step(sqlite_store: SQLiteStore) -> None:
    """The order on the loop: every write of a batch has its ``on_commit`` run in the one
    callback that settles the batch, before any of their callers resumes."""
    order: list[str] = []

    async def write(name: str) -> None:
        await sqlite_store.write_on_commit(
            lambda _: order.append(f"{name} committed"), prov.create_account, name, T0
        )
        order.append(f"{name} resumed")

    await asyncio.gather(*(write(n) for n in ("a", "b", "c")))
    assert order[:3] == ["a committed", "b committed", "c committed"]
    assert sorted(order[3:]) == ["a resumed", "b resumed", "c resumed"]


def writer_temp_store() -> Op[object]:
    return (yield from scalar("PRAGMA temp_store"))


async def test_the_writer_keeps_statement_journals_in_memory(sqlite_store: SQLiteStore) -> None:
    """A statement writing several rows (a batch of messages has three) journals the pages it
    changes: in memory (2), not in a temporary file made and deleted per statement."""
    assert await sqlite_store.write(writer_temp_store) == 2


def rows_and_their_last_id(names: list[str]) -> Op[tuple[int, list[int]]]:
    """A multi-row INSERT, the engine's answer to ``last_rowid``, and the ids as the table has
    them; then the same question after a statement that inserted nothing."""
    yield from execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)")
    yield from execute("INSERT INTO t (name) VALUES " + ", ".join(["(?)"] * len(names)), *names)
    last = yield from last_rowid()
    ids = yield from scalar("SELECT group_concat(id) FROM t WHERE name LIKE 'r%'")
    yield from execute("UPDATE t SET name = name WHERE id < 0")
    after = yield from last_rowid()
    assert after == last  # SQLite's rule: only an INSERT moves it
    return last, [int(i) for i in str(ids).split(",")]


def the_last_id_before_any_statement() -> Op[int]:
    return (yield from last_rowid())


async def test_the_engine_tells_the_last_inserted_rowid(sqlite_store: SQLiteStore) -> None:
    """``sql.last_rowid`` is answered from the cursor of the INSERT that ran before it (no
    statement of its own): the id of the last of its rows, in the writer's batch and alone."""
    first = sqlite_store.write(rows_and_their_last_id, ["r1", "r2", "r3"])
    second = sqlite_store.write(rows_and_their_last_id, ["r4"])
    (last, ids), (last_again, ids_again) = await asyncio.gather(first, second)
    assert last == max(ids) == 3 and ids == [1, 2, 3]
    assert last_again == max(ids_again) == 4
    with pytest.raises(RuntimeError, match="before any statement"):
        await sqlite_store.write(the_last_id_before_any_statement)


def bound_as_they_are(values: list[object]) -> Op[list[tuple[object, ...]]]:
    got: list[tuple[object, ...]] = []
    for value in values:
        got += yield from rows("SELECT ?, typeof(?)", value, value)
    return got


async def test_none_bools_and_bytes_bind_as_they_are_through_registered_adapters(
    sqlite_store: SQLiteStore,
) -> None:
    """The store registers an adapter for the values the sqlite3 module would otherwise send
    through its slow lookup (an error formatted and dropped per value): each binds exactly
    as before, in the writer and in a read."""
    for kind in (type(None), bool, bytes):
        assert (kind, sqlite3.PrepareProtocol) in sqlite3.adapters
    values: list[object] = [None, True, False, b"\x00payload\xff", b""]
    expected = [(None, "null"), (1, "integer"), (0, "integer"),
                (b"\x00payload\xff", "blob"), (b"", "blob")]  # fmt: skip
    assert await sqlite_store.write(bound_as_they_are, values) == expected
    assert await sqlite_store.read(bound_as_they_are, values) == expected


async def test_the_streams_appended_lately_are_each_named_once(sqlite_store: SQLiteStore) -> None:
    for at, stream in enumerate(["a", "b", "a"]):
        await sqlite_store.write(events.append, "x", {"n": at}, [stream], 100.0 + at)
    assert sorted(await sqlite_store.read(events.streams_appended_since, 100.5)) == ["a", "b"]


async def test_a_prune_costs_what_it_drops_not_the_length_of_the_log(tmp_path: Path) -> None:
    """SQLite keeps the entries' foreign key to their event: each event a prune deletes is
    looked up among the entries, by their event index (a scan of the whole log each without
    it). Counted in SQLite's virtual machine steps, which no timing moves: dropping 100 events
    of a log of 20,000 entries takes a few thousand, where a scan per event took millions."""
    path = tmp_path / "log.db"
    await SQLiteStore(path).migrate()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO events (id, name, payload, created_at) VALUES (?, 'x', x'00', ?)",
        [(i, float(i)) for i in range(1, 10_001)],
    )
    conn.executemany(
        "INSERT INTO stream_entries VALUES (?, ?, ?, ?)",
        [(stream, i, i, float(i)) for i in range(1, 10_001) for stream in ("a", "b")],
    )
    conn.execute("COMMIT")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    conn.execute("BEGIN")
    dropped = _run_op(conn, events.prune(101.0))
    conn.execute("COMMIT")
    conn.set_progress_handler(None, 0)
    assert dropped == 200
    left = conn.execute("SELECT MIN(id), COUNT(*) FROM events").fetchone()
    assert left == (101, 9_900)
    assert steps < 50_000, steps
    conn.close()
