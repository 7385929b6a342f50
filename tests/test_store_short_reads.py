"""SQLiteStore's short reads (``sql.short_read``): run on the calling loop's thread through a
read-only connection, never waiting there for a lock (a busy database sends the read to the
reader pool), and seeing every acknowledged write."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from gateway.domain import contacts, conversations
from gateway.domain.errors import NotFound
from gateway.services import conversations as public_conversations
from gateway.store import SQLiteStore
from gateway.store.sql import Op, execute, is_short_read, scalar, short_read
from tests.store_contract import T0, make_world, new_conversation, send

pytestmark = pytest.mark.anyio


def thread_of_read() -> Op[int]:
    yield from scalar("SELECT 1")
    return threading.get_ident()


@short_read
def short_thread_of_read() -> Op[int]:
    return (yield from thread_of_read())


@short_read
def short_count(table: str) -> Op[int]:
    return int((yield from scalar(f"SELECT COUNT(*) FROM {table}")))


@short_read
def short_insert() -> Op[None]:
    yield from execute("INSERT INTO accounts (name, created_at, updated_at) VALUES ('x', 0, 0)")


def test_the_hot_lookups_are_short_reads() -> None:
    assert is_short_read(contacts.get_session)
    assert is_short_read(conversations.member)
    assert is_short_read(conversations.reached)
    assert is_short_read(conversations.reached_ids)
    assert is_short_read(public_conversations.public_page)  # one page: bounded
    assert not is_short_read(conversations.session_conversations)  # every conversation: unbounded
    assert not is_short_read(thread_of_read)


async def test_a_short_read_runs_on_the_loop_thread(sqlite_store: SQLiteStore) -> None:
    here = threading.get_ident()
    assert await sqlite_store.read(short_thread_of_read) == here
    assert await sqlite_store.read(thread_of_read) != here  # other reads hop to the pool


async def test_a_short_read_is_read_only(sqlite_store: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await sqlite_store.read(short_insert)


async def test_a_short_read_sees_every_acknowledged_write(sqlite_store: SQLiteStore) -> None:
    world = await make_world(sqlite_store)
    conv = (await new_conversation(sqlite_store, world.inbox, world.session)).conversation
    for i in range(20):
        await send(sqlite_store, conv, world.contact.id, f"m{i}", now=T0 + i)
        assert await sqlite_store.read(short_count, "messages") == i + 1
    found = await sqlite_store.read(
        conversations.member, world.inbox.id, world.account.id, "device-1", conv.display_id
    )
    assert found is not None and found[2] is not None
    assert found[2].last_activity_at == T0 + 19


async def test_the_ids_of_what_a_session_reaches(sqlite_store: SQLiteStore) -> None:
    """``reached_ids``: what ``reached`` finds, as ids, with the same errors in the same order."""
    world = await make_world(sqlite_store)
    conv = (await new_conversation(sqlite_store, world.inbox, world.session)).conversation
    at = (world.inbox.id, world.account.id)
    _session, contact, found = await sqlite_store.read(conversations.reached, *at, "device-1", 1)
    ids = await sqlite_store.read(conversations.reached_ids, *at, "device-1", conv.display_id)
    assert ids == (contact.id, found.id) == (world.contact.id, conv.id)
    for source_id, display_id, what in [("device-1", 99, "conversation"), ("nobody", 1, "contact")]:
        for op in (conversations.reached, conversations.reached_ids):
            with pytest.raises(NotFound) as caught:
                await sqlite_store.read(op, *at, source_id, display_id)
            assert caught.value.what == what


def busy(errorcode: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database is locked")
    exc.sqlite_errorcode = errorcode
    return exc


async def test_a_busy_database_sends_a_short_read_to_the_pool(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short read that meets a lock (a crash recovery, another process's exclusive lock)
    never waits for it on the loop: the pool's readers wait instead."""
    calls = 0

    def locked(*_: object) -> None:
        nonlocal calls
        calls += 1
        raise busy(sqlite3.SQLITE_BUSY | (2 << 8))  # SQLITE_BUSY_SNAPSHOT: extended codes too

    monkeypatch.setattr(sqlite_store, "_read_here", locked)
    assert await sqlite_store.read(short_thread_of_read) != threading.get_ident()
    assert calls == 1


async def test_other_errors_of_a_short_read_are_raised(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise busy(sqlite3.SQLITE_IOERR)

    monkeypatch.setattr(sqlite_store, "_read_here", broken)
    with pytest.raises(sqlite3.OperationalError):
        await sqlite_store.read(short_thread_of_read)
