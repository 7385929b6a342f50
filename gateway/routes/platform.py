"""The Platform API routes (``/platform/api/v1/...``, reference agent §4). Every route
authenticates a platform app token first; an unknown id is Rails' plain
``{"status":404,"error":"Not Found"}`` (Chatwoot's PlatformController has no handler for it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..domain.platform import PlatformApp
from ..http import Params, empty_response, int_param, json_response, read_params
from ..services.context import Context
from ..services.platform import PlatformService
from .agent_admin import unwrap
from .agent_bots import platform_bot_routes
from .errors import answering, platform_error

PLATFORM = "/platform/api/v1"
UPDATE = ["PATCH", "PUT"]
S = TypeVar("S")

PlatformHandler = Callable[[Request, PlatformApp], Awaitable[Response]]


class PlatformApi:
    """The Platform API's handlers; each authenticates the platform app first."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.service = PlatformService(self.ctx)
        self.settings = self.ctx.settings

    def route(self, path: str, handler: PlatformHandler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            app = await self.service.authenticate(request.headers)
            return await handler(request, app)

        return Route(PLATFORM + path, answering(platform_error, endpoint), methods=methods)

    async def body(self, request: Request, struct: type[S], key: str) -> S:
        got = await read_params(request, max_json=self.settings.max_json_bytes, max_files=0)
        return Params(unwrap(got.values, key), []).to(struct)

    def path_id(self, request: Request, name: str) -> int:
        return int_param(request.path_params[name], name)

    async def create_account(self, request: Request, app: PlatformApp) -> Response:
        req = await self.body(request, p.PlatformAccountRequest, "account")
        return json_response(await self.service.create_account(app, req))

    async def show_account(self, request: Request, app: PlatformApp) -> Response:
        return json_response(
            await self.service.show_account(app, self.path_id(request, "account_id"))
        )

    async def update_account(self, request: Request, app: PlatformApp) -> Response:
        account_id = self.path_id(request, "account_id")
        req = await self.body(request, p.PlatformAccountRequest, "account")
        return json_response(await self.service.update_account(app, account_id, req))

    async def list_account_users(self, request: Request, app: PlatformApp) -> Response:
        account_id = self.path_id(request, "account_id")
        return json_response(await self.service.account_users(app, account_id))

    async def add_account_user(self, request: Request, app: PlatformApp) -> Response:
        account_id = self.path_id(request, "account_id")
        req = await self.body(request, p.AccountUserRequest, "account_user")
        return json_response(await self.service.add_account_user(app, account_id, req))

    async def remove_account_user(self, request: Request, app: PlatformApp) -> Response:
        account_id = self.path_id(request, "account_id")
        req = await self.body(request, p.AccountUserRequest, "account_user")
        await self.service.remove_account_user(app, account_id, req)
        return empty_response()

    async def create_user(self, request: Request, app: PlatformApp) -> Response:
        req = await self.body(request, p.PlatformUserRequest, "user")
        return json_response(await self.service.create_user(app, req))

    async def show_user(self, request: Request, app: PlatformApp) -> Response:
        return json_response(await self.service.show_user(app, self.path_id(request, "user_id")))

    async def update_user(self, request: Request, app: PlatformApp) -> Response:
        user_id = self.path_id(request, "user_id")
        req = await self.body(request, p.PlatformUserRequest, "user")
        return json_response(await self.service.update_user(app, user_id, req))

    async def user_token(self, request: Request, app: PlatformApp) -> Response:
        return json_response(await self.service.user_token(app, self.path_id(request, "user_id")))

    def routes(self) -> list[Route]:
        account = "/accounts/{account_id}"
        user = "/users/{user_id}"
        return [
            self.route("/accounts", self.create_account, ["POST"]),
            self.route(account, self.show_account, ["GET"]),
            self.route(account, self.update_account, UPDATE),
            self.route(account + "/account_users", self.list_account_users, ["GET"]),
            self.route(account + "/account_users", self.add_account_user, ["POST"]),
            self.route(account + "/account_users", self.remove_account_user, ["DELETE"]),
            self.route("/users", self.create_user, ["POST"]),
            self.route(user, self.show_user, ["GET"]),
            self.route(user, self.update_user, UPDATE),
            self.route(user + "/token", self.user_token, ["POST"]),
            *platform_bot_routes(self.ctx, PLATFORM),
        ]


def platform_routes(ctx: Context) -> list[Route]:
    return PlatformApi(ctx).routes()
