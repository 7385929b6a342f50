"""JSON routes without the framework's per-request objects, and the table that finds them
before Starlette's router does.

A :class:`JsonRoute` handler returns what to answer (a protocol Struct, or a list of them); it
is encoded straight to the response bytes and sent with one pre-built header list: no
Response object, no header dict, no per-request exception wrapper. It is still a Starlette
``Route`` (the OpenAPI table, ``HEAD``, a 404 for an undeclared method all work as for any
route), and inside the router its errors reach the app's handlers as before.

:class:`HotRoutes` is the table the edge (:mod:`gateway.edge`) consults first: a path is
split once and compared with the templates of the same method and depth, where the router
would try every route's regex in turn and then pass through two exception wrappers. It holds
only templates made of whole segments (``/a/{b}/c``), and only when no route before them in
the app's list could answer the same path, so that what it finds is what the router would
have found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from operator import itemgetter
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from client_sdk import protocol as p

from .errors import GatewayError
from .http import JSON_TYPE, error_response, http_error_response
from .store import StoreUnavailable

JsonHandler = Callable[[Request], Awaitable[Any]]
_CONTENT_TYPE = (b"content-type", JSON_TYPE.encode())


async def send_json(send: Send, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """A 200 with a JSON body: the headers a ``json_response`` would carry, built once, then
    ``extra``."""
    headers = [(b"content-length", b"%d" % len(body)), _CONTENT_TYPE, *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class JsonRoute(Route):
    def __init__(self, path: str, handler: JsonHandler, methods: list[str]) -> None:
        super().__init__(path, handler, methods=methods)
        self.handler = handler
        self.app = self.serve

    async def answer(self, request: Request) -> bytes:
        """The handler's answer, encoded. Files uploaded with the request are spooled to
        temporary files that Starlette leaves open: closed here, whatever happened."""
        try:
            return p.encode(await self.handler(request))
        finally:
            await request.close()

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """As the router's endpoint: errors go on to the app's exception handlers."""
        await send_json(send, await self.answer(Request(scope, receive)))


def handled_error(exc: Exception) -> Response | None:
    """What the app's exception handlers answer to ``exc``; None for an unexpected error
    (answered 500 by the server-error handler outside)."""
    if isinstance(exc, GatewayError | StoreUnavailable):
        return error_response(exc)
    if isinstance(exc, HTTPException):
        return http_error_response(exc)
    return None


class _Shape:
    """A template as the table compares it: its literal segments, fetched from a split path
    by one ``itemgetter`` and compared at once, and where its parameters are."""

    __slots__ = ("expected", "literals", "names", "params", "route")

    def __init__(self, route: JsonRoute, segments: list[str | None]) -> None:
        self.route = route
        at = [i for i, s in enumerate(segments) if s is not None]
        self.literals = itemgetter(*at) if at else None
        texts = tuple(segments[i] for i in at)
        self.expected: object = texts[0] if len(texts) == 1 else texts  # as itemgetter gives
        names = [(i, part[1:-1]) for i, part in enumerate(route.path.split("/"))]
        self.names = [name for i, name in names if segments[i] is None]
        where = [i for i, _ in names if segments[i] is None]
        self.params = itemgetter(*where) if where else None

    def match(self, parts: list[str]) -> dict[str, Any] | None:
        if self.literals is not None and self.literals(parts) != self.expected:
            return None
        if self.params is None:
            return {}
        values = self.params(parts)
        if len(self.names) == 1:
            values = (values,)
        if "" in values:
            return None  # the router's [^/]+ wants a character
        return dict(zip(self.names, values, strict=True))


def _segments(route: Route) -> list[str | None] | None:
    """A template's segments, None for a parameter; None for a template that is not made of
    whole segments with plain (``[^/]+``) parameters."""
    out: list[str | None] = []
    for part in route.path.split("/"):
        name = part[1:-1] if part.startswith("{") and part.endswith("}") else None
        if name is not None and name in route.param_convertors:
            if route.param_convertors[name].regex != "[^/]+":
                return None  # a typed parameter: the router converts it
            out.append(None)
        elif "{" in part:
            return None
        else:
            out.append(part)
    return out


def _may_answer(earlier: BaseRoute, segments: list[str | None], method: str) -> bool:
    """Whether the router could give a path of this template to ``earlier`` first."""
    if isinstance(earlier, WebSocketRoute):
        return False
    if not isinstance(earlier, Route):
        return True  # a mount or a host: leave the whole template to the router
    if earlier.methods is not None and method not in earlier.methods:
        return False  # at most a partial match, which a full one later wins over
    theirs = _segments(earlier)
    if theirs is None or len(theirs) != len(segments):
        return theirs is None
    return all(a is None or b is None or a == b for a, b in zip(theirs, segments, strict=True))


class HotRoutes:
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._by: dict[tuple[str, int], list[_Shape]] = {}
        for n, route in enumerate(routes):
            segments = _segments(route) if isinstance(route, JsonRoute) else None
            if segments is None:
                continue
            assert isinstance(route, JsonRoute)
            shape = _Shape(route, segments)
            for method in sorted(route.methods or ()):
                if method == "HEAD" or any(_may_answer(r, segments, method) for r in routes[:n]):
                    continue
                key = (method, len(segments) - 1)
                self._by.setdefault(key, []).append(shape)

    def match(self, method: str, path: str) -> tuple[JsonRoute, dict[str, Any]] | None:
        """The route the router would run for ``method`` and ``path``, with its path
        parameters; None when the router must decide."""
        shapes = self._by.get((method, path.count("/")))
        if shapes is None:
            return None
        parts = path.split("/")
        for shape in shapes:
            params = shape.match(parts)
            if params is not None:
                return shape.route, params
        return None
