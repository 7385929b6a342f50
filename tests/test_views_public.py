"""The public views' time format: Chatwoot's contact record shows UTC ISO 8601 times with
milliseconds, truncated, and a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from gateway.views.public import iso


def by_strftime(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_known_times() -> None:
    assert iso(None) is None
    assert iso(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso(1_767_268_800.9999) == "2026-01-01T12:00:00.999Z"
    assert iso(1_767_268_800.0) == "2026-01-01T12:00:00.000Z"


@given(st.floats(min_value=0, max_value=253_402_300_799, allow_nan=False))
def test_the_same_as_strftime_and_the_same_twice(ts: float) -> None:
    assert iso(ts) == by_strftime(ts)
    assert iso(ts) == by_strftime(ts)  # from the cache


def test_a_second_already_seen_keeps_its_own_milliseconds() -> None:
    # The second's date and time are kept; the milliseconds are each time's own.
    assert iso(1_767_268_801.25) == "2026-01-01T12:00:01.250Z"
    assert iso(1_767_268_801.5) == "2026-01-01T12:00:01.500Z"
    assert iso(1_767_268_801.0) == "2026-01-01T12:00:01.000Z"


def test_a_fraction_that_rounds_to_the_next_second() -> None:
    # As datetime rounds it: half a microsecond short of the next second is the next second.
    ts = 1_767_268_802.9999996
    assert iso(ts) == by_strftime(ts) == "2026-01-01T12:00:03.000Z"


# (From the year 1000: strftime writes earlier years without their leading zeros.)
@given(st.floats(min_value=-30_610_224_000, max_value=0, allow_nan=False))
def test_before_1970_too(ts: float) -> None:
    assert iso(ts) == by_strftime(ts)


@given(st.integers(min_value=0, max_value=253_402_300_798), st.integers(0, 999_999))
def test_every_microsecond_of_a_second(second: int, micros: int) -> None:
    ts = second + micros / 1e6
    assert iso(ts) == by_strftime(ts)
