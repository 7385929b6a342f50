"""When SQLite's writer, having taken every queued write, waits for one more before it commits.

A commit has a cost of its own, whatever it carries: its ``BEGIN``, the sync of the WAL, the
wake-ups of the writer and of the event loop: about 250 µs of the core for a message alone
(the POST load at one connection, ``benchmarks.http_load``) against 45-55 µs for each more
message a commit carries. The writer commits as soon as the queue is empty, so under a load of
many clients it often commits a handful of messages, with more arriving a few microseconds
later. So while writes arrive close together, the writer waits for the next one (up to twice
the usual gap, and less than ``most`` seconds) before it commits, as PostgreSQL's
``commit_delay`` does.

Measured (interleaved pairs, this module's rules against none): the POST load at 32
connections answered 4-10% more requests (6,580 / 6,737 against 6,224 / 6,081 req/s; 5,825 /
5,837 against 5,466 / 5,599 in a slower hour), one connection the same. A fixed wait of 0.8 ms
before every commit did more for a steady load (the chat workload at 1,000 messages/s: 17%
less server CPU a message) but added 0.9 ms to its median and halved the rate of a client that
waits for each answer before its next write, every wait ending empty. Hence the two rules:

- the writer waits only while the gaps between arrivals (their moving average) are under half
  of ``most``: about 2,500 writes/s and more; a steady 1,000 a second is not waited for (the
  chat workload at 1,000 and 3,000 messages/s: server CPU a message and p99 as without);
- a wait that ends empty says the next write was not on its way (a client waiting for this
  one's answer): the writer then commits without waiting for the next ``skip`` batches, twice
  as many after each empty wait in a row (up to ``MAX_SKIP``).

Sans-I/O: the writer says when the writes it takes arrived and what a wait found; this says
how long to wait.
"""

from __future__ import annotations

import math

# The longest wait for one more write before a commit.
GATHER_SECONDS = 0.0008
# Weight of the newest gap in the moving average.
ALPHA = 0.125
# The most batches committed without waiting after empty waits in a row.
MAX_SKIP = 256


class Gathering:
    """The writer's wait before a commit: ``arrived`` for every write taken (its arrival
    time), ``wait`` once the queue is empty (seconds; 0: commit now), ``waited`` after."""

    __slots__ = ("_backoff", "_gap", "_last", "_skip", "most")

    def __init__(self, most: float = GATHER_SECONDS) -> None:
        if most < 0:
            raise ValueError("the longest wait before a commit cannot be negative")
        self.most = most
        self._gap = math.inf  # the moving average of the gaps between arrivals
        self._last: float | None = None  # the latest arrival
        self._skip = 0  # batches still to commit without waiting
        self._backoff = 1  # the next empty wait's skip

    @property
    def gap(self) -> float:
        """The moving average of the gaps between arrivals (infinity before two)."""
        return self._gap

    def arrived(self, at: float) -> None:
        """A write that arrived at ``at`` (a monotonic clock, in seconds) was taken."""
        last = self._last
        self._last = at
        if last is None:
            return
        gap = max(0.0, at - last)
        self._gap = gap if self._gap == math.inf else self._gap + ALPHA * (gap - self._gap)

    def wait(self) -> float:
        """How long to wait for one more write before this batch's commit (0: none)."""
        if self.most <= 0 or 2 * self._gap >= self.most:
            return 0.0
        if self._skip:
            self._skip -= 1
            return 0.0
        return 2 * self._gap  # under ``most``, as above

    def waited(self, found: bool) -> None:
        """What the wait that ``wait`` asked for found: a write, or none in time."""
        if found:
            self._backoff = 1
            return
        self._skip = self._backoff
        self._backoff = min(2 * self._backoff, MAX_SKIP)
