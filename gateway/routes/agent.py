"""The agent API (``/api/v1/...``, reference agent §3): route plumbing shared by every agent
route module, and the profile.

An agent route handler takes ``(request, actor)``; :func:`account_route` authenticates the
``api_access_token`` header for the path's ``account_id`` first, and answers the domain's
errors (and the edge's ``NotFound``) as Chatwoot's agent API does (``routes.errors``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..domain import provisioning
from ..domain.errors import DomainError
from ..errors import NotFound, resource_not_found
from ..http import json_response
from ..inputs import parse_id
from ..services.agent_auth import Actor, authenticate, authenticate_in_account
from ..services.context import Context
from ..views import public as presenters
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


async def profile_of(ctx: Context, actor: Actor) -> p.Profile:
    memberships = await ctx.store.read(provisioning.user_accounts, actor.user.id)
    user = actor.user
    accounts = [
        p.ProfileAccount(
            id=account.id,
            name=account.name,
            role=role,
            permissions=[role],
            availability=user.availability,
            availability_status=user.availability,
            active_at=presenters.iso(account.created_at),
        )
        for account, role in memberships
    ]
    current = accounts[0] if accounts else None
    return p.Profile(
        access_token=actor.token, account_id=current.id if current else None,
        available_name=user.name, email=user.email, id=user.id, name=user.name,
        pubsub_token=user.pubsub_token, role=current.role if current else None, uid=user.email,
        accounts=accounts,
    )  # fmt: skip


def agent_routes(ctx: Context) -> list[Route]:
    async def profile(request: Request, actor: Actor) -> Response:
        return json_response(await profile_of(ctx, actor))

    routes: list[Any] = [user_route(ctx, "/profile", profile, ["GET"])]
    from .agent_conversations import conversation_routes  # it builds on account_route

    routes += conversation_routes(ctx)
    from .agent_admin import admin_routes  # it builds on account_route, defined here

    routes += admin_routes(ctx)
    from .agent_webhooks import webhook_routes  # it builds on account_route, defined here

    routes += webhook_routes(ctx)
    from .agent_bots import agent_bot_routes  # it builds on account_route, defined here

    routes += agent_bot_routes(ctx)
    return routes
