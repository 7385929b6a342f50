"""Every Prometheus metric the gateway exports, defined once, and the ``/metrics`` text.

Recording is meant to cost next to nothing on the hot path: a metric with fixed labels is
bound to its child once (here or in the recorder's ``__init__``), and the HTTP layer caches its
children per label tuple, so a request costs a dict lookup, one counter increment and one
histogram observation. On the paths every request takes, those go through :func:`hot_inc` and
:class:`HotHistogram`, which add to the child's values directly: prometheus_client's own
``inc``/``observe`` check the metric and walk the buckets in Python on every call, and the
message path's nine of them were 9% of the event loop's instructions per POST (callgrind).
docs/metrics.md lists every metric with its labels and meaning.

Several worker processes (``inboxgate serve --workers N``) answer one port, and a scrape
reaches one of them; the CLI then points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start (:func:`prepare_multiprocess_dir`), prometheus_client keeps each
process's values in files there, and :func:`exposition` sums them: counters and histograms
add up, gauges by their ``multiprocess_mode`` (``livesum``: what the live workers hold in
all; ``livemax``: the same database seen by every worker).
"""

from __future__ import annotations

import bisect
import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

# ``*_created`` series double every counter's output and say nothing a scrape needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: from a 1 ms read to a 10 s timeout.
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# -- recording on the hot path ---------------------------------------------------------------


def hot_inc(child: Counter) -> Callable[[float], None]:
    """``child.inc`` without its checks: the value's own ``inc`` (a lock and an addition, or
    the shared file's slot under ``--workers``). ``child`` is a counter with its labels bound;
    the amount is never negative."""
    value: Any = child._value  # prometheus_client's ValueClass, the same in both modes
    inc: Callable[[float], None] = value.inc
    return inc


