"""PostgreSQL's group commit of one key's writes (``PostgresStore._group``): the writes that
queued behind a running one go together, one transaction and one COMMIT, each under its own
savepoint, and give the rows and answers each would have given alone; the failure of one
fails none of the others."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from gateway.domain import events, incoming_batch, notify
from gateway.domain.errors import Flooded, NotFound
from gateway.store.base import UniqueViolation
from gateway.store.postgres import PostgresStore
from gateway.store.sql import Op, execute, one_at_a_time, rows
from tests.store_contract import T0, make_world, new_conversation, send

pytestmark = pytest.mark.anyio


def _key(conversation_id: int, *args: Any, **kwargs: Any) -> Any:
    return incoming_batch.create_incoming_batch  # the turn create_incoming takes (its batch's)


@one_at_a_time(_key)
def hold(conversation_id: int, seconds: float, started: asyncio.Event) -> Op[None]:
    """A write of the conversation's turn that takes its time (``started`` is set once it has
    the turn): the writes sent meanwhile queue."""
    started.set()
    yield from rows("SELECT pg_sleep(?)", seconds)


async def holding_turn(store: PostgresStore, conversation_id: int) -> asyncio.Task[None]:
    """:func:`hold` for 0.3 s, once it has the conversation's turn."""
    started = asyncio.Event()
    task = asyncio.create_task(store.write(hold, conversation_id, 0.3, started))
    await started.wait()
    return task


@one_at_a_time(_key)
def divide_by_zero(conversation_id: int) -> Op[None]:
    yield from rows("SELECT 1 / 0")


@one_at_a_time(_key)
def duplicate_account(conversation_id: int, account_id: int) -> Op[None]:
    yield from execute(
        "INSERT INTO accounts (id, name, created_at, updated_at) VALUES (?, 'x', 0, 0)",
        account_id,
    )


def spy_groups(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    group = store._group

    async def spied(pool: Any, waiting: list[Any]) -> None:
        sizes.append(len(waiting))
        await group(pool, waiting)

    monkeypatch.setattr(store, "_group", spied)
    return sizes


async def test_writes_queued_together_commit_as_one_group_in_arrival_order(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = two_nodes
    sizes = spy_groups(store, monkeypatch)
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    holding = await holding_turn(store, conv.id)
    results = await asyncio.gather(*[
        send(store, conv, world.contact.id, f"m{i}", echo_id=f"e{i % 8}", now=T0 + 1 + i)
        for i in range(12)
    ])  # fmt: skip
    await holding
    assert sizes == [12]
    assert store.retries == 0 and not store._turns
    # e0..e7 created; the second of each echo_id finds the first, written in the same group.
    assert [r.created for r in results] == [True] * 8 + [False] * 4
    assert [r.message.id for r in results[8:]] == [r.message.id for r in results[:4]]
    log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert [d["content"] for d in created] == [f"m{i}" for i in range(8)]
    unread = [d["conversation"]["unread_count"] for d in created]
    assert unread == [min(n, notify.UNREAD_CAP) for n in range(1, 9)]
    inbox = events.inbox_stream(world.inbox.id)
    assert [(e.offset, e.payload) for r in results[:8] for e in r.events if e.stream == inbox] == [
        (e.offset, e.payload) for e in log if e.name == "message.created"
    ]


async def test_one_failing_write_of_a_group_fails_none_of_the_others(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = two_nodes
    sizes = spy_groups(store, monkeypatch)
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    holding = await holding_turn(store, conv.id)
    outcomes = await asyncio.gather(
        send(store, conv, world.contact.id, "first", now=T0 + 1),
        store.write(divide_by_zero, conv.id),  # an SQL error: the transaction survives it
        send(store, conv, world.contact.id, "second", now=T0 + 2),
        store.write(duplicate_account, conv.id, world.account.id),  # a lost race, run again
        send(store, conv, 999_999, "no such contact", now=T0 + 3),  # NotFound, no SQL error
        send(store, conv, world.contact.id, "flooded", limit=2, now=T0 + 4),
        send(store, conv, world.contact.id, "third", now=T0 + 5),
        return_exceptions=True,
    )
    await holding
    assert sizes == [7]
    first, zero, second, duplicate, missing, flooded, third = outcomes
    assert isinstance(zero, Exception) and "division by zero" in str(zero)
    assert isinstance(duplicate, UniqueViolation)
    assert isinstance(missing, NotFound) and isinstance(flooded, Flooded)
    assert all(r.created for r in (first, second, third))  # type: ignore[union-attr]
    log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert [d["content"] for d in created] == ["first", "second", "third"]
    assert [d["conversation"]["unread_count"] for d in created] == [1, 2, 3]
    assert not store._turns
    # The conversation's writes go on as before once the group is done.
    assert (await send(store, conv, world.contact.id, "after", now=T0 + 6)).created


async def test_a_waiting_write_that_gives_up_is_not_run(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    holding = await holding_turn(store, conv.id)
    gone = asyncio.create_task(send(store, conv, world.contact.id, "gone", now=T0 + 1))
    kept = asyncio.create_task(send(store, conv, world.contact.id, "kept", now=T0 + 2))
    await asyncio.sleep(0.05)
    gone.cancel()
    await holding
    assert (await kept).created
    with pytest.raises(asyncio.CancelledError):
        await gone
    log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert [d["content"] for d in created] == ["kept"]
    assert not store._turns
