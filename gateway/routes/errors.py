"""Each API's answer to a domain error, written once (the domain itself knows no HTTP).

The public API answers in Chatwoot's public shapes (``{"status":404,"error":"Not Found"}``,
``{"message","attributes"}``, ``{"error"}``); the agent API in Chatwoot's ``ApiError`` bodies
(``{"error":"Resource could not be found"}``, 402 for a plan limit); the Platform API as the
agent API, except an unknown id, which its controller leaves to Rails' plain 404. The result is
a :class:`gateway.errors.GatewayError`, which ``gateway.http`` turns into the response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from starlette.requests import Request

from .. import errors as http
from ..domain.errors import (
    DomainError,
    Duplicate,
    Flooded,
    InvalidAttribute,
    LimitReached,
    Locked,
    NotFound,
)

P = ParamSpec("P")
R = TypeVar("R")


def _shared(exc: DomainError) -> http.GatewayError:
    """What the three APIs answer alike (their Rails models' validation errors)."""
    if isinstance(exc, InvalidAttribute):
        return http.ValidationFailed(exc.message, exc.attributes)
    if isinstance(exc, LimitReached):
        return http.ApiError.error(402, exc.message)
    if isinstance(exc, Duplicate):
        return http.ApiError.error(422, exc.message)
    if isinstance(exc, Locked):
        return http.Locked(exc.error)
    raise TypeError(f"no answer for {type(exc).__name__}") from exc


def public_error(exc: DomainError) -> http.GatewayError:
    if isinstance(exc, NotFound):
        return http.NotFound(exc.what)
    if isinstance(exc, Flooded):
        return http.ValidationFailed(exc.message, ["base"], retry_after=exc.retry_after)
    return _shared(exc)


def agent_error(exc: DomainError | http.NotFound) -> http.GatewayError:
    """``exc`` may be the edge's own ``NotFound`` too (a path id no record can have)."""
    if isinstance(exc, NotFound | http.NotFound):
        return http.resource_not_found()
    if isinstance(exc, Flooded):
        body: dict[str, object] = {"error": f"Validation failed: {exc.message}"}
        return http.ApiError(422, body, retry_after=exc.retry_after)
    return _shared(exc)


def platform_error(exc: DomainError) -> http.GatewayError:
    if isinstance(exc, NotFound):
        return http.NotFound(exc.what)
    return agent_error(exc)


def answering(
    mapper: Callable[[DomainError], http.GatewayError],
    handler: Callable[Concatenate[Request, P], Awaitable[R]],
) -> Callable[Concatenate[Request, P], Awaitable[R]]:
    """``handler``, with every domain error it lets out answered by ``mapper``. ``R`` is a
    Response, or the protocol Struct a :class:`gateway.fastpath.JsonRoute` handler returns."""

    async def run(request: Request, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(request, *args, **kwargs)
        except DomainError as exc:
            raise mapper(exc) from None

    return run
