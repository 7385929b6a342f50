"""The delivery worker: sends what the outbox holds, retries with backoff, dead-letters.

One task, owned by the app's lifespan. It sleeps until the earliest pending delivery is due,
and is woken at once when a commit logged a webhook-bearing event (``logged``, one of the
services' event sinks) or when one of its deliveries finishes. Pending deliveries survive a
restart in the database and are picked up on start. Each delivery is POSTed with httpx under
a timeout, after the SSRF guard checked its URL again; a 2xx response delivers it, anything
else (an error status, a timeout, a refused connection) schedules a retry
(:func:`gateway.backoff.backoff`) until ``webhook_max_attempts`` attempts, after which it is dead.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus

from .. import metrics
from ..backoff import backoff
from ..domain import outbox
from ..logs import StateLog
from ..services.context import Context
from ..store import StoreUnavailable
from ..store.records import LoggedEvent
from . import guard, signing

log = logging.getLogger("inboxgate.webhooks")

# Without a wake-up, the worker still looks at the outbox this often (another node's commits,
# a clock that jumped).
POLL_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
# The outbox's pending count (a gauge) is read this often, not per round.
COUNT_EVERY_SECONDS = 10.0
_DELIVERED = metrics.WEBHOOK_DELIVERIES.labels("delivered")
_FAILED = metrics.WEBHOOK_DELIVERIES.labels("failed")
_DEAD = metrics.WEBHOOK_DELIVERIES.labels("dead")


class WebhookWorker:
    def __init__(
        self,
        ctx: Context,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: guard.Resolver = guard.system_resolver,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.transport = transport
        self.resolver = resolver
        self.rand = rand
        self._wake: anyio.Event | None = None
        self._woken = False
        self._inflight = 0
        self._last_prune = 0.0
        self._last_count = -COUNT_EVERY_SECONDS
        self.delivered = 0
        self.failed_attempts = 0
        self.dead = 0
        # Per receiver URL: failing is said once when it starts and once when it answers
        # again; so is its first dead letter, the further ones go to info.
        self._failing = StateLog(log)
        self._dead_letters = StateLog(log)

    @property
    def inflight(self) -> int:
        """Deliveries being sent now."""
        return self._inflight

    # -- waking --------------------------------------------------------------------------

    def logged(self, entries: list[LoggedEvent]) -> None:
        """Event sink: wake up for a commit that enqueued deliveries (not for every event: a
        round reads the outbox, which would cost a read per message of an inbox nobody
        listens to). Deliveries enqueued on another node are found by the next poll."""
        if any(entry.deliveries for entry in entries):
            self.wake()

    def wake(self) -> None:
        self._woken = True
        if self._wake is not None:
            self._wake.set()

    # -- running -------------------------------------------------------------------------

    @property
    def lease(self) -> float:
        """How long a claimed delivery is left to its sender before it is due again."""
        return 3 * self.settings.webhook_timeout + 10.0

    def client(self) -> httpx.AsyncClient:
        concurrency = self.settings.webhook_concurrency
        # Guarded deliveries connect to a checked address, so pooled connections would be keyed
        # by address alone: one opened (and TLS-verified) for one host name must not carry a
        # request for another name on the same address. No keep-alive then, as Chatwoot's.
        keepalive = concurrency if self.settings.webhook_allow_private else 0
        return httpx.AsyncClient(
            transport=self.transport,
            timeout=httpx.Timeout(self.settings.webhook_timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=keepalive),
            follow_redirects=False,
            trust_env=False,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver until cancelled."""
        async with self.client() as client, anyio.create_task_group() as tasks:
            task_status.started()
            while True:
                self._woken = False
                try:
                    delay = await self._round(client, tasks)
                    await self._maybe_prune()
                    await self._maybe_count()
                except StoreUnavailable:
                    delay = 1.0
                except Exception:  # never let one bad round end the app's task group
                    log.exception("webhook worker round failed")
                    delay = POLL_SECONDS
                await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        if self._woken:
            return
        self._wake = anyio.Event()
        with anyio.move_on_after(max(0.0, delay)):
            await self._wake.wait()
        self._wake = None

    async def _round(self, client: httpx.AsyncClient, tasks: TaskGroup) -> float:
        """Start the due deliveries that capacity allows; return how long to sleep."""
        store = self.ctx.store
        now = self.ctx.now()
        free = self.settings.webhook_concurrency - self._inflight
        due = await store.read(outbox.next_due)
        if free > 0 and due is not None and due <= now:
            for delivery in await store.write(outbox.claim, now, free, self.lease):
                self._inflight += 1
                tasks.start_soon(self._deliver_owned, client, delivery)
            due = await store.read(outbox.next_due)
        if free <= 0 or due is None:
            return POLL_SECONDS  # a finishing delivery or a new event wakes the worker
        return min(POLL_SECONDS, max(0.0, due - self.ctx.now()))

    async def _deliver_owned(self, client: httpx.AsyncClient, delivery: outbox.Delivery) -> None:
        try:
            await self.deliver(client, delivery)
        except StoreUnavailable:
            # The store says when it goes down; the delivery is due again after its lease.
            log.info("outcome of webhook delivery %s not recorded: store unavailable",
                     delivery.uuid)  # fmt: skip
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", delivery.uuid)
        finally:
            self._inflight -= 1
            self.wake()

    async def run_once(self, client: httpx.AsyncClient, limit: int = 100) -> int:
        """Claim what is due now and deliver it, concurrently; return how many were tried.
        (The loop of :meth:`run`, one round at a time: for tests and tools.)"""
        claimed = await self.ctx.store.write(outbox.claim, self.ctx.now(), limit, self.lease)
        async with anyio.create_task_group() as tasks:
            for delivery in claimed:
                tasks.start_soon(self.deliver, client, delivery)
        return len(claimed)

    # -- one delivery --------------------------------------------------------------------

    async def deliver(self, client: httpx.AsyncClient, delivery: outbox.Delivery) -> bool:
        """One attempt of a claimed delivery, and its outcome recorded. True if delivered."""
        started = time.perf_counter()
        try:
            return await self._attempt(client, delivery)
        finally:
            metrics.WEBHOOK_DURATION.observe(time.perf_counter() - started)

    async def _attempt(self, client: httpx.AsyncClient, delivery: outbox.Delivery) -> bool:
        try:
            target = await guard.check(
                delivery.url,
                allow_private=self.settings.webhook_allow_private,
                resolver=self.resolver,
            )
        except guard.UrlUnresolvable as exc:
            await self._failed(delivery, str(exc), None, permanent=False)
            return False
        except guard.UrlRefused as exc:
            await self._failed(delivery, f"refused: {exc}", None, permanent=True)
            return False
        timestamp = int(self.ctx.now())
        headers = signing.headers(delivery.secret, delivery.uuid, timestamp, delivery.body)
        if target.host_header is not None:
            headers["Host"] = target.host_header
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        status: int | None = None
        error = "timed out"
        # The body is never read; the overall cap stops a receiver that drips its headers.
        with anyio.move_on_after(3 * self.settings.webhook_timeout):
            try:
                async with client.stream(
                    "POST", target.url, content=delivery.body, headers=headers,
                    extensions=extensions,
                ) as response:  # fmt: skip
                    status = response.status_code
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if status is not None and 200 <= status < 300:
            await self.ctx.store.write(outbox.delivered, delivery, status, self.ctx.now())
            self.delivered += 1
            _DELIVERED.inc()
            self._answered(delivery.url)
            return True
        await self._failed(delivery, error, status, permanent=False)
        return False

    async def _failed(
        self, delivery: outbox.Delivery, error: str, status: int | None, *, permanent: bool
    ) -> None:
        now = self.ctx.now()
        self.failed_attempts += 1
        url = delivery.url
        if permanent or delivery.attempts >= self.settings.webhook_max_attempts:
            link = self.ctx.files.link_builder(self.settings.public_url)
            await self.ctx.store.write_on_commit(
                self.ctx.emitted, outbox.give_up, delivery, error, status, link, now
            )
            self.dead += 1
            _DEAD.inc()
            self._failing.failing(url, "webhook deliveries to %s are failing: %s", url, error)
            if not self._dead_letters.failing(
                url, "webhook delivery %s (%s to %s) is dead after %d attempts: %s (further "
                "dead letters for this URL are logged at info until it answers again)",
                delivery.uuid, delivery.event, url, delivery.attempts, error,
            ):  # fmt: skip
                log.info(
                    "webhook delivery %s (%s to %s) is dead after %d attempts: %s",
                    delivery.uuid, delivery.event, url, delivery.attempts, error,
                )  # fmt: skip
            return
        _FAILED.inc()
        self._failing.failing(
            url, "webhook deliveries to %s are failing (%s); retrying with backoff", url, error
        )
        delay = backoff(
            delivery.attempts - 1,  # the first failed attempt waits ``webhook_backoff_base``
            self.settings.webhook_backoff_base,
            self.settings.webhook_backoff_max,
            rand=self.rand,
        )
        await self.ctx.store.write(outbox.retry, delivery, error, status, now + delay, now)
        log.debug(
            "webhook delivery %s attempt %d failed (%s); retrying in %.1f s",
            delivery.uuid, delivery.attempts, error, delay,
        )  # fmt: skip

    def _answered(self, url: str) -> None:
        """A 2xx from ``url``: if it was failing, say once that it is back."""
        if not self._failing.is_failing(url):
            return
        self._dead_letters.forget(url)
        self._failing.recovered(url, "webhook receiver %s answers again (%d failed attempts)", url)

    async def _maybe_count(self) -> None:
        now = time.monotonic()
        if now - self._last_count < COUNT_EVERY_SECONDS:
            return
        self._last_count = now
        metrics.WEBHOOK_QUEUE.set(await self.ctx.store.read(outbox.pending_count))

    async def _maybe_prune(self) -> None:
        days = self.settings.event_retention_days
        now = self.ctx.now()
        if not days or now - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        dropped = await self.ctx.store.write(outbox.prune, now - days * 86400.0)
        if dropped:
            log.info("pruned %d finished webhook deliveries older than %d days", dropped, days)
