"""The edge: the one pure-ASGI layer between the server and the router.

Everything that applies to a request before a route sees it is done here, in one frame (it
was six middlewares, each with its own frame and ``send`` wrapper on every request). In order,
which is what decides what each early answer carries:

1. a path with a NUL character names nothing: 404 before any lookup (the CORS check's inbox
   lookup included; PostgreSQL refuses NUL in text and would answer 500), a websocket is
   closed with 1008; no request id, not counted;
2. Rails routes take an optional ``.json`` format suffix on ``/public/`` paths: dropped;
3. a request id (the client's ``X-Request-Id`` when sane) on the response and on every log
   line of the request; ``/health``, ``/ready`` and ``/metrics`` are answered here
   (:class:`gateway.observability.Probes`), so CORS and the limits never apply to probes and
   scrapes; every other request is counted by route template
   (:class:`gateway.observability.HttpRecorder`);
4. CORS for ``/public/*``, outside the limits as rack-cors at position 0 in Chatwoot, so that
   a browser can read a 413 or 429 answer too: a refused origin is a 403 before anything can
   change, a preflight is answered here;
5. the request body limit: 413 for a body over ``max_body_bytes``, announced by
   Content-Length or streamed (then raised from ``receive`` inside the route, and mapped to
   its answer by the app's error handlers, CORS headers included);
6. the per-IP rate limit: 429;
7. then the route: one found in the hot routes' table (:class:`gateway.fastpath.HotRoutes`)
   is run here, its errors answered by the app's handlers; any other request goes on to
   Starlette's router.

An unexpected error leaves the request's context set on purpose: the server-error handler
outside logs the failure and answers 500, both with this request's id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from client_sdk import protocol as p

from .errors import PayloadTooLarge
from .fastpath import HotRoutes, handled_error, send_json
from .health import Health
from .http import error_response, json_response
from .logs import CURRENT, RequestContext
from .observability import JSON, HttpRecorder, Probes, request_id_of, respond
from .ratelimit import IpLimit, RateLimiter
from .settings import Settings

InboxOrigins = Callable[[str], Awaitable[list[str] | None]]
Header = tuple[bytes, bytes]

NOT_FOUND = p.encode(p.StatusError(status=404, error="Not Found"))
_INBOX_PATH = re.compile(r"^/public/api/v1/inboxes/([^/]+)")
_VARY = (b"vary", b"Origin")
_ALLOW_METHODS = (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS")
_MAX_AGE = (b"access-control-max-age", b"7200")


class Edge:
    """The layer itself; ``app`` is what it guards (the app's router, through Starlette's
    error handling)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        health: Health,
        limiter: RateLimiter,
        inbox_origins: InboxOrigins,
        clock: Callable[[], float],
        hot: HotRoutes | None = None,
        sample: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        # Set when the app sends HTTP requests straight here, past the server-error layer
        # (``CableFirst``): then an unexpected error is answered here, with the app's 500
        # handler, before it goes on up as that layer would let it.
        self.unexpected: Callable[[Scope, Receive, Send, Exception], Awaitable[None]] | None = None
        self.hot = hot
        self.probes = Probes(settings, health, sample)
        self.recorder = HttpRecorder(settings)
        self.origins = settings.cors_origins
        self.any_origin = "*" in settings.cors_origins
        self.inbox_origins = inbox_origins
        self.max_body = settings.max_body_bytes
        self.requests = IpLimit(
            limiter, prefix="ip:", what="requests", limit=settings.rate_limit_per_ip,
            window=settings.rate_limit_window, safelist=settings.rate_limit_safelist,
            clock=clock,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and "\x00" in scope.get("path", ""):
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path:
            await respond(send, 404, NOT_FOUND, JSON)
            return
        public = path.startswith("/public/")
        sent_scope = scope
        if public and path.endswith(".json"):
            # A copy: the server's scope keeps the path the client sent (the server-error
            # handler logs that one).
            path = path[: -len(".json")]
            scope = {**scope, "path": path}
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        id_header = (b"x-request-id", request_id.encode("ascii"))
        if path in self.probes.paths:
            try:
                status = await self.probes.answer(path, scope, send, id_header)
            except Exception as exc:
                if self.unexpected is not None:  # a probe answers in one send, or none

                    async def with_id(message: Message) -> None:
                        if message["type"] == "http.response.start":
                            message["headers"] = [*message.get("headers", ()), id_header]
                        await send(message)

                    await self.unexpected(scope, receive, with_id, exc)
                raise
            self.recorder.observe(path, scope["method"], status, started)
            return
        client = scope.get("client")
        ctx = RequestContext(request_id, scope["method"], path, client[0] if client else "", scope)
        token = CURRENT.set(ctx)
        # Appended to the response's headers: the CORS headers once the origin is allowed,
        # then the request id.
        extra = [id_header]
        status = 0

        async def send_extra(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            answered = await self._guarded(scope, receive, send_extra, send, extra, public)
        except Exception as exc:
            # Left set on purpose (see the module's docstring).
            self.recorder.finish(ctx, status or 500, started)
            if self.unexpected is not None and not status:
                await self.unexpected(sent_scope, receive, send, exc)
            raise
        self.recorder.finish(ctx, status or answered, started)
        CURRENT.reset(token)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        bare_send: Send,
        extra: list[Header],
        public: bool,
    ) -> int:
        """CORS, the body limit and the rate limit, then the app. The status when a hot route
        answered (with ``extra`` itself, on ``bare_send``: no wrapper to pass through), else 0
        (``send`` saw the answer)."""
        if public and not await self._cors(scope, receive, send, extra):
            return 0
        max_body = self.max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > max_body:
                    exc = PayloadTooLarge(f"Request body is larger than {max_body} bytes")
                    await error_response(exc)(scope, receive, send)
                    return 0
        refused = await self.requests.check(scope)
        if refused is not None:
            await error_response(refused)(scope, receive, send)
            return 0
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    raise PayloadTooLarge(f"Request body is larger than {max_body} bytes")
            return message

        # Behind a root path the router matches what follows it: left to the router.
        hot = self.hot if not scope.get("root_path") else None
        found = hot.match(scope["method"], scope["path"]) if hot is not None else None
        if found is None:
            await self.app(scope, limited_receive, send)
            return 0
        # What the router would run, without its scan and its two exception wrappers.
        route, params = found
        scope["route"] = route
        scope["path_params"] = params
        try:
            body = await route.answer(Request(scope, limited_receive))
        except Exception as exc:
            response = handled_error(exc)
            if response is None:
                raise
            await response(scope, limited_receive, send)
            return 0
        await send_json(bare_send, body, extra)
        return 200

    # -- CORS for /public/* ------------------------------------------------------------------

    async def _cors(self, scope: Scope, receive: Receive, send: Send, extra: list[Header]) -> bool:
        """Open to every origin by default (as Chatwoot), narrowed by the global setting and
        by an inbox's own allow-list. Whether the request goes on; the CORS headers are added
        to ``extra`` when it does. A request without ``Origin`` (not a browser's) is left
        alone."""
        origin = wanted_method = wanted_headers = None
        for name, value in scope["headers"]:  # the last of a repeated header counts
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                wanted_method = value
            elif name == b"access-control-request-headers":
                wanted_headers = value
        if origin is None:
            return True
        if not await self._allowed(scope["path"], origin):
            body = p.DetailedError(
                status=403, error="Forbidden",
                description=f"Origin {origin} is not allowed for this inbox",
            )  # fmt: skip
            await json_response(body, 403)(scope, receive, send)
            return False
        if scope["method"] == "OPTIONS" and wanted_method is not None:
            allowed = b"*" if self.any_origin else origin.encode("latin-1")
            asked = b"*" if wanted_headers is None else wanted_headers
            await respond(send, 200, b"", [
                (b"access-control-allow-origin", allowed), _VARY, _ALLOW_METHODS,
                (b"access-control-allow-headers", asked), _MAX_AGE,
            ])  # fmt: skip
            return False
        extra[:0] = [(b"access-control-allow-origin", b"*" if self.any_origin else origin.encode()),
                     _VARY]  # fmt: skip
        return True

    async def _allowed(self, path: str, origin: str) -> bool:
        if not self.any_origin and origin not in self.origins:
            return False
        match = _INBOX_PATH.match(path)
        if match:
            allowed = await self.inbox_origins(match.group(1))
            if allowed and "*" not in allowed and origin not in allowed:
                return False
        return True
