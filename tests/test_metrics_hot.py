"""The hot path's recorders (``gateway.metrics.hot_inc``, ``HotHistogram``) leave a metric
exactly as prometheus_client's own ``inc`` and ``observe`` would, in one process and in the
files that ``--workers`` share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector

from gateway import metrics

BOUNDS = metrics.LATENCY
AMOUNTS = st.lists(
    st.one_of(
        st.sampled_from([0.0, -1.0, math.inf, *BOUNDS]),
        st.floats(min_value=-5, max_value=50, allow_nan=False),
    ),
    max_size=40,
)


def split(registry: CollectorRegistry) -> tuple[dict[Any, float], dict[Any, float]]:
    """The samples of the ``a_`` metrics and of the ``b_`` ones, by name without the prefix
    and labels."""
    a: dict[Any, float] = {}
    b: dict[Any, float] = {}
    for family in registry.collect():
        for s in family.samples:
            key = (s.name[1:], tuple(sorted(s.labels.items())))
            (a if s.name.startswith("a") else b)[key] = s.value
    return a, b


def pair(registry: CollectorRegistry) -> tuple[Any, ...]:
    """Two histograms and two counters alike but for their names, labels bound."""
    made = []
    for prefix in "ab":
        h = Histogram(f"{prefix}_seconds", "h", ["route"], buckets=BOUNDS, registry=registry)
        c = Counter(f"{prefix}_things", "c", ["route"], registry=registry)
        made += [h.labels("r"), c.labels("r")]
    return tuple(made)


@settings(max_examples=200, deadline=None)
@given(AMOUNTS, st.integers(0, 5))
def test_hot_recording_equals_prometheus_clients_own(amounts: list[float], incs: int) -> None:
    registry = CollectorRegistry()
    own_h, own_c, hot_h, hot_c = pair(registry)
    fast, inc = metrics.HotHistogram(hot_h), metrics.hot_inc(hot_c)
    for amount in amounts:
        own_h.observe(amount)
        fast.observe(amount)
    for n in range(incs):
        own_c.inc(n)
        inc(n)
    a, b = split(registry)
    assert a == b
    assert a["_seconds_count", (("route", "r"),)] == len(amounts)


def test_the_shared_files_of_workers_hold_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``--workers`` every value lives in a file of the process: the hot recorders write
    through the same values, so a scrape summing the files reads what ``observe`` wrote."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.MultiProcessValue())
    registry = CollectorRegistry()  # the metrics themselves are not registered: only files
    own_h, own_c, hot_h, hot_c = pair(registry)
    fast, inc = metrics.HotHistogram(hot_h), metrics.hot_inc(hot_c)
    for amount in (0.0, 0.001, 0.003, 0.7, 12.0, 0.0025):
        own_h.observe(amount)
        fast.observe(amount)
    own_c.inc(3)
    inc(3)
    scraped = CollectorRegistry()
    MultiProcessCollector(scraped, path=str(tmp_path))
    a, b = split(scraped)
    assert a == b
    assert a["_seconds_count", (("route", "r"),)] == 6
