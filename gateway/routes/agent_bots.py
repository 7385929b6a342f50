"""Agent bot routes: the account's bots (reference agent §3.8), an inbox's bot (§3.6
``agent_bot`` / ``set_agent_bot``), and the Platform API's bots (§4). Handlers only move
bytes: parameters in, a service call, the shape out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..domain.platform import PlatformApp
from ..http import Params, empty_response, int_param, json_response, read_params
from ..services.agent_auth import Actor
from ..services.agent_bots import AgentBotService, PlatformBotService
from ..services.context import Context
from ..services.platform import PlatformService
from .agent_admin import unwrap
from .agent_routing import account_route
from .errors import answering, platform_error

BOTS = "/agent_bots"
BOT = BOTS + "/{bot_id}"
UPDATE = ["PATCH", "PUT"]

PlatformHandler = Callable[[Request, PlatformApp], Awaitable[Response]]


def _bot_id(request: Request) -> int:
    return int_param(request.path_params["bot_id"], "agent bot")


async def _body(ctx: Context, request: Request) -> p.AgentBotRequest:
    got = await read_params(request, max_json=ctx.settings.max_json_bytes, max_files=0)
    return Params(unwrap(got.values, "agent_bot"), []).to(p.AgentBotRequest)


class AgentBotApi:
    """The agent API's agent bot handlers (an account's bots, an inbox's bot)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = AgentBotService(self.ctx)

    async def list_bots(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.service.list(actor))

    async def create(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()  # before the body is read, as Chatwoot authorizes
        return json_response(await self.service.create(actor, await _body(self.ctx, request)))

    async def show(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.service.show(actor, _bot_id(request)))

    async def update(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        bot_id = _bot_id(request)
        return json_response(
            await self.service.update(actor, bot_id, await _body(self.ctx, request))
        )

    async def delete(self, request: Request, actor: Actor) -> Response:
        await self.service.delete(actor, _bot_id(request))
        return empty_response()

    async def reset_token(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.service.reset_token(actor, _bot_id(request)))

    async def remove_avatar(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.service.remove_avatar(actor, _bot_id(request)))

    def inbox_id(self, request: Request) -> int:
        return int_param(request.path_params["inbox_id"], "inbox")

    async def inbox_bot(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.service.inbox_bot(actor, self.inbox_id(request)))

    async def set_inbox_bot(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()
        got = await read_params(request, max_json=self.ctx.settings.max_json_bytes, max_files=0)
        await self.service.set_inbox_bot(
            actor, self.inbox_id(request), got.to(p.SetAgentBotRequest)
        )
        return empty_response()

    def routes(self) -> list[Route]:
        inbox = "/inboxes/{inbox_id}"
        return [
            account_route(self.ctx, BOTS, self.list_bots, ["GET"]),
            account_route(self.ctx, BOTS, self.create, ["POST"]),
            account_route(self.ctx, BOT, self.show, ["GET"]),
            account_route(self.ctx, BOT, self.update, UPDATE),
            account_route(self.ctx, BOT, self.delete, ["DELETE"]),
            account_route(self.ctx, BOT + "/reset_access_token", self.reset_token, ["POST"]),
            account_route(self.ctx, BOT + "/avatar", self.remove_avatar, ["DELETE"]),
            account_route(self.ctx, inbox + "/agent_bot", self.inbox_bot, ["GET"]),
            account_route(self.ctx, inbox + "/set_agent_bot", self.set_inbox_bot, ["POST"]),
        ]


def agent_bot_routes(ctx: Context) -> list[Route]:
    return AgentBotApi(ctx).routes()


def platform_bot_routes(ctx: Context, prefix: str) -> list[Route]:
    """``{prefix}/agent_bots...`` for platform apps (``prefix`` is the Platform API root)."""
    apps = PlatformService(ctx)
    service = PlatformBotService(ctx)

    def route(path: str, handler: PlatformHandler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            app = await apps.authenticate(request.headers)
            return await handler(request, app)

        return Route(prefix + path, answering(platform_error, endpoint), methods=methods)

    async def list_bots(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.list(app))

    async def create(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.create(app, await _body(ctx, request)))

    async def show(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.show(app, _bot_id(request)))

    async def update(request: Request, app: PlatformApp) -> Response:
        bot_id = _bot_id(request)
        return json_response(await service.update(app, bot_id, await _body(ctx, request)))

    async def delete(request: Request, app: PlatformApp) -> Response:
        await service.delete(app, _bot_id(request))
        return empty_response()

    async def remove_avatar(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.remove_avatar(app, _bot_id(request)))

    return [
        route(BOTS, list_bots, ["GET"]),
        route(BOTS, create, ["POST"]),
        route(BOT, show, ["GET"]),
        route(BOT, update, UPDATE),
        route(BOT, delete, ["DELETE"]),
        route(BOT + "/avatar", remove_avatar, ["DELETE"]),
    ]
