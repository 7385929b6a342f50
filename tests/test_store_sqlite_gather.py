"""The SQLite writer's wait for one more write before a commit (``sqlite_gather``): when it
waits, for how long, and that a client waiting for each answer is not made to wait for it."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store import SQLiteStore
from gateway.store.sqlite_gather import MAX_SKIP, Gathering
from tests.store_contract import make_world, new_conversation, send

pytestmark = pytest.mark.anyio


def steady(gathering: Gathering, gap: float, count: int = 50, start: float = 100.0) -> None:
    """``count`` arrivals ``gap`` apart, from ``start``."""
    for i in range(count):
        gathering.arrived(start + i * gap)


class Counted(Gathering):
    """What each wait found, in order."""

    __slots__ = ("outcomes",)

    def __init__(self, most: float) -> None:
        super().__init__(most)
        self.outcomes: list[bool] = []

    def waited(self, found: bool) -> None:
        self.outcomes.append(found)
        super().waited(found)


def test_no_wait_before_two_arrivals() -> None:
    gathering = Gathering(0.001)
    assert gathering.wait() == 0.0
    gathering.arrived(5.0)
    assert gathering.gap == math.inf
    assert gathering.wait() == 0.0


def test_dense_arrivals_wait_twice_the_gap() -> None:
    gathering = Gathering(0.001)
    steady(gathering, 0.0001)
    assert gathering.gap == pytest.approx(0.0001)
    assert gathering.wait() == pytest.approx(0.0002)
    steady(gathering, 0.00045, count=200, start=200.0)  # just under half of the most
    assert gathering.wait() == pytest.approx(0.0009)


def test_a_steady_rate_under_twice_the_wait_is_not_waited_for() -> None:
    """1,000 writes/s, one every millisecond: a wait of up to 0.8 ms would end empty."""
    gathering = Gathering(0.0008)
    steady(gathering, 0.001)
    assert gathering.wait() == 0.0
    steady(gathering, 0.0004, count=200, start=200.0)  # 2,500/s: half the wait apart
    assert gathering.wait() == 0.0


def test_the_average_follows_the_gaps() -> None:
    gathering = Gathering(0.001)
    steady(gathering, 0.0001)
    assert gathering.wait() > 0
    steady(gathering, 0.01, count=30, start=300.0)  # the load went away
    assert gathering.wait() == 0.0


def test_an_empty_wait_skips_more_batches_each_time_in_a_row() -> None:
    gathering = Gathering(0.001)
    steady(gathering, 0.0001)
    skipped = []
    for _ in range(12):
        assert gathering.wait() > 0
        gathering.waited(False)
        n = 0
        while gathering.wait() == 0.0:
            n += 1
        skipped.append(n)
    assert skipped == [min(2**i, MAX_SKIP) for i in range(12)]


def test_a_wait_that_found_a_write_resets_the_skips() -> None:
    gathering = Gathering(0.001)
    steady(gathering, 0.0001)
    gathering.wait()
    gathering.waited(False)
    gathering.wait()  # the one skipped
    gathering.wait()
    gathering.waited(False)
    assert [gathering.wait() for _ in range(2)] == [0.0, 0.0]
    assert gathering.wait() > 0
    gathering.waited(True)
    assert gathering.wait() > 0  # no skip after a wait that found one
    gathering.waited(False)
    assert gathering.wait() == 0.0
    assert gathering.wait() > 0  # one skipped again, not four


def test_zero_never_waits_and_a_negative_wait_is_refused() -> None:
    gathering = Gathering(0.0)
    steady(gathering, 0.00001)
    assert gathering.wait() == 0.0
    with pytest.raises(ValueError, match="cannot be negative"):
        Gathering(-0.001)


@given(
    most=st.floats(0.0, 0.01),
    gaps=st.lists(st.floats(0.0, 0.01), min_size=0, max_size=40),
    found=st.lists(st.booleans(), max_size=20),
)
def test_a_wait_is_never_over_the_most_nor_twice_the_gap(
    most: float, gaps: list[float], found: list[bool]
) -> None:
    gathering = Gathering(most)
    at = 0.0
    gathering.arrived(at)
    for gap in gaps:
        at += gap
        gathering.arrived(at)
    for outcome in [*found, True]:
        seconds = gathering.wait()
        assert 0.0 <= seconds <= most
        assert seconds <= 2 * gathering.gap
        if 2 * gathering.gap >= most:
            assert seconds == 0.0
        if seconds:
            gathering.waited(outcome)


async def test_writes_arriving_close_together_commit_together(tmp_path: Path) -> None:
    """A write queued while the writer waits joins the batch of the one before it."""
    async with SQLiteStore(tmp_path / "db.sqlite") as store:
        world = await make_world(store)
        conversation = (await new_conversation(store, world.inbox, world.session)).conversation
        # The writer is idle (the last write was answered): it reads this with its next job.
        store._gathering = Gathering(2.0)
        # As if writes had been coming every half second until now: the next one is waited
        # for up to twice that.
        steady(store._gathering, 0.5, count=20, start=time.perf_counter() - 9.5)
        batches = store.batches
        first = asyncio.ensure_future(send(store, conversation, world.contact.id, "one"))
        await asyncio.sleep(0.2)  # the writer has taken it and waits for one more
        assert not first.done()
        second = await send(store, conversation, world.contact.id, "two")
        assert (await first).message.id + 1 == second.message.id
        assert store.batches == batches + 1


async def test_a_client_waiting_for_each_answer_is_seldom_kept_waiting(tmp_path: Path) -> None:
    """Writes one after the other, each after the last one's answer: the waits before their
    commits end empty, and the writer stops waiting for longer and longer."""
    async with SQLiteStore(tmp_path / "db.sqlite") as store:
        world = await make_world(store)
        conversation = (await new_conversation(store, world.inbox, world.session)).conversation
        gathering = store._gathering = Counted(0.05)  # the writer is idle: see above
        gathering._gap = 0.0001  # as if writes had been coming densely
        for i in range(64):
            await send(store, conversation, world.contact.id, f"m{i}")
            gathering._gap = min(gathering.gap, 0.0001)  # and still were
        # 64 writes: waits before the 1st, 3rd, 6th, 11th, 20th, 37th commits only
        assert gathering.outcomes == [False] * 6
