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


def platform_routes(ctx: Context) -> list[Route]:
    service = PlatformService(ctx)
    s = ctx.settings

    def route(path: str, handler: PlatformHandler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            app = await service.authenticate(request.headers)
            return await handler(request, app)

        return Route(PLATFORM + path, answering(platform_error, endpoint), methods=methods)

    async def body(request: Request, struct: type[S], key: str) -> S:
        got = await read_params(request, max_json=s.max_json_bytes, max_files=0)
        return Params(unwrap(got.values, key), []).to(struct)

    def path_id(request: Request, name: str) -> int:
        return int_param(request.path_params[name], name)

    async def create_account(request: Request, app: PlatformApp) -> Response:
        req = await body(request, p.PlatformAccountRequest, "account")
        return json_response(await service.create_account(app, req))

    async def show_account(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.show_account(app, path_id(request, "account_id")))

    async def update_account(request: Request, app: PlatformApp) -> Response:
        account_id = path_id(request, "account_id")
        req = await body(request, p.PlatformAccountRequest, "account")
        return json_response(await service.update_account(app, account_id, req))

    async def list_account_users(request: Request, app: PlatformApp) -> Response:
        account_id = path_id(request, "account_id")
        return json_response(await service.account_users(app, account_id))

    async def add_account_user(request: Request, app: PlatformApp) -> Response:
        account_id = path_id(request, "account_id")
        req = await body(request, p.AccountUserRequest, "account_user")
        return json_response(await service.add_account_user(app, account_id, req))

    async def remove_account_user(request: Request, app: PlatformApp) -> Response:
        account_id = path_id(request, "account_id")
        req = await body(request, p.AccountUserRequest, "account_user")
        await service.remove_account_user(app, account_id, req)
        return empty_response()

    async def create_user(request: Request, app: PlatformApp) -> Response:
        req = await body(request, p.PlatformUserRequest, "user")
        return json_response(await service.create_user(app, req))

    async def show_user(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.show_user(app, path_id(request, "user_id")))

    async def update_user(request: Request, app: PlatformApp) -> Response:
        user_id = path_id(request, "user_id")
        req = await body(request, p.PlatformUserRequest, "user")
        return json_response(await service.update_user(app, user_id, req))

    async def user_token(request: Request, app: PlatformApp) -> Response:
        return json_response(await service.user_token(app, path_id(request, "user_id")))

    account = "/accounts/{account_id}"
    user = "/users/{user_id}"
    return [
        route("/accounts", create_account, ["POST"]),
        route(account, show_account, ["GET"]),
        route(account, update_account, UPDATE),
        route(account + "/account_users", list_account_users, ["GET"]),
        route(account + "/account_users", add_account_user, ["POST"]),
        route(account + "/account_users", remove_account_user, ["DELETE"]),
        route("/users", create_user, ["POST"]),
        route(user, show_user, ["GET"]),
        route(user, update_user, UPDATE),
        route(user + "/token", user_token, ["POST"]),
        *platform_bot_routes(ctx, PLATFORM),
    ]
