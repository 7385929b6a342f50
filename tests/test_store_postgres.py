"""PostgresStore: the Store contract on a real PostgreSQL, plus what several nodes sharing one
database need: concurrent writers on two stores (display ids, stream offsets, echo_id), the
webhook outbox claimed by two stores at once, migrations racing, and an unreachable server
(fast StoreUnavailable, then recovery)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.domain import events, outbox
from gateway.settings import Settings
from gateway.store import SQLiteStore, StoreUnavailable, open_store
from gateway.store.postgres import PostgresStore, to_dollar
from gateway.store.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS
from gateway.store.sql import Op, last_rowid
from tests.postgres_helpers import ADMIN_URL, TcpProxy, fresh_database
from tests.store_contract import (
    T0,
    StoreContract,
    StoreFactory,
    all_messages,
    make_session,
    make_world,
    new_conversation,
    send,
)
from tests.store_hot_path import HotPathContract

pytestmark = pytest.mark.anyio


class TestPostgresStore(StoreContract, HotPathContract):
    @pytest.fixture
    async def make_store(self) -> AsyncIterator[StoreFactory]:
        async with fresh_database() as url:
            yield lambda: PostgresStore(url)


# -- what only PostgreSQL has to show ---------------------------------------------------------


def test_placeholders_become_numbered_outside_quotes() -> None:
    assert to_dollar("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
    )
    assert to_dollar("SELECT '?', 'it''s ?', \"odd?col\" FROM t WHERE x = ?") == (
        "SELECT '?', 'it''s ?', \"odd?col\" FROM t WHERE x = $1"
    )
    assert to_dollar("SELECT ? -- why? because\n, ?") == "SELECT $1 -- why? because\n, $2"
    assert to_dollar("LIKE ? ESCAPE '\\' AND y = ?") == "LIKE $1 ESCAPE '\\' AND y = $2"
    assert to_dollar("SELECT 1") == "SELECT 1"


def test_open_store_selects_postgres_by_scheme(tmp_path: Path) -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        store = open_store(Settings(database_url=url, data_dir=tmp_path))
        assert isinstance(store, PostgresStore) and store.url == url


SQLITE_TYPES = {"INTEGER": "bigint", "REAL": "double precision", "TEXT": "text",
                "BOOLEAN": "boolean", "BLOB": "bytea"}  # fmt: skip


def columns_of_sqlite(path: Path) -> dict[str, dict[str, tuple[str, bool]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
        return {
            table: {
                r[1]: (SQLITE_TYPES[r[2]], bool(r[3]) or bool(r[5]))
                for r in conn.execute(f"PRAGMA table_info({table})")
            }
            for table in tables
        }
    finally:
        conn.close()


async def test_schema_matches_sqlite_column_by_column(tmp_path: Path) -> None:
    """Every SQLite migration has its PostgreSQL twin: same versions, tables, columns, types."""
    assert [v for v, _, _ in POSTGRES_MIGRATIONS] == [v for v, _, _ in SQLITE_MIGRATIONS]
    assert await SQLiteStore(tmp_path / "s.db").migrate() == [v for v, _, _ in SQLITE_MIGRATIONS]
    expected = columns_of_sqlite(tmp_path / "s.db")
    async with fresh_database() as url:
        await PostgresStore(url).migrate()
        conn = await asyncpg.connect(url)
        try:
            found: dict[str, dict[str, tuple[str, bool]]] = {}
            for r in await conn.fetch(
                "SELECT table_name, column_name, data_type, is_nullable = 'NO' "
                "FROM information_schema.columns WHERE table_schema = 'public'"
            ):
                found.setdefault(r[0], {})[r[1]] = (r[2], r[3])
        finally:
            await conn.close()
    del found["schema_migrations"], expected["schema_migrations"]  # each engine's own
    # SQLite's INTEGER PRIMARY KEY and the trigger-numbered account_users.id may be NULL there.
    for table, cols in expected.items():
        for name, (kind, _) in cols.items():
            cols[name] = (kind, found.get(table, {}).get(name, (kind, False))[1])
    assert found == expected


def an_id_asked_of_sqlite() -> Op[int]:
    return (yield from last_rowid())


async def test_an_operation_asking_sqlites_last_rowid_is_refused() -> None:
    """``sql.last_rowid`` belongs to SQLite's branches: on PostgreSQL (ids come back with
    RETURNING) an operation that asks it fails at once, nothing run as SQL."""
    async with fresh_database() as url, PostgresStore(url) as store:
        with pytest.raises(RuntimeError, match="SQLite's"):
            await store.write(an_id_asked_of_sqlite)


async def test_two_nodes_starting_together_migrate_once() -> None:
    async with fresh_database() as url:
        first, second = await asyncio.gather(
            PostgresStore(url).migrate(), PostgresStore(url).migrate()
        )
        assert sorted([first, second]) == [[], [v for v, _, _ in POSTGRES_MIGRATIONS]]


async def test_two_nodes_display_ids_unique_and_gap_free(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    world = await make_world(a)
    sessions = await asyncio.gather(*[
        make_session(a if i % 2 else b, world.inbox, f"device-{i}") for i in range(40)
    ])  # fmt: skip
    created = await asyncio.gather(*[
        new_conversation(a if i % 2 else b, world.inbox, session)
        for i, (session, _) in enumerate(sessions)
    ])  # fmt: skip
    assert sorted(c.conversation.display_id for c in created) == list(range(1, 41))


async def test_two_nodes_stream_offsets_unique_gap_free_in_commit_order(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    results = await asyncio.gather(*[
        send(a if i % 2 else b, conv, world.contact.id, f"m{i}", now=T0 + i) for i in range(200)
    ])  # fmt: skip
    assert len({r.message.id for r in results}) == 200
    for stream in (events.inbox_stream(world.inbox.id), events.session_stream(world.session.id)):
        mine = sorted(e.offset for r in results for e in r.events if e.stream == stream)
        assert mine == list(range(2, 202))  # offset 1: conversation.created
        log = await b.read(events.read_stream, stream)
        assert [e.offset for e in log] == list(range(1, 202))
        assert len({e.epoch for e in log}) == 1
        # Each offset names the event its writer was told about.
        told = {e.offset: e.payload for r in results for e in r.events if e.stream == stream}
        assert all(told[e.offset] == e.payload for e in log if e.offset > 1)
    assert a.retries + b.retries >= 0  # deadlocks between stream locks, if any, were retried


async def test_two_nodes_same_echo_id_stored_once(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    attempts = [
        send(node, conv, world.contact.id, f"hello {n}", echo_id=f"echo-{n}")
        for n in range(20) for node in (a, b, a, b)
    ]  # fmt: skip
    results = await asyncio.gather(*attempts)
    for n in range(20):
        mine = results[4 * n : 4 * n + 4]
        assert sum(r.created for r in mine) == 1
        assert len({r.message.id for r in mine}) == 1
    stored = await a.read(all_messages, conv.id)
    assert len(stored) == 20 + 0  # no activity message: just the twenty
    log = await a.read(events.read_stream, events.inbox_stream(world.inbox.id))
    assert [e.offset for e in log] == list(range(1, 22))


async def test_two_nodes_claim_each_delivery_once(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    world = await make_world(a, webhook_url="https://hooks.test/inbox")
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    await asyncio.gather(*[send(a, conv, world.contact.id, f"m{i}") for i in range(60)])
    pending = await a.read(outbox.list_deliveries)
    assert len(pending) >= 61

    async def worker(store: PostgresStore) -> list[int]:
        claimed: list[int] = []
        while True:
            batch = await store.write(outbox.claim, T0 + 1, 3, 60.0)
            claimed += [d.id for d in batch]
            # An empty batch may only mean another node leased this one's candidates first.
            due = await store.read(outbox.next_due)
            if not batch and (due is None or due > T0 + 1):
                return claimed

    claims = await asyncio.gather(*[worker(node) for node in (a, b, a, b, a, b)])
    every = [i for c in claims for i in c]
    assert sorted(every) == sorted(d.id for d in pending)  # each one, and only once
    assert sum(1 for c in claims if c) >= 2  # the nodes really did share the work


async def test_unreachable_server_fails_fast_then_recovers() -> None:
    target = urllib.parse.urlsplit(ADMIN_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        async with fresh_database() as url:
            store = PostgresStore(
                proxy.url(url), connect_timeout=0.5, command_timeout=1.0, op_timeout=2.0
            )
            async with store:
                world = await make_world(store)
                conv = (await new_conversation(store, world.inbox, world.session)).conversation
                before = await send(store, conv, world.contact.id, "before", echo_id="b")

                proxy.cut()  # the server is gone: connections dropped, new ones refused
                for op in (send(store, conv, world.contact.id, "x"),
                           store.read(all_messages, conv.id)):  # fmt: skip
                    started = time.monotonic()
                    with pytest.raises(StoreUnavailable):
                        await op
                    assert time.monotonic() - started < 1.5

                proxy.blackhole()  # the network swallows everything: bounded by the timeouts
                started = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    await send(store, conv, world.contact.id, "y")
                assert time.monotonic() - started < 3.0

                proxy.restore()
                after = await send(store, conv, world.contact.id, "after", echo_id="a")
                again = await send(store, conv, world.contact.id, "before", echo_id="b")
                assert again.message.id == before.message.id and not again.created
                stored = await store.read(all_messages, conv.id)
                assert [m.content for m in stored] == ["before", "after"]
                assert after.created
    finally:
        await proxy.close()


async def test_close_waits_for_running_writes_then_refuses() -> None:
    async with fresh_database() as url:
        store = PostgresStore(url)
        await store.start()
        world = await make_world(store)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        running = [asyncio.ensure_future(send(store, conv, world.contact.id, f"m{i}"))
                   for i in range(30)]  # fmt: skip
        await asyncio.sleep(0)
        await store.close()
        assert all(r.done() and r.result().created for r in running)
        with pytest.raises(StoreUnavailable):
            await store.read(all_messages, conv.id)
