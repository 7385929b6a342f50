"""The agent API (``/api/v1/...``, reference agent §3): every agent route module's routes,
and the signed-in user's profile."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import json_response
from ..services.agent_auth import Actor, profile_of
from ..services.context import Context
from .agent_admin import admin_routes
from .agent_bots import agent_bot_routes
from .agent_conversations import conversation_routes
from .agent_routing import user_route
from .agent_webhooks import webhook_routes


class ProfileRoutes:
    """``GET /api/v1/profile``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def profile(self, request: Request, actor: Actor) -> Response:
        return json_response(await profile_of(self.ctx.store, actor))

    def routes(self) -> list[Route]:
        return [user_route(self.ctx, "/profile", self.profile, ["GET"])]


def agent_routes(ctx: Context) -> list[Route]:
    return [
        *ProfileRoutes(ctx).routes(),
        *conversation_routes(ctx),
        *admin_routes(ctx),
        *webhook_routes(ctx),
        *agent_bot_routes(ctx),
    ]
