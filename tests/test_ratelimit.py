"""MemoryRateLimiter: the sliding-window counter behind the per-IP limit (§7.1)."""

from __future__ import annotations

import bisect

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ratelimit import MemoryRateLimiter

W = 60


def test_limit_respected_within_a_window() -> None:
    rl = MemoryRateLimiter()
    results = [rl.hit("ip:a", 5, W, 1000 * W + i) for i in range(8)]
    assert [ok for ok, _ in results] == [True] * 5 + [False] * 3
    assert all(retry == 0 for ok, retry in results if ok)
    # other keys are independent
    assert rl.hit("ip:b", 5, W, 1000 * W + 8) == (True, 0)


def test_sliding_across_the_window_boundary() -> None:
    rl = MemoryRateLimiter()
    start = 1000 * W
    for i in range(10):
        assert rl.hit("k", 10, W, start + i)[0]
    assert not rl.hit("k", 10, W, start + 30)[0]
    # just after the boundary the previous window still weighs almost fully
    assert not rl.hit("k", 10, W, start + W + 1)[0]
    # halfway through the next window half of the previous count remains: 5 more fit
    allowed = [rl.hit("k", 10, W, start + W + 30 + i * 0.01)[0] for i in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    # two windows later the old counts are gone entirely
    allowed = [rl.hit("k", 10, W, start + 3 * W + i * 0.01)[0] for i in range(12)]
    assert allowed == [True] * 10 + [False] * 2


def test_retry_after_is_at_least_one_and_enough() -> None:
    rl = MemoryRateLimiter()
    t = 1000 * W + 59.5
    for _ in range(3):
        rl.hit("k", 3, W, t)
    ok, retry = rl.hit("k", 3, W, t)
    assert not ok
    assert 1 <= retry <= 2 * W
    assert not rl.hit("k", 3, W, t + retry - 1)[0]
    assert rl.hit("k", 3, W, t + retry)[0]


def test_retry_after_when_the_previous_window_must_slide_out() -> None:
    rl = MemoryRateLimiter()
    start = 1000 * W
    for i in range(6):
        rl.hit("k", 6, W, start + i)
    ok, retry = rl.hit("k", 6, W, start + W + 6)  # weight 0.9: 5.4 + 1 > 6
    assert not ok
    # 0.4 of a request must slide out: 0.4 / 6 of a window = 4 s (5 with float rounding)
    assert retry in (4, 5)
    assert not rl.hit("k", 6, W, start + W + 6 + 3)[0]
    assert rl.hit("k", 6, W, start + W + 6 + retry)[0]


def test_memory_is_bounded_by_max_keys() -> None:
    rl = MemoryRateLimiter(max_keys=100)
    for i in range(1000):
        assert rl.hit(f"ip:{i}", 5, W, 1000 * W + i * 0.01)[0]
        assert len(rl._counts) <= 100
    # stale keys are swept when windows roll
    rl.hit("late", 5, W, 1005 * W)
    assert len(rl._counts) <= 100


def test_stale_keys_are_swept() -> None:
    rl = MemoryRateLimiter()
    for i in range(2000):
        rl.hit(f"ip:{i}", 5, W, 1000 * W)
    rl.hit("now", 5, W, 1010 * W)
    assert set(rl._counts) == {"now"}


# -- properties -------------------------------------------------------------------------------

gaps = st.lists(st.floats(min_value=0, max_value=90, allow_nan=False), min_size=1, max_size=300)


def _times(start: float, deltas: list[float]) -> list[float]:
    times, t = [], start
    for d in deltas:
        t += d
        times.append(t)
    return times


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    start=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    deltas=gaps,
)
def test_never_more_than_twice_the_limit_in_any_window(
    limit: int, start: float, deltas: list[float]
) -> None:
    rl = MemoryRateLimiter()
    allowed = [t for t in _times(start, deltas) if rl.hit("k", limit, W, t)[0]]
    for i, t in enumerate(allowed):
        # allowed requests in [t, t + W)
        assert bisect.bisect_left(allowed, t + W) - i <= 2 * limit


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=50),
    start=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    extra=st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=1, max_size=200),
)
def test_never_blocks_far_under_the_limit(limit: int, start: float, extra: list[float]) -> None:
    # at least 2 windows / limit between requests: never `limit` of them in two windows
    gap = 2 * W / limit + 0.001
    rl = MemoryRateLimiter()
    for t in _times(start, [gap + e for e in extra]):
        assert rl.hit("k", limit, W, t) == (True, 0)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=20),
    start=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    deltas=gaps,
)
def test_waiting_retry_after_is_enough(limit: int, start: float, deltas: list[float]) -> None:
    rl = MemoryRateLimiter()
    for t in _times(start, deltas):
        ok, retry = rl.hit("k", limit, W, t)
        if not ok:
            assert 1 <= retry <= 2 * W
            probe = MemoryRateLimiter()
            probe._counts = dict(rl._counts)
            probe._swept_window = rl._swept_window
            assert probe.hit("k", limit, W, t + retry)[0], (t, retry)
