"""The node's ping cadence (:class:`PingWheel`): each connection once per interval, the
connections spread over it, with explicit time."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.realtime.core import PingWheel
from tests.cable_session_helpers import T0

INTERVAL, SLOTS = 3.0, 12
STEP = INTERVAL / SLOTS


def ticking(wheel: PingWheel[int], start: float, seconds: float) -> dict[int, list[float]]:
    """Every member's pings while the hub's timer beats every ``STEP`` from ``start``."""
    pinged: dict[int, list[float]] = defaultdict(list)
    beats = round(seconds / STEP)
    for i in range(1, beats + 1):
        now = start + i * STEP
        for member in wheel.due(now):
            pinged[member].append(now)
    return pinged


def test_each_member_is_due_once_an_interval_and_a_beat_holds_a_slot_of_them() -> None:
    wheel: PingWheel[int] = PingWheel(INTERVAL, SLOTS, T0)
    for member in range(120):
        wheel.add(member)
    assert wheel.sizes() == [10] * SLOTS
    assert wheel.due(T0 + STEP / 2) == []  # not yet
    per_beat = [len(wheel.due(T0 + i * STEP)) for i in range(1, SLOTS + 1)]
    assert per_beat == [10] * SLOTS  # a twelfth of the sockets at every beat, not all at once
    pinged = ticking(wheel, T0 + INTERVAL, 2 * INTERVAL)
    assert sorted(pinged) == list(range(120))
    for times in pinged.values():
        assert len(times) == 2
        assert times[1] - times[0] == pytest.approx(INTERVAL)


def test_a_member_joins_the_emptiest_slot_and_is_due_within_an_interval() -> None:
    wheel: PingWheel[str] = PingWheel(INTERVAL, SLOTS, T0)
    # A storm: everyone at once still spreads over the slots.
    for member in range(30):
        wheel.add(f"storm-{member}")
    assert sorted(wheel.sizes()) == [2] * 6 + [3] * 6
    for member in range(12):
        wheel.discard(f"storm-{member}")  # one from every slot
    assert sorted(wheel.sizes()) == [1] * 6 + [2] * 6
    before = wheel.sizes()
    wheel.add("late")
    expected = list(before)
    expected[before.index(1)] += 1  # the first of the emptiest, in the order they come due
    assert wheel.sizes() == expected
    pinged = ticking(wheel, T0, INTERVAL)
    assert pinged["late"] and all(when <= T0 + INTERVAL for when in pinged["late"])
    assert "storm-0" not in pinged  # gone is never due again
    assert len(wheel) == 19


def test_a_tick_late_by_a_whole_interval_pings_everyone_once_then_the_beat_resumes() -> None:
    wheel: PingWheel[int] = PingWheel(INTERVAL, SLOTS, T0)
    for member in range(24):
        wheel.add(member)
    assert sorted(wheel.due(T0 + 30)) == list(range(24))  # once each, not ten rounds
    assert wheel.due(T0 + 30 + STEP / 2) == []
    assert len(wheel.due(T0 + 30 + STEP)) == 2
    # A tick two beats late takes both beats' slots.
    assert len(wheel.due(T0 + 30 + 3 * STEP)) == 4


def test_restart_sets_the_next_beat_from_now() -> None:
    wheel: PingWheel[int] = PingWheel(INTERVAL, SLOTS, T0)
    wheel.add(1)
    wheel.restart(T0 + 100)
    assert wheel.due(T0 + 100 + STEP / 2) == []
    assert wheel.due(T0 + 100 + STEP) == [1]


def test_a_wheel_needs_a_positive_interval_and_a_slot() -> None:
    with pytest.raises(ValueError, match="positive interval"):
        PingWheel(0, SLOTS, T0)
    with pytest.raises(ValueError, match="at least one slot"):
        PingWheel(INTERVAL, 0, T0)


# Operations: add a new member, discard one (by index among those present), let time pass.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 0)),
        st.tuples(st.just("discard"), st.integers(0, 1_000)),
        st.tuples(st.just("wait"), st.floats(0.01, 1.0)),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(ops=OPS)
def test_no_member_waits_an_interval_whatever_comes_and_goes(ops: list[tuple[str, float]]) -> None:
    """Whatever joins and leaves, with the timer beating at uneven times up to a second apart:
    a member is due at most once per call and never after it left, and once a call is over no
    member present has waited an interval since it joined or was last due; the slots stay
    within one member of each other as long as only joins happen."""
    wheel: PingWheel[int] = PingWheel(INTERVAL, SLOTS, T0)
    now, born = T0, 0
    present: dict[int, float] = {}  # member -> since when it waits for a ping
    gone: set[int] = set()
    only_joins = True
    for op, value in ops:
        if op == "add":
            present[born] = now
            wheel.add(born)
            born += 1
        elif op == "discard" and present:
            member = sorted(present)[int(value) % len(present)]
            wheel.discard(member)
            del present[member]
            gone.add(member)
            only_joins = False
        elif op == "wait":
            now += float(value)
            due = wheel.due(now)
            assert len(due) == len(set(due))
            assert not gone & set(due)
            for member in due:
                present[member] = now
            for member, since in present.items():
                assert now - since < INTERVAL + 1e-6, member
        assert len(wheel) == len(present)
        if only_joins:
            assert max(wheel.sizes()) - min(wheel.sizes()) <= 1
