"""``one_at_a_time``: the mark an operation carries, and the PostgreSQL store's turns (writes
of one key one after another, in arrival order; other keys alongside)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from gateway.store.postgres import _Turns
from gateway.store.sql import Op, one_at_a_time, turn_of

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


async def test_one_key_one_at_a_time_in_arrival_order_other_keys_alongside() -> None:
    turns = _Turns()
    running: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}
    order: list[tuple[str, int]] = []
    release = asyncio.Event()

    async def write(key: str, n: int) -> None:
        async with turns.turn(key):
            running[key] += 1
            most[key] = max(most[key], running[key])
            order.append((key, n))
            await release.wait()
            running[key] -= 1

    tasks = [asyncio.create_task(write(k, n)) for n in range(5) for k in "ab"]
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == [("a", 0), ("b", 0)]  # the first of each key runs; the rest wait
    assert len(turns) == 2
    release.set()
    await asyncio.gather(*tasks)
    assert [n for k, n in order if k == "a"] == [0, 1, 2, 3, 4]
    assert [n for k, n in order if k == "b"] == [0, 1, 2, 3, 4]
    assert most == {"a": 1, "b": 1}
    assert len(turns) == 0  # nothing held once every write is done


async def test_a_writer_cancelled_or_failing_gives_its_turn_up() -> None:
    turns = _Turns()
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with turns.turn("k"):
            first_in.set()
            await release.wait()
            raise RuntimeError("the write failed")

    async def waiter() -> None:
        async with turns.turn("k"):
            pass

    held = asyncio.create_task(holder())
    await first_in.wait()
    cancelled = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    after = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert not after.done()  # still behind the holder
    release.set()
    with pytest.raises(RuntimeError):
        await held
    await after
    assert len(turns) == 0
