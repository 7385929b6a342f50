"""SQLite's group commit without a savepoint per operation: a batch runs its operations one
after the other; one that fails having written makes the whole batch roll back and run again
with a savepoint per operation (the old path). Every outcome and every row must be what the
old path gives, whichever operation fails and how."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.domain import events, incoming, messages
from gateway.domain.errors import InvalidAttribute, NotFound
from gateway.store import SQLiteStore, UniqueViolation
from gateway.store import sqlite as sqlite_store_module
from gateway.store.records import Conversation
from gateway.store.sql import Op, Rows, execute, next_offsets, rows
from tests.store_contract import (
    T0,
    World,
    insert_account_then_fail,
    link,
    make_world,
    new_conversation,
)

pytestmark = pytest.mark.anyio

Call = tuple[Callable[..., Op[Any]], tuple[Any, ...]]


def hold(started: threading.Event, release: threading.Event) -> Op[None]:
    """Keeps the writer thread busy until released, so that every write queued meanwhile
    joins the next batch."""
    started.set()
    release.wait(30)
    yield from execute("SELECT 1")


def duplicate_echo(conversation: Conversation, echo_id: str) -> Op[None]:
    """A first write that breaks a unique constraint: the statement undoes itself."""
    yield from execute(
        f"{messages.INSERT_MESSAGE}",
        conversation.account_id, conversation.inbox_id, conversation.id, "dup", 0, "text", "{}",
        False, "sent", "Contact", None, echo_id, None, T0, T0,
    )  # fmt: skip


def advance_then_fail(stream: str) -> Op[None]:
    """Advances a stream's head (kept by the writer: no row changes yet), then fails."""
    yield from next_offsets([stream])
    raise InvalidAttribute("deliberate", ["base"])


def dump() -> Op[dict[str, Rows]]:
    """Every row a message write touches, less the random parts (stream epochs, uuids)."""
    return {
        "messages": (yield from rows("SELECT * FROM messages ORDER BY id")),
        "events": (yield from rows("SELECT id, name, created_at FROM events ORDER BY id")),
        "entries": (yield from rows("SELECT * FROM stream_entries ORDER BY stream, stream_offset")),
        "streams": (yield from rows("SELECT name, last_offset FROM streams ORDER BY name")),
        "accounts": (yield from rows("SELECT id, name FROM accounts ORDER BY id")),
        "conversations": (
            yield from rows(
                "SELECT id, status, last_activity_at, waiting_since, updated_at "
                "FROM conversations ORDER BY id"
            )
        ),
        "contacts": (yield from rows("SELECT id, last_activity_at FROM contacts ORDER BY id")),
    }


async def one_batch(store: SQLiteStore, calls: list[Call]) -> list[Any]:
    """Run ``calls`` as ONE batch of the writer (asserted) and return their outcomes."""
    started, release = threading.Event(), threading.Event()
    holder = asyncio.ensure_future(store.write(hold, started, release))
    assert await asyncio.to_thread(started.wait, 30)
    batches = store.batches
    pending = [asyncio.ensure_future(store.write(op, *args)) for op, args in calls]
    await asyncio.sleep(0)  # every write is queued behind the held batch
    release.set()
    await holder
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert store.batches == batches + 2  # the held batch, then all of ``calls`` together
    return outcomes


def send_call(conversation: Conversation, world: World, i: int, echo: str | None = None) -> Call:
    args: tuple[Any, ...] = (
        conversation.id,
        world.contact.id,
        f"m{i}",
        echo,
        [],
        1000,
        link,
        T0 + i,
    )
    return incoming.create_incoming, args


def unpacked(call: Call) -> tuple[Any, ...]:
    return (call[0], *call[1])


async def setup(store: SQLiteStore) -> tuple[World, Conversation]:
    world = await make_world(store)
    conversation = (await new_conversation(store, world.inbox, world.session)).conversation
    return world, conversation


def mixed_calls(world: World, conversation: Conversation, *, write_then_fail: bool) -> list[Call]:
    missing = msgspec.structs.replace(conversation, id=999_999)
    calls: list[Call] = []
    for i in range(6):
        calls.append(send_call(conversation, world, i, f"e{i}"))
        calls.append(send_call(missing, world, 100 + i))  # fails before writing
        calls.append((duplicate_echo, (conversation, f"e{i}")))  # its one statement fails
        if write_then_fail and i % 3 == 1:
            calls.append((insert_account_then_fail, (f"ghost{i}", T0)))
        if write_then_fail and i % 3 == 2:
            calls.append((advance_then_fail, (events.inbox_stream(world.inbox.id),)))
        calls.append(send_call(conversation, world, 200 + i, f"e{i}"))  # a retry: the original
    return calls


def outcome_shape(outcome: Any) -> Any:
    if isinstance(outcome, messages.MessageResult):
        return ("created" if outcome.created else "echo", outcome.message.id, outcome.view)
    return type(outcome)


