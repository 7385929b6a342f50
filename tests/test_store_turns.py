"""``one_at_a_time``: the mark an operation carries, and the PostgreSQL store's turns (writes
of one key one after another, in arrival order; other keys alongside; those that queue are
run together, ``test_store_postgres_groups``)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import asyncpg
import pytest

from gateway.store.postgres import PostgresStore
from gateway.store.sql import Op, one_at_a_time, rows, turn_of

pytestmark = pytest.mark.anyio


@one_at_a_time(lambda conversation_id, *args, **kwargs: ("conversation", conversation_id))
def marked(conversation_id: int, content: str) -> Op[None]:
    yield from ()


def unmarked(conversation_id: int) -> Op[None]:
    yield from ()


def test_the_key_comes_from_the_arguments_and_survives_wrapping() -> None:
    assert turn_of(marked, (7, "hi"), {}) == ("conversation", 7)
    assert turn_of(marked, (), {"conversation_id": 8, "content": "x"}) == ("conversation", 8)
    assert turn_of(unmarked, (7,), {}) is None

    @functools.wraps(marked)
    def wrapped(*args: Any, **kwargs: Any) -> Op[None]:
        return marked(*args, **kwargs)

    assert turn_of(wrapped, (9, "hi"), {}) == ("conversation", 9)


def _keyed(key: str, *args: Any, **kwargs: Any) -> tuple[str, str]:
    return ("k", key)


running: dict[str, int] = {}
most: dict[str, int] = {}
order: list[tuple[str, int]] = []


@one_at_a_time(_keyed)
def step(key: str, n: int, seconds: float) -> Op[int]:
    """A write of ``key``'s turn that records when it starts and how many of its key run."""
    running[key] = running.get(key, 0) + 1
    most[key] = max(most.get(key, 0), running[key])
    most["all"] = max(most.get("all", 0), sum(running.values()))
    order.append((key, n))
    try:
        yield from rows("SELECT pg_sleep(?)", seconds)
    finally:
        running[key] -= 1
    return n


@one_at_a_time(_keyed)
def failing(key: str, seconds: float, started: asyncio.Event) -> Op[None]:
    started.set()  # it has the key's turn
    yield from rows("SELECT pg_sleep(?)", seconds)
    yield from rows("SELECT 1 / 0")


async def test_one_key_one_at_a_time_in_arrival_order_other_keys_alongside(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = two_nodes
    for recorded in (running, most, order):
        recorded.clear()
    tasks = []
    for n in range(5):
        for key in "ab":
            tasks.append(asyncio.create_task(store.write(step, key, n, 0.1 if n == 0 else 0)))
            await asyncio.sleep(0)  # arrival order: a0 b0 a1 b1 ...
    assert await asyncio.gather(*tasks) == [n for n in range(5) for _ in "ab"]
    assert [n for k, n in order if k == "a"] == [0, 1, 2, 3, 4]
    assert [n for k, n in order if k == "b"] == [0, 1, 2, 3, 4]
    assert most["a"] == most["b"] == 1
    assert most["all"] == 2  # a's and b's first writes ran at the same time
    assert not store._turns  # nothing held once every write is done


async def test_a_writer_cancelled_or_failing_gives_its_turn_up(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = two_nodes
    for recorded in (running, most, order):
        recorded.clear()
    started = asyncio.Event()
    held = asyncio.create_task(store.write(failing, "k", 0.2, started))
    await started.wait()
    cancelled = asyncio.create_task(store.write(step, "k", 1, 0))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    after = asyncio.create_task(store.write(step, "k", 2, 0))
    await asyncio.sleep(0.05)
    assert not after.done()  # still behind the holder
    with pytest.raises(asyncpg.DivisionByZeroError):
        await held
    assert await after == 2
    assert order == [("k", 2)]  # the cancelled write never ran
    assert not store._turns
