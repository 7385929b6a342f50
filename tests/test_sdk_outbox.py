"""The async client's outbox does its disk work in worker threads: a commit that has to wait
(a slow disk, another writer holding the file) never stalls the application's event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from client_sdk import AsyncInboxClient, Outbox, SessionState

pytestmark = pytest.mark.anyio

# Nothing listens on port 1: every send is refused at once and stays queued.
NOWHERE = "http://127.0.0.1:1"


def state() -> SessionState:
    return SessionState(
        base_url=NOWHERE, inbox_identifier="inbox", source_id="src", pubsub_token="tok"
    )


async def test_a_waiting_commit_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    # Another writer holds the file's write lock, so the outbox's INSERT waits for it (up to
    # SQLite's 5 s busy timeout), as a commit waits for a slow disk.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    client = AsyncInboxClient(NOWHERE, "inbox", outbox=path)
    try:
        session = client.resume_session(state())
        started = time.monotonic()
        sending = asyncio.ensure_future(session.send(7, "hello"))
        # On a blocked loop this sleep would end only when the INSERT gave up, seconds later.
        await asyncio.sleep(0.2)
        lag = time.monotonic() - started
        assert not sending.done(), sending
        assert lag < 1.0, f"the event loop stood still for {lag:.2f} s"
        blocker.execute("COMMIT")
        sent = await asyncio.wait_for(sending, 10)
        assert sent.queued  # the gateway is unreachable: kept for later
        assert [(e.content, e.status) for e in await session.pending()] == [("hello", "queued")]
    finally:
        blocker.close()
        await client.close()
    # It is the file the sync client (and the next run) reads.
    box = Outbox(path)
    try:
        assert [e.content for e in box.queued("src")] == ["hello"]
    finally:
        box.close()


async def test_opened_on_first_use_and_refused_after_close(tmp_path: Path) -> None:
    path = tmp_path / "kiosk" / "outbox.sqlite3"
    client = AsyncInboxClient(NOWHERE, "inbox", outbox=path)
    assert not path.parent.exists()  # constructing a client touches no disk
    session = client.resume_session(state())
    assert await session.pending() == []
    assert path.exists()
    first = await client.outbox.add("src", 7, "one")
    assert await client.outbox.add("src", 7, "again", echo_id=first.echo_id) == first
    await client.outbox.mark_sent(first.echo_id, 42)
    # A message recovered over HTTP has no echo_id: its id settles the sent entry.
    assert not await client.outbox.settle("other", None, 42)
    assert await client.outbox.settle("src", None, 42)
    assert await session.pending() == []
    await client.close()
    with pytest.raises(sqlite3.ProgrammingError):
        await session.pending()


async def test_a_shared_outbox_is_left_open(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "shared.sqlite3")
    try:
        async with AsyncInboxClient(NOWHERE, "inbox", outbox=box) as client:
            await client.outbox.add("src", 1, "kept")
        assert [e.content for e in box.queued("src")] == ["kept"]
    finally:
        box.close()
