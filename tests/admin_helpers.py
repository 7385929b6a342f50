"""Helpers for the agent-API admin and Platform API tests: users with tokens, a platform app,
and the account URL."""

from __future__ import annotations

from typing import Any

from gateway.domain import platform as platform_ops
from gateway.domain import provisioning as prov
from gateway.store.records import User
from tests.routes_helpers import Env

ADMIN_TOKEN = "admin-token-0123456789abcdef"
AGENT_TOKEN = "agent-token-0123456789abcdef"
PLATFORM_TOKEN = "platform-token-0123456789ab"
NOT_AUTHORIZED = {"error": "You are not authorized to do this action"}
NOT_FOUND = {"error": "Resource could not be found"}
PLATFORM_NOT_FOUND = {"status": 404, "error": "Not Found"}


def auth(token: str) -> dict[str, str]:
    return {"api_access_token": token}


def account_url(env: Env, path: str = "", account_id: int | None = None) -> str:
    return f"/api/v1/accounts/{account_id or env.account_id}{path}"


async def make_user(
    env: Env,
    token: str,
    *,
    role: str = "agent",
    email: str | None = None,
    name: str = "Bob",
    account_id: int | None = None,
    inbox_ids: tuple[int, ...] = (),
) -> User:
    user: User = await env.store.write(
        prov.create_user,
        account_id or env.account_id,
        name,
        email or f"{token[:12]}@acme.test",
        role,
        token,
        env.clock(),
    )
    for inbox_id in inbox_ids:
        await env.store.write(prov.add_inbox_member, inbox_id, user.id, env.clock())
    return user


async def admin(env: Env, **kw: Any) -> User:
    return await make_user(env, ADMIN_TOKEN, role="administrator", name="Ada", **kw)


async def agent(env: Env, **kw: Any) -> User:
    return await make_user(env, AGENT_TOKEN, role="agent", name="Bob", **kw)


async def platform_app(env: Env, token: str = PLATFORM_TOKEN, name: str = "CRM") -> int:
    app: platform_ops.PlatformApp = await env.store.write(
        platform_ops.create_app, name, token, env.clock()
    )
    return app.id


async def get(env: Env, path: str, token: str, **params: Any) -> Any:
    r = await env.client.get(account_url(env, path), headers=auth(token), params=params)
    assert r.status_code == 200, r.text
    return r.json()
