"""The server settles the garbage collector and the GIL's switch interval once the app has
started (``gateway.server``)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from gateway.server import GC_YOUNG, GIL_SWITCH_SECONDS, settle_garbage_collector


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector and switch interval as they were, afterwards."""
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("collector")
def test_what_startup_built_leaves_the_collectors_reach() -> None:
    built = [[i] for i in range(1000)]  # long-lived, as the app's startup objects
    _, middle, old = gc.get_threshold()
    settle_garbage_collector()
    assert gc.get_freeze_count() >= len(built)
    collected = {id(o) for o in gc.get_objects()}  # the frozen are out of every generation
    assert all(gc.is_tracked(d) and id(d) not in collected for d in built)
    assert gc.get_threshold() == (GC_YOUNG, middle, old)


@pytest.mark.usefixtures("collector")
def test_garbage_made_after_startup_is_still_collected() -> None:
    settle_garbage_collector()
    cycle: list[object] = []
    cycle.append(cycle)
    assert id(cycle) in {id(o) for o in gc.get_objects()}
    del cycle
    assert gc.collect() >= 1


@pytest.mark.usefixtures("collector")
def test_the_event_loop_waits_at_most_half_a_millisecond_for_the_gil() -> None:
    assert sys.getswitchinterval() > GIL_SWITCH_SECONDS  # CPython's 5 ms
    settle_garbage_collector()
    assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_SECONDS)
