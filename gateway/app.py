"""The ASGI application: ``create_app(settings, store=...)`` builds it; ``lifespan`` only starts
and stops resources."""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import metrics
from .attachments import FileStore
from .broker import Broker, MemoryBroker
from .domain import events, instance_secrets
from .edge import Edge
from .errors import GatewayError
from .fastpath import HotRoutes
from .health import Health
from .http import error_response, http_error_response
from .logs import current_request_id
from .observability import monitor, node_sampler
from .openapi import api_docs_routes
from .ratelimit import IpLimit, MemoryRateLimiter, RateLimiter
from .realtime import Realtime
from .realtime.endpoint import CableEndpoint, CableFirst
from .redis_shared import redis_broker, redis_shared
from .routes.agent import agent_routes
from .routes.highlevel import highlevel_routes
from .routes.platform import platform_routes
from .routes.public import public_routes
from .routes.static import static_routes
from .services.agent_conversations import reopen_snoozed_forever
from .services.context import Context, EventSink
from .settings import Settings
from .store import Store, StoreUnavailable, open_store
from .webhooks.worker import WebhookWorker

log = logging.getLogger("inboxgate")


async def _gateway_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_error_response(exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    response = error_response(exc)
    request_id = current_request_id()  # answered outside the observability layer
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id
    return response


PRUNE_EVERY_SECONDS = 3600.0


async def prune_events(store: Store, retention_days: int, clock: Callable[[], float]) -> None:
    """Drop event-log entries past the retention setting, hourly. History older than that is
    gone; a client that was away longer catches up through the messages list."""
    while True:
        try:
            dropped = await store.write(events.prune, clock() - retention_days * 86400.0)
            if dropped:
                log.info("pruned %d event log entries older than %d days", dropped, retention_days)
        except StoreUnavailable:
            log.info("event log pruning skipped: store unavailable")
        await anyio.sleep(PRUNE_EVERY_SECONDS)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    broker: Broker | None = None,
    rate_limiter: RateLimiter | None = None,
    clock: Callable[[], float] = time.time,
    on_events: EventSink | None = None,
) -> CableFirst:
    """The gateway. ``on_events`` also receives every committed batch of logged events (after
    the realtime publisher), for tests and embedding."""
    settings = settings or Settings.from_env()
    store = store or open_store(settings)
    # With a Redis URL, what the nodes must share lives in Redis; otherwise in the process.
    shared = redis_shared(settings) if settings.redis_url else None
    if broker is None:
        broker = redis_broker(settings) if settings.redis_url else MemoryBroker()
    realtime = Realtime(
        settings, store, broker, clock=clock,
        sessions=shared.sessions if shared else None, presence=shared.presence if shared else None,
    )  # fmt: skip
    limiter = rate_limiter or (shared.limiter if shared else MemoryRateLimiter())
    files = FileStore(
        settings.data_dir / "attachments", settings.secret_key, settings.attachment_url_ttl,
        settings.max_attachment_bytes,
    )  # fmt: skip
    ctx = Context(
        store=store, settings=settings, files=files, clock=clock, typing=realtime.typing_changed
    )  # fmt: skip
    webhooks = WebhookWorker(ctx)
    # Where every committed batch of logged events goes, in this order: the realtime publisher
    # (the broker, then the sockets), the webhook worker (woken to send what the commit
    # enqueued), then the embedder's hook.
    ctx.event_sinks = [realtime.publisher.logged, webhooks.logged]
    if on_events is not None:
        ctx.event_sinks.append(on_events)
    health = Health(store, shared.client if shared else None)
    sample = node_sampler(realtime, webhooks)

    async def use_database_secret_key() -> None:
        """No key configured (PostgreSQL without INBOXGATE_SECRET_KEY): the database keeps the
        deployment's, so every node sharing it signs links and keys stream ids alike. Read
        before the first connection is served, when nothing has used a key yet."""
        key = await store.write(
            instance_secrets.get_or_create, instance_secrets.SECRET_KEY, secrets.token_urlsafe(32)
        )
        # Given to what signs and keys; the settings stay as read (empty: the database's).
        files.use_secret_key(key)
        realtime.use_secret_key(key)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        try:
            if not settings.secret_key:
                await use_database_secret_key()
            async with anyio.create_task_group() as tasks:
                if settings.event_retention_days:
                    tasks.start_soon(prune_events, store, settings.event_retention_days, clock)
                await tasks.start(realtime.run)
                tasks.start_soon(reopen_snoozed_forever, ctx)
                await tasks.start(webhooks.run)
                tasks.start_soon(monitor, sample)
                yield
                # Not ready first, then the websockets (GatewayServer did both already).
                await health.drain(realtime.hub)
                tasks.cancel_scope.cancel()
        finally:
            await store.close()
            if shared is not None:
                await shared.client.aclose()
            metrics.process_exiting()

    upgrades = IpLimit(
        limiter, prefix="cable:", what="websocket connections",
        limit=settings.cable_connects_per_ip, window=settings.rate_limit_window,
        safelist=settings.rate_limit_safelist, clock=clock,
    )  # fmt: skip
    cable = CableEndpoint(realtime.hub, upgrades)
    routes = [
        Route("/cable", cable),  # plain HTTP: the 404 page (websockets: CableFirst)
        *public_routes(ctx),
        *agent_routes(ctx),
        *platform_routes(ctx),
        *highlevel_routes(ctx),
        *static_routes(settings),
        *api_docs_routes(settings),
    ]
    # One layer in front of the router: CORS, the body and rate limits, NUL paths, the .json
    # suffix, request ids, metrics and the probes (gateway/edge.py says in which order).
    edge = Middleware(
        Edge, settings=settings, health=health, limiter=limiter, inbox_origins=ctx.inbox_origins,
        clock=clock, hot=HotRoutes(routes), sample=sample,
    )  # fmt: skip
    app = CableFirst(
        cable,
        routes=routes,
        middleware=[edge],
        lifespan=lifespan,
        exception_handlers={
            GatewayError: _gateway_error,
            StoreUnavailable: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.ctx = ctx
    app.state.realtime = realtime
    app.state.cable = cable
    app.state.webhooks = webhooks
    app.state.health = health
    return app
