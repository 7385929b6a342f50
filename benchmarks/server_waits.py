"""Where a message waited inside the server during a benchmark phase, from the gateway's own
histograms (``/metrics`` before and after the phase, the difference of the two).

The chat workload's latency runs from the moment a POST was due to the frame's arrival; these
split the server's part of it: the POST itself (arrival to the end of its response), the
store write inside it (queueing for the writer, the batch, the commit, the wake-up of the
loop) and the transaction alone (BEGIN to COMMIT). A client-side tail that the server's
histograms do not show is the load generator's or the fan-out's; one that they do show is
placed by them. The buckets are coarse (1, 2.5, 5, 10, 25 ms...): the shares over 5 and 10 ms
are exact, a p99 is given as the bucket it falls in ("<= 10 ms").
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import httpx

# name -> (histogram, label filter: every label given must match; a value starting with "*"
# matches a label that ends with the rest, as the route templates do)
WATCHED: dict[str, tuple[str, dict[str, str]]] = {
    "POST a message": (
        "inboxgate_http_request_duration_seconds",
        {"method": "POST", "route": "*/messages"},
    ),
    "store write": ("inboxgate_store_write_seconds", {}),
    "transaction": ("inboxgate_store_commit_seconds", {}),
}

# Greedy: a route template's label value holds braces of its own.
_LINE = re.compile(r"^(?P<name>[a-z_]+)_bucket\{(?P<labels>.*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

# A scrape: watched name -> upper bound (seconds; inf last) -> cumulative count.
Snapshot = dict[str, dict[float, float]]


class Waits(NamedTuple):
    observed: int
    over_5ms: float  # share of them, 0-1
    over_10ms: float
    p99_le_ms: float  # the upper bound of the bucket the 99th percentile falls in (inf: over all)


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    for key, value in wanted.items():
        have = labels.get(key)
        if have is None:
            return False
        if value.startswith("*") and not have.endswith(value[1:]):
            return False
        if not value.startswith("*") and have != value:
            return False
    return True


def parse(text: str) -> Snapshot:
    """The watched histograms' cumulative buckets in an exposition ``text``, summed over
    every series that matches (a route template per conversation path shape)."""
    found: Snapshot = {name: {} for name in WATCHED}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        bound = float(labels.pop("le", "nan").replace("+Inf", "inf"))
        for name, (metric, wanted) in WATCHED.items():
            if m["name"] == metric and _matches(labels, wanted):
                buckets = found[name]
                buckets[bound] = buckets.get(bound, 0.0) + float(m["value"])
    return found


def scrape(port: int, host: str = "127.0.0.1") -> Snapshot:
    return parse(httpx.get(f"http://{host}:{port}/metrics", timeout=10).text)


def between(before: Snapshot, after: Snapshot) -> dict[str, Waits]:
    """What was observed between two scrapes, per watched histogram."""
    out: dict[str, Waits] = {}
    for name, buckets in after.items():
        earlier = before.get(name, {})
        diff = sorted((b, c - earlier.get(b, 0.0)) for b, c in buckets.items())
        total = diff[-1][1] if diff else 0.0
        if total <= 0:
            out[name] = Waits(0, math.nan, math.nan, math.nan)
            continue
        upto = dict(diff)
        p99 = next((b for b, c in diff if c >= 0.99 * total), math.inf)
        out[name] = Waits(
            observed=int(total),
            over_5ms=1 - upto.get(0.005, math.nan) / total,
            over_10ms=1 - upto.get(0.01, math.nan) / total,
            p99_le_ms=p99 * 1000,
        )
    return out


def describe(waits: dict[str, Waits]) -> str:
    """One line for a log: each histogram's p99 bucket and share over 10 ms."""
    return "; ".join(
        f"{name} p99 <= {w.p99_le_ms:g} ms, {w.over_10ms:.1%} over 10 ms"
        for name, w in waits.items()
        if w.observed
    )
