"""The SQLite store's checkpointer: the WAL reaches the database file through its own thread,
and the writer's connection checkpoints only as a backstop (not inside the acks' COMMIT)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.store import SQLiteStore, sqlite_checkpoint
from gateway.store.sql import Op, rows
from gateway.store.sqlite_checkpoint import Checkpointer
from tests.store_contract import make_world, new_conversation, send

pytestmark = pytest.mark.anyio


def autocheckpoint() -> Op[int]:
    found = yield from rows("PRAGMA wal_autocheckpoint")
    return int(found[0][0])


async def until(condition: threading.Event) -> None:
    """Wait for a thread's signal without blocking the loop (a bound against a hang only)."""
    assert await asyncio.to_thread(condition.wait, 30)


async def test_writes_reach_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    async with SQLiteStore(path) as store:
        world = await make_world(store)
        conversation = (await new_conversation(store, world.inbox, world.session)).conversation
        ran = threading.Event()
        original = store._checkpointer.checkpoint

        def checkpoint(conn: sqlite3.Connection) -> None:
            original(conn)
            ran.set()

        store._checkpointer.checkpoint = checkpoint  # type: ignore[method-assign]
        message = (await send(store, conversation, world.contact.id, "to the file")).message
        # A checkpoint that starts after this commit copies it (a PASSIVE one copies every
        # committed frame when no reader holds an older snapshot: none here).
        ran.clear()
        await send(store, conversation, world.contact.id, "wakes the checkpointer")
        await until(ran)
        # The database file alone, without its WAL, holds the message: the checkpoint copied it.
        alone = tmp_path / "alone.sqlite"
        shutil.copy(path, alone)
        conn = sqlite3.connect(alone)
        try:
            found = conn.execute("SELECT content FROM messages WHERE id = ?", (message.id,))
            assert found.fetchall() == [("to the file",)]
        finally:
            conn.close()


async def test_the_writer_checkpoints_only_as_a_backstop(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "db.sqlite") as store:
        assert await store.write(autocheckpoint) == sqlite_checkpoint.BACKSTOP_PAGES
        # Reads keep SQLite's default (they never checkpoint anyway: a read commits nothing).
        assert await store.read(autocheckpoint) == 1000


async def test_close_stops_the_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.start()
    thread = store._checkpointer._thread
    assert thread is not None and thread.is_alive()
    await store.close()
    assert not thread.is_alive()


def test_a_failed_checkpoint_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    conn.close()  # a closed connection: every statement fails
    checkpointer = Checkpointer(lambda: conn)
    with caplog.at_level(logging.WARNING, logger="inboxgate.store"):
        checkpointer.checkpoint(conn)
    assert checkpointer.checkpoints == 0
    assert "sqlite checkpoint failed" in caplog.text


def test_commits_during_a_pause_make_one_more_checkpoint(tmp_path: Path) -> None:
    """Wake-ups while a checkpoint runs (or during the pause after it) are not lost: one more
    checkpoint follows them."""
    path = tmp_path / "db.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.close()
    entered, release, second = threading.Event(), threading.Event(), threading.Event()
    checkpointer = Checkpointer(lambda: sqlite3.connect(path, check_same_thread=False))
    calls = 0

    def checkpoint(conn: sqlite3.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            release.wait(30)
        else:
            second.set()

    checkpointer.checkpoint = checkpoint  # type: ignore[method-assign]
    checkpointer.start()
    try:
        checkpointer.committed()
        assert entered.wait(30)
        checkpointer.committed()  # while the first checkpoint runs
        release.set()
        assert second.wait(30)
    finally:
        checkpointer.stop()
    assert calls == 2