class HotHistogram:
    """``child.observe`` without its checks and bucket walk: the sum and the one bucket that
    counts ``amount`` (the first bound at or above it, as ``observe`` finds it; the buckets
    are cumulated at exposition). ``child`` is a histogram with its labels bound; amounts are
    durations and sizes, never NaN."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, child: Histogram) -> None:
        inner: Any = child
        self._bounds: list[float] = list(inner._upper_bounds)
        self._buckets: list[Any] = list(inner._buckets)
        self._sum: Any = inner._sum

    def observe(self, amount: float) -> None:
        self._sum.inc(amount)
        self._buckets[bisect.bisect_left(self._bounds, amount)].inc(1)


# -- HTTP ------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "inboxgate_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "inboxgate_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=LATENCY,
)

# -- messages --------------------------------------------------------------------------------

MESSAGES_CREATED = Counter(
    "inboxgate_messages_created",
    "Messages stored, by who sent them: public (a customer, public API), agent, bot, or api "
    "(an incoming message posted by an integrator through the agent API: an API channel).",
    ["source"],
)
_MESSAGE_SOURCES = {
    name: hot_inc(MESSAGES_CREATED.labels(name)) for name in ("public", "agent", "bot", "api")
}


def message_created(source: str) -> None:
    """Count one stored message; ``source`` is public, agent, bot or api."""
    _MESSAGE_SOURCES[source](1)


# -- realtime (/cable) -----------------------------------------------------------------------

CABLE_CONNECTIONS = Gauge(
    "inboxgate_cable_connections",
    "Websocket connections open on /cable.",
    multiprocess_mode="livesum",
)
CABLE_CONNECTS = Counter("inboxgate_cable_connects", "Websocket connections accepted on /cable.")
CABLE_SUBSCRIPTIONS = Gauge(
    "inboxgate_cable_subscriptions",
    "Channel subscriptions confirmed and not yet ended, over every open connection.",
    multiprocess_mode="livesum",
)
CABLE_SUBSCRIBES = Counter(
    "inboxgate_cable_subscribe_requests",
    "Subscribe commands answered: confirmed, rejected, or unavailable (store down: the client "
    "is told to reconnect).",
    ["outcome"],
)
CABLE_STREAMS = Gauge(
    "inboxgate_cable_streams",
    "Distinct streams some local connection listens to (each is one broker subscription).",
    multiprocess_mode="livesum",
)
CABLE_FRAMES = Counter("inboxgate_cable_frames_sent", "Websocket frames written to clients.")
CABLE_BYTES = Counter(
    "inboxgate_cable_sent_bytes",
    "Size of the websocket frames written to clients (lean transport: bytes on the wire; asgi "
    "transport: bytes for binary frames, characters for text frames).",
)
CABLE_SLOW = Counter(
    "inboxgate_cable_slow_consumers",
    "Connections dropped as too slow (send buffer over INBOXGATE_CABLE_SEND_BUFFER_BYTES).",
)
CABLE_RESTORES = Counter(
    "inboxgate_cable_session_restores",
    "Session restores asked for (?sid=): restored, unknown (expired or never seen), or "
    "deferred (store down: the client is told to come back).",
    ["outcome"],
)
CABLE_HISTORY = Counter(
    "inboxgate_cable_history_requests",
    "History commands answered: served or rejected (the log no longer holds the position).",
    ["outcome"],
)
CABLE_HISTORY_EVENTS = Counter(
    "inboxgate_cable_history_events", "Events replayed to clients by history commands."
)
CABLE_GAPS = Counter(
    "inboxgate_cable_gaps",
    "Streams found behind their log (a broker message lost or a reconnect): healed from the "
    "log, or unavailable (store down: the listeners are told to resync).",
    ["outcome"],
)
CABLE_HEALED_EVENTS = Counter(
    "inboxgate_cable_healed_events", "Events re-read from the log to heal gaps."
)

# -- store -----------------------------------------------------------------------------------

STORE_WRITE_BATCH = Histogram(
    "inboxgate_store_write_batch_size",
    "Write operations committed together (SQLite group commit; PostgreSQL: a node's batch of "
    "customers' messages, or a conversation's queued writes).",
    ["engine"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
STORE_COMMIT = Histogram(
    "inboxgate_store_commit_seconds",
    "Time of one write transaction, from BEGIN to COMMIT, with every operation in it.",
    ["engine"],
    buckets=FAST,
)
STORE_WRITER_CPU = Counter(
    "inboxgate_store_writer_cpu_seconds",
    "CPU time of SQLite's one writer thread in its batches (running the operations, encoding "
    "their events, committing); with the commit time's sum, how much of the writer's time is "
    "its own work and how much a wait (disk, the GIL).",
    ["engine"],
)
STORE_WRITE = Histogram(
    "inboxgate_store_write_seconds",
    "Time a caller waits for one write, queueing and retries included.",
    ["engine"],
    buckets=FAST,
)
STORE_READ = Histogram(
    "inboxgate_store_read_seconds",
    "Time a caller waits for one read operation (every query of it, on one snapshot).",
    ["engine"],
    buckets=FAST,
)
STORE_UNAVAILABLE = Counter(
    "inboxgate_store_unavailable",
    "Operations that failed because the database could not be reached (answered 503).",
    ["engine"],
)
STORE_RETRIES = Counter(
    "inboxgate_store_retries",
    "Operations run again after a conflict, a deadlock or a lost connection (PostgreSQL).",
    ["engine"],
)

# -- broker ----------------------------------------------------------------------------------

BROKER_QUEUE = Gauge(
    "inboxgate_broker_publish_queue",
    "Committed batches of events waiting to be published to the broker.",
    multiprocess_mode="livesum",
)
BROKER_LAG = Histogram(
    "inboxgate_broker_publish_lag_seconds",
    "Time from a commit to the broker accepting its events.",
    buckets=FAST,
)
BROKER_PUBLISHES = Counter(
    "inboxgate_broker_publishes",
    "Batches of committed events: published, unavailable (broker down: left to the log, "
    "healed by the hubs) or dropped (queue full: likewise).",
    ["outcome"],
)
BROKER_CONNECTED = Gauge(
    "inboxgate_broker_connected",
    "1 while the broker can publish (Redis: its subscriber is connected), else 0.",
    multiprocess_mode="livemin",
)
BROKER_RECONNECTS = Counter(
    "inboxgate_broker_reconnects",
    "Redis subscriber reconnections (each re-reads every listened stream from the log).",
)
BROKER_REDIS_PENDING = Gauge(
    "inboxgate_broker_redis_pending",
    "Messages queued for the Redis flusher.",
    multiprocess_mode="livesum",
)

# -- webhooks --------------------------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "inboxgate_webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered (2xx), failed (will be retried), dead "
    "(given up: a dead letter).",
    ["outcome"],
)
WEBHOOK_DURATION = Histogram(
    "inboxgate_webhook_delivery_seconds",
    "Time of one delivery attempt (address check, connect, request, response headers).",
    buckets=LATENCY,
)
WEBHOOK_QUEUE = Gauge(
    "inboxgate_webhook_queue",
    "Pending deliveries in the outbox (due now, waiting for a retry, or being sent).",
    multiprocess_mode="livemax",
)
WEBHOOK_INFLIGHT = Gauge(
    "inboxgate_webhook_inflight",
    "Deliveries being sent by this node now.",
    multiprocess_mode="livesum",
)

# -- the process -----------------------------------------------------------------------------

LOOP_LAG = Histogram(
    "inboxgate_event_loop_lag_seconds",
    "How late a periodic timer fires: time the event loop was busy with something else.",
    buckets=FAST,
)
LOOP_LAG_LAST = Gauge(
    "inboxgate_event_loop_lag_last_seconds",
    "The last event loop lag measured (the worst live worker's).",
    multiprocess_mode="livemax",
)


# -- exposition ------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def _forget_dead_workers(path: str) -> None:
    """A worker that crashed left its live gauges behind (a clean exit removes them): drop
    the files of processes that no longer exist, so open connections are not counted twice."""
    for name in os.listdir(path):
        match = _LIVE_FILE.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, owned by someone else


def exposition() -> bytes:
    """The Prometheus text of this process or, in multiprocess mode, of every worker."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(path)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exiting() -> None:
    """Called when a worker's app stops: its live gauges leave the sums."""
    path = multiprocess_dir()
    if path is not None:
        with contextlib.suppress(OSError):
            _multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir() -> tuple[str, bool]:
    """Before several workers start: the directory they share, emptied of an earlier run's
    files, and whether this call created it (and so removes it at the end). An operator's
    ``PROMETHEUS_MULTIPROC_DIR`` is used as it is; otherwise a fresh temporary one."""
    path = multiprocess_dir()
    created = path is None
    if path is None:
        path = tempfile.mkdtemp(prefix="inboxgate-metrics-")
    else:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
    os.environ[MULTIPROC_ENV] = path
    return path, created


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.environ.get(MULTIPROC_ENV) == path:
        del os.environ[MULTIPROC_ENV]
