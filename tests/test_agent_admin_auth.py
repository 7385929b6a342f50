"""Every contact, inbox, inbox-member and agent route refuses a missing token, a wrong token,
another account's token, and (where §1.4 says so) an agent doing an administrator's action,
with Chatwoot's exact bodies (reference agent §1.2)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import provisioning as prov
from tests.admin_helpers import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    NOT_AUTHORIZED,
    account_url,
    admin,
    agent,
    auth,
    make_user,
)
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

OUTSIDER_TOKEN = "outsider-token-0123456789a"
SIGN_IN = {"errors": ["You need to sign in or sign up before continuing."]}
INVALID = {"error": "Invalid Access Token"}
NOT_MEMBER = {"error": "You are not authorized to access this account"}

# (method, path, body, administrators only); {contact}, {inbox} and {user} are filled in.
ROUTES: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("GET", "/contacts", None, False),
    ("POST", "/contacts", {"name": "New", "email": "new@x.test"}, False),
    ("GET", "/contacts/search?q=a", None, False),
    ("GET", "/contacts/{contact}", None, False),
    ("PATCH", "/contacts/{contact}", {"name": "Changed"}, False),
    ("PUT", "/contacts/{contact}", {"name": "Changed"}, False),
    ("GET", "/contacts/{contact}/conversations", None, False),
    ("POST", "/contacts/{contact}/contact_inboxes", {"inbox_id": "{inbox}"}, False),
    ("GET", "/inboxes", None, False),
    ("POST", "/inboxes", {"name": "X", "channel": {"type": "api"}}, True),
    ("GET", "/inboxes/{inbox}", None, False),
    ("PATCH", "/inboxes/{inbox}", {"name": "X"}, True),
    ("PUT", "/inboxes/{inbox}", {"name": "X"}, True),
    ("GET", "/inbox_members/{inbox}", None, False),
    ("POST", "/inbox_members", {"inbox_id": "{inbox}", "user_ids": ["{user}"]}, True),
    ("PATCH", "/inbox_members", {"inbox_id": "{inbox}", "user_ids": ["{user}"]}, True),
    ("PUT", "/inbox_members", {"inbox_id": "{inbox}", "user_ids": ["{user}"]}, True),
    ("DELETE", "/inbox_members", {"inbox_id": "{inbox}", "user_ids": ["{user}"]}, True),
    ("GET", "/agents", None, False),
    ("POST", "/agents", {"name": "Z", "email": "z@x.test"}, True),
    ("PATCH", "/agents/{user}", {"role": "administrator"}, True),
    ("PUT", "/agents/{user}", {"role": "administrator"}, True),
    ("DELETE", "/agents/{user}", None, True),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


class Fixture:
    def __init__(self, env: Env, ids: dict[str, int]) -> None:
        self.env = env
        self.ids = ids

    def fill(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
            return self.ids[value[1:-1]]
        if isinstance(value, str):
            return value.format(**self.ids)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> Any:
        return await self.env.client.request(
            method,
            account_url(self.env, self.fill(path)),
            headers=headers,
            json=self.fill(body) if body is not None else None,
        )


async def setup(env: Env) -> Fixture:
    await admin(env)
    bob = await agent(env, inbox_ids=(env.inbox.id,))
    elsewhere = await env.store.write(prov.create_account, "Elsewhere", env.clock())
    await make_user(env, OUTSIDER_TOKEN, role="administrator", account_id=elsewhere.id)
    r = await env.client.post(
        account_url(env, "/contacts"),
        headers=auth(ADMIN_TOKEN),
        json={"name": "Alice", "email": "alice@x.test"},
    )
    contact = r.json()["payload"]["contact"]["id"]
    return Fixture(env, {"contact": contact, "inbox": env.inbox.id, "user": bob.id})


@pytest.mark.parametrize(("method", "path", "body", "_admin"), ROUTES, ids=ROUTE_IDS)
async def test_refuses_missing_wrong_and_foreign_tokens(
    env: Env, method: str, path: str, body: dict[str, Any] | None, _admin: bool
) -> None:
    fx = await setup(env)
    r = await fx.call(method, path, body, {})
    assert (r.status_code, r.json()) == (401, SIGN_IN)
    r = await fx.call(method, path, body, auth(ADMIN_TOKEN + "-wrong"))
    assert (r.status_code, r.json()) == (401, INVALID)
    r = await fx.call(method, path, body, auth(OUTSIDER_TOKEN))
    assert (r.status_code, r.json()) == (401, NOT_MEMBER)
    r = await fx.env.client.request(
        method,
        fx.fill(f"/api/v1/accounts/999{path}"),
        headers=auth(ADMIN_TOKEN),
        json=fx.fill(body) if body is not None else None,
    )
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})


@pytest.mark.parametrize(("method", "path", "body", "admin_only"), ROUTES, ids=ROUTE_IDS)
async def test_agents_and_administrators(
    env: Env, method: str, path: str, body: dict[str, Any] | None, admin_only: bool
) -> None:
    fx = await setup(env)
    r = await fx.call(method, path, body, auth(AGENT_TOKEN))
    if not admin_only:
        assert r.status_code == 200, r.text
        return
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await fx.call(method, path, body, auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
