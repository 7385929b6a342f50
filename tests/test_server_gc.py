"""The server settles the garbage collector once the app has started (``gateway.server``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.server import GC_YOUNG, settle_garbage_collector


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector as it was, afterwards."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


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
