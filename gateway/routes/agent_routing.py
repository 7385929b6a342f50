"""The agent API's route plumbing (``/api/v1/...``, reference agent §3), shared by every agent
route module: an agent route handler takes ``(request, actor)``; :func:`account_route`
authenticates the ``api_access_token`` header for the path's ``account_id`` first, and answers
the domain's errors (and the edge's ``NotFound``) as Chatwoot's agent API does
(``routes.errors``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..domain.errors import DomainError
from ..errors import NotFound, resource_not_found
from ..inputs import parse_id
from ..services.agent_auth import Actor, authenticate, authenticate_in_account
from ..services.context import Context
from .errors import agent_error

API = "/api/v1"
# Not ``{account_id:int}``: Starlette's int convertor takes any number of digits, and
# ``int()`` of 5000 of them raises (a 500); the id is read by ``inputs.parse_id`` instead.
ACCOUNT = API + "/accounts/{account_id}"

AgentHandler = Callable[[Request, Actor], Awaitable[Response]]


def account_route(
    ctx: Context, path: str, handler: AgentHandler, methods: list[str], *, bots: bool = False
) -> Route:
    """``ACCOUNT + path``, authenticated and scoped to the path's account. ``bots``: agent
    bot tokens are accepted too (Chatwoot's allow-list, reference agent §1.3)."""

    async def endpoint(request: Request) -> Response:
        account_id = parse_id(request.path_params["account_id"])
        if account_id is None:  # no such account, once the token is known to be good
            await authenticate(ctx.store, request.headers, bots=bots)
            raise resource_not_found()
        actor = await authenticate_in_account(ctx.store, request.headers, account_id, bots=bots)
        try:
            return await handler(request, actor)
        except (DomainError, NotFound) as exc:
            raise agent_error(exc) from None

    return Route(ACCOUNT + path, endpoint, methods=methods)


def user_route(ctx: Context, path: str, handler: AgentHandler, methods: list[str]) -> Route:
    """``API + path`` for the signed-in user, not scoped to an account (the profile)."""

    async def endpoint(request: Request) -> Response:
        actor = await authenticate(ctx.store, request.headers)
        try:
            return await handler(request, actor)
        except (DomainError, NotFound) as exc:
            raise agent_error(exc) from None

    return Route(API + path, endpoint, methods=methods)
