"""The server settles the garbage collector and the GIL's switch interval once the app has
started (``gateway.server``)."""

from __future__ import annotations

import gc
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.server import GC_YOUNG, GIL_SWITCH_SECONDS, settle_garbage_collector, settle_sockets
from tests.routes_helpers import settings_for


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


@pytest.mark.usefixtures("collector")
def test_the_sockets_opened_later_are_frozen_by_the_hubs_settle(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    hub = app.state.realtime.hub
    assert hub.settle is None  # a bare app (tests, the CLI) freezes nothing
    settle_sockets(app)
    socket_like = [[i] for i in range(100)]
    assert hub.settle is not None
    cycle: list[object] = []
    cycle.append(cycle)  # garbage of the moment: collected, not frozen
    ref = weakref.ref(_Cyclic(cycle))
    del cycle
    assert ref() is not None
    hub.settle()
    assert ref() is None
    assert gc.get_freeze_count() >= len(socket_like)
    collected = {id(o) for o in gc.get_objects()}
    assert all(id(o) not in collected for o in socket_like)


class _Cyclic:
    """A weakly referenceable object in a reference cycle."""

    def __init__(self, other: list[object]) -> None:
        self.me = self
        self.other = other
