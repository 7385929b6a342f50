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
