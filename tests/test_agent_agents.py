"""Agents of an account on the agent API (reference agent §2.4, §3.9)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import platform as platform_ops
from gateway.domain import provisioning as prov
from tests.admin_helpers import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    NOT_AUTHORIZED,
    NOT_FOUND,
    account_url,
    admin,
    agent,
    auth,
    get,
    make_user,
)
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

AGENT_KEYS = {
    "id",
    "account_id",
    "availability_status",
    "auto_offline",
    "confirmed",
    "email",
    "provider",
    "available_name",
    "name",
    "role",
    "thumbnail",
    "custom_role_id",
}


async def post_agent(env: Env, token: str = ADMIN_TOKEN, **body: Any) -> Any:
    return await env.client.post(account_url(env, "/agents"), headers=auth(token), json=body)


async def test_list_by_name_for_every_member(env: Env) -> None:
    await admin(env)
    await agent(env)
    listed = await get(env, "/agents", AGENT_TOKEN)
    assert [a["name"] for a in listed] == ["Ada", "Bob"]
    assert all(set(a) == AGENT_KEYS for a in listed)
    assert [a["role"] for a in listed] == ["administrator", "agent"]
    assert listed[0]["account_id"] == env.account_id


async def test_create_a_new_user_shows_their_token_once(env: Env) -> None:
    await admin(env)
    r = await post_agent(
        env,
        name="Carl",
        email="Carl@Acme.test",
        role="administrator",
        availability_status="available",
        auto_offline=False,
    )
    assert r.status_code == 200, r.text
    created = r.json()
    assert set(created) == AGENT_KEYS | {"access_token"}
    assert (created["email"], created["role"], created["availability_status"]) == (
        "carl@acme.test",
        "administrator",
        "online",  # seed 003's "available"
    )
    assert created["auto_offline"] is False
    # The token works: the new agent can call the API at once.
    r = await env.client.get("/api/v1/profile", headers=auth(created["access_token"]))
    assert r.status_code == 200 and r.json()["id"] == created["id"]
    listed = await get(env, "/agents", ADMIN_TOKEN)
    assert "access_token" not in listed[1]


async def test_create_reuses_a_user_of_another_account(env: Env) -> None:
    await admin(env)
    elsewhere = await env.store.write(prov.create_account, "Elsewhere", env.clock())
    dana = await make_user(
        env, "dana-token-0123456789ab", email="dana@x.test", name="Dana", account_id=elsewhere.id
    )
    r = await post_agent(env, agent={"name": "ignored", "email": "dana@x.test"})  # form-style
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["name"], r.json()["role"]) == (dana.id, "Dana", "agent")
    assert "access_token" not in r.json()  # an existing user's token is not ours to show
    r = await post_agent(env, email="dana@x.test")
    assert (r.status_code, r.json()) == (
        422,
        {"message": "User has already been taken", "attributes": ["user_id"]},
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"error": "param is missing or the value is empty: agent"}),
        ({"name": "X"}, {"message": "Email can't be blank", "attributes": ["email"]}),
        ({"email": "nope"}, {"message": "Email Invalid email", "attributes": ["email"]}),
        ({"email": "x@x.test", "role": "owner"}, {"error": "'owner' is not a valid role"}),
        (
            {"email": "x@x.test", "availability": "away"},
            {"error": "'away' is not a valid availability"},
        ),
    ],
)
async def test_create_errors(env: Env, body: dict[str, Any], expected: dict[str, Any]) -> None:
    await admin(env)
    r = await post_agent(env, **body)
    assert (r.status_code, r.json()) == (422, expected)


async def test_create_past_the_license_limit_is_402(env: Env) -> None:
    await admin(env)
    changes = platform_ops.AccountChanges(limits={"agents": 1})
    await env.store.write(platform_ops.update_account, env.account_id, changes, env.clock())
    r = await post_agent(env, email="x@x.test")
    assert (r.status_code, r.json()) == (
        402,
        {"error": "Account limit exceeded. Please purchase more licenses"},
    )


async def test_update(env: Env) -> None:
    await admin(env)
    bob = await agent(env)
    url = account_url(env, f"/agents/{bob.id}")
    r = await env.client.patch(
        url,
        headers=auth(ADMIN_TOKEN),
        json={"role": "administrator", "availability": "busy", "auto_offline": False},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["role"], updated["availability_status"], updated["auto_offline"]) == (
        "administrator",
        "busy",
        False,
    )
    r = await env.client.put(url, headers=auth(ADMIN_TOKEN), json={"agent": {"name": "Robert"}})
    assert (r.json()["name"], r.json()["role"]) == ("Robert", "administrator")
    # The new role applies at once: Bob now sees every inbox, with secrets.
    inboxes = await get(env, "/inboxes", AGENT_TOKEN)
    assert inboxes["payload"][0]["hmac_token"] == env.inbox.hmac_token
    r = await env.client.patch(
        account_url(env, "/agents/999"), headers=auth(ADMIN_TOKEN), json={"role": "agent"}
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_delete(env: Env) -> None:
    ada = await admin(env)
    bob = await agent(env, inbox_ids=(env.inbox.id,))
    elsewhere = await env.store.write(prov.create_account, "Elsewhere", env.clock())
    await env.store.write(prov.rotate_user_token, elsewhere.id, ada.id, "agent", ADMIN_TOKEN, 0.0)
    r = await env.client.delete(account_url(env, f"/agents/{bob.id}"), headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.content) == (200, b"")
    assert [a["name"] for a in await get(env, "/agents", ADMIN_TOKEN)] == ["Ada"]
    # Bob had no other account: his token stops working.
    r = await env.client.get("/api/v1/profile", headers=auth(AGENT_TOKEN))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})
    # Ada leaves this account but keeps the other one, and her token.
    r = await env.client.delete(account_url(env, f"/agents/{ada.id}"), headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200
    r = await env.client.get("/api/v1/profile", headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200 and [a["id"] for a in r.json()["accounts"]] == [elsewhere.id]
    r = await env.client.get(account_url(env, "/agents"), headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.json()) == (
        401,
        {"error": "You are not authorized to access this account"},
    )


async def test_agents_cannot_manage_agents(env: Env) -> None:
    ada = await admin(env)
    await agent(env)
    r = await post_agent(env, AGENT_TOKEN, email="x@x.test")
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    for method in ("PATCH", "PUT", "DELETE"):
        r = await env.client.request(
            method,
            account_url(env, f"/agents/{ada.id}"),
            headers=auth(AGENT_TOKEN),
            json={"role": "agent"},
        )
        assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED), method