def check_outcomes(outcomes: list[Any], calls: list[Call]) -> None:
    for (op, _), outcome in zip(calls, outcomes, strict=True):
        if op is duplicate_echo:
            assert isinstance(outcome, UniqueViolation)
        elif op is insert_account_then_fail or op is advance_then_fail:
            assert isinstance(outcome, InvalidAttribute)
    assert sum(isinstance(o, NotFound) for o in outcomes) == 6
    results = [o for o in outcomes if isinstance(o, messages.MessageResult)]
    assert [r.created for r in results] == [True, False] * 6
    for first, retry in zip(results[0::2], results[1::2], strict=True):
        assert retry.message.id == first.message.id


@pytest.mark.parametrize("write_then_fail", [False, True])
async def test_a_batch_gives_the_rows_and_outcomes_of_a_savepoint_per_op(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_then_fail: bool
) -> None:
    """The same batch through the new path and through the old one (every op in its own
    savepoint, forced): the same outcomes, the same rows."""
    found: dict[str, tuple[list[Any], dict[str, Rows], int]] = {}
    for path in ("together", "savepoints"):
        with monkeypatch.context() as patch:
            if path == "savepoints":
                patch.setattr(sqlite_store_module, "_run_together", lambda conn, batch, heads: None)
            store = SQLiteStore(tmp_path / path / "db.sqlite")
            async with store:
                world, conversation = await setup(store)
                calls = mixed_calls(world, conversation, write_then_fail=write_then_fail)
                replayed = store.replayed_batches
                outcomes = await one_batch(store, calls)
                check_outcomes(outcomes, calls)
                found[path] = (
                    [outcome_shape(o) for o in outcomes],
                    await store.read(dump),
                    store.replayed_batches - replayed,
                )
    together, savepoints = found["together"], found["savepoints"]
    assert together[0] == savepoints[0]
    assert together[1] == savepoints[1]
    assert len(together[1]["messages"]) == 6
    assert len(together[1]["accounts"]) == 1  # no ghost account survives
    # Failures that left nothing behind cost no replay; one that wrote costs exactly one.
    assert together[2] == (1 if write_then_fail else 0)
    inbox_offsets = [r[1] for r in together[1]["entries"] if r[0].startswith("inbox:")]
    assert inbox_offsets == list(range(1, 8))  # the conversation, six messages: no gap


async def test_the_log_has_no_gap_after_a_replayed_batch(sqlite_store: SQLiteStore) -> None:
    world, conversation = await setup(sqlite_store)
    calls: list[Call] = []
    for i in range(10):
        calls.append(send_call(conversation, world, i))
        calls.append((insert_account_then_fail, (f"ghost{i}", T0)))
    outcomes = await one_batch(sqlite_store, calls)
    assert sqlite_store.replayed_batches == 1
    assert all(isinstance(o, messages.MessageResult) for o in outcomes[0::2])
    assert all(isinstance(o, InvalidAttribute) for o in outcomes[1::2])
    log = await sqlite_store.read(events.read_stream, events.inbox_stream(world.inbox.id))
    assert [e.offset for e in log] == list(range(1, 12))
    offsets = [e.offset for o in outcomes[0::2] for e in o.events if e.stream.startswith("inbox")]
    assert offsets == list(range(2, 12))
    # The store goes on batching without savepoints after a replay.
    more = await one_batch(sqlite_store, [send_call(conversation, world, 50 + i) for i in range(5)])
    assert all(isinstance(o, messages.MessageResult) for o in more)
    assert sqlite_store.replayed_batches == 1


async def test_a_head_advanced_by_a_failed_op_is_given_again(sqlite_store: SQLiteStore) -> None:
    """An operation that advanced a stream's head in the writer's copy and then failed, alone
    in its batch (no row changed, yet the batch runs again): the next append takes that
    offset, with no gap."""
    world, conversation = await setup(sqlite_store)
    stream = events.inbox_stream(world.inbox.id)
    with pytest.raises(InvalidAttribute):
        await sqlite_store.write(advance_then_fail, stream)
    assert sqlite_store.replayed_batches == 1
    sent = await sqlite_store.write(*unpacked(send_call(conversation, world, 1)))
    assert [e.offset for e in sent.events if e.stream == stream] == [2]
    assert await sqlite_store.read(events.stream_position, stream) == (sent.events[0].epoch, 2)


async def test_another_connections_appends_are_seen(tmp_path: Path) -> None:
    """The writer's copy of the heads is dropped when another connection committed (an admin
    command in another process, say): its appends are continued, never overwritten."""
    path = tmp_path / "shared.db"
    async with SQLiteStore(path) as first, SQLiteStore(path) as second:
        world, conversation = await setup(first)
        stream = events.inbox_stream(world.inbox.id)
        await first.write(*unpacked(send_call(conversation, world, 1)))
        for i in range(3):
            await second.write(events.append, "x.other", {"i": i}, [stream], T0)
        sent = await first.write(*unpacked(send_call(conversation, world, 2)))
        assert [e.offset for e in sent.events if e.stream == stream] == [6]
        assert first.replayed_batches == 0  # known before it wrote, not learnt from a failure
        log = await first.read(events.read_stream, stream)
        assert [e.offset for e in log] == list(range(1, 7))
        assert len({e.epoch for e in log}) == 1
