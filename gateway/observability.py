"""The operating layer: request ids, HTTP metrics and the access log, and the answers to
``/health``, ``/ready`` and ``/metrics`` (the parts :class:`gateway.edge.Edge` runs for every
request); and the node monitor, a periodic task of the app's lifespan that measures event-loop
lag and samples queue depths.

The request path costs: one header scan for ``X-Request-Id``, a context variable set and
reset, one appended response header, and, with metrics on, a cached label lookup, a counter
increment and a histogram observation. The access line (off by default) is one more log call.
"""

from __future__ import annotations

import hmac
import itertools
import os
import re
import time
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import Scope, Send

from client_sdk import protocol as p

from . import metrics
from .broker.redis import RedisBroker
from .health import Health
from .logs import ACCESS, MAX_LOGGED_PATH, RequestContext
from .realtime import Realtime
from .settings import Settings
from .webhooks.worker import WebhookWorker

_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "unmatched"
MAX_CACHED_LABELS = 10_000
JSON = [(b"content-type", b"application/json; charset=utf-8")]

Children = tuple[Any, Any]  # (a counter child's hot_inc, a histogram child's HotHistogram)
# Generated ids: random per process, then counted. Unique across processes and nodes, and a
# tenth of the cost of uuid4 on every request without one (ids need not be unpredictable).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it is sane (1-128 visible ASCII characters), else a
    new one."""
    for name, value in headers:
        if name == b"x-request-id":
            if _SANE_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class HttpRecorder:
    """HTTP metrics (by route template, method and status) and the access line (off by
    default), for the requests :class:`gateway.edge.Edge` passes to the app."""

    def __init__(self, settings: Settings) -> None:
        self.record = settings.metrics_enabled
        self.access = settings.access_log
        self._children: dict[tuple[str, str, int], Children] = {}

    def finish(self, ctx: RequestContext, status: int, started: float) -> None:
        route = ctx.route
        self.observe(route or UNMATCHED, ctx.method, status, started)
        if self.access:
            elapsed = (time.perf_counter() - started) * 1000.0
            ACCESS.info(
                "%s %s %d %.1fms", ctx.method, route or ctx.path[:MAX_LOGGED_PATH], status,
                elapsed, extra={"status": status, "duration_ms": round(elapsed, 3)},
            )  # fmt: skip

    def observe(self, route: str, method: str, status: int, started: float) -> None:
        if not self.record:
            return
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            shown = method if method in _METHODS else "OTHER"
            children = (
                metrics.hot_inc(metrics.HTTP_REQUESTS.labels(route, shown, str(status))),
                metrics.HotHistogram(metrics.HTTP_DURATION.labels(route, shown)),
            )
            if len(self._children) < MAX_CACHED_LABELS:
                self._children[key] = children
        children[0](1)
        children[1].observe(time.perf_counter() - started)


class Probes:
    """``/health``, ``/ready`` and ``/metrics`` (when on), answered before CORS and the
    limits, so that the API's rate limit, body limit and CORS never apply to probes and
    scrapes."""

    def __init__(
        self, settings: Settings, health: Health, sample: Callable[[], None] = lambda: None
    ) -> None:
        self.health = health
        self.sample = sample
        metrics_path = settings.metrics_path if settings.metrics_enabled else None
        self.metrics_path = metrics_path
        self.paths = frozenset(p for p in ("/health", "/ready", metrics_path) if p)
        self.token = settings.metrics_token.encode()

    async def answer(self, path: str, scope: Scope, send: Send, header: tuple[bytes, bytes]) -> int:
        """Answer the probe at ``path`` (one of :attr:`paths`); the status sent."""
        if scope["method"] not in ("GET", "HEAD"):
            # As every other route of the gateway: an undeclared method is Rails' 404.
            body = p.StatusError(status=404, error="Not Found")
            return await respond(send, 404, p.encode(body), [*JSON, header])
        if path == "/health":
            return await respond(send, 200, b'{"status":"ok"}', [*JSON, header])
        if path == "/ready":
            ready, state = await self.health.ready()
            return await respond(send, 200 if ready else 503, p.encode(state), [*JSON, header])
        if self.token and not self._authorized(scope["headers"]):
            body = p.StatusError(status=401, error="Unauthorized")
            extra = [(b"www-authenticate", b'Bearer realm="metrics"'), header]
            return await respond(send, 401, p.encode(body), [*JSON, *extra])
        self.sample()
        text = await anyio.to_thread.run_sync(metrics.exposition)
        kind = (b"content-type", metrics.CONTENT_TYPE.encode())
        return await respond(send, 200, text, [kind, header])

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    given.strip(), self.token
                )
        return False


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """A whole answer in two messages, with its length (never chunked); the status sent."""
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})
    return status


# -- the node monitor ------------------------------------------------------------------------

MONITOR_SECONDS = 0.5


def node_sampler(realtime: Realtime, webhooks: WebhookWorker) -> Callable[[], None]:
    """Sets the gauges that are read from queues rather than counted as things happen."""
    broker = realtime.broker
    publisher = realtime.publisher

    def sample() -> None:
        metrics.BROKER_QUEUE.set(publisher.pending)
        connected = broker.running
        if isinstance(broker, RedisBroker):
            connected = connected and broker.connected
            metrics.BROKER_REDIS_PENDING.set(broker.pending)
        metrics.BROKER_CONNECTED.set(1 if connected else 0)
        metrics.WEBHOOK_INFLIGHT.set(webhooks.inflight)

    return sample


async def monitor(sample: Callable[[], None], interval: float = MONITOR_SECONDS) -> None:
    """Until cancelled (owned by the lifespan): how late each tick fires is the event loop's
    lag, time it spent on something that did not yield; then the sampled gauges."""
    while True:
        before = time.perf_counter()
        await anyio.sleep(interval)
        lag = max(0.0, time.perf_counter() - before - interval)
        metrics.LOOP_LAG.observe(lag)
        metrics.LOOP_LAG_LAST.set(lag)
        sample()
