"""Agent API authentication (reference agent §1.1-1.2) and the profile (§3.10)."""

from __future__ import annotations

import pytest

from gateway.domain import provisioning as prov
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

TOKEN = "agent-token-0123456789abcd"


async def make_user(env: Env, token: str = TOKEN, role: str = "agent") -> prov.User:
    user: prov.User = await env.store.write(
        prov.create_user, env.account_id, "Bob", "bob@acme.test", role, token, env.clock()
    )
    return user


async def test_no_token_is_a_sign_in_error(env: Env) -> None:
    r = await env.client.get("/api/v1/profile")
    assert r.status_code == 401
    assert r.json() == {"errors": ["You need to sign in or sign up before continuing."]}
    r = await env.client.get("/api/v1/profile", headers={"api_access_token": "  "})
    assert r.status_code == 401 and "errors" in r.json()


async def test_unknown_token_is_invalid(env: Env) -> None:
    await make_user(env)
    r = await env.client.get("/api/v1/profile", headers={"api_access_token": TOKEN + "x"})
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})


@pytest.mark.parametrize("header", ["api_access_token", "Api-Access-Token", "API_ACCESS_TOKEN"])
async def test_profile_with_either_header_spelling(env: Env, header: str) -> None:
    user = await make_user(env, role="administrator")
    r = await env.client.get("/api/v1/profile", headers={header: TOKEN})
    assert r.status_code == 200, r.text
    body = r.json()
    # The token is echoed from the request: the database only keeps its hash.
    assert body["access_token"] == TOKEN
    assert body["pubsub_token"] == user.pubsub_token
    assert (body["id"], body["email"], body["uid"], body["name"]) == (
        user.id, "bob@acme.test", "bob@acme.test", "Bob",
    )  # fmt: skip
    assert (body["account_id"], body["role"]) == (env.account_id, "administrator")
    [account] = body["accounts"]
    assert account["id"] == env.account_id
    assert account["role"] == "administrator"
    assert account["availability_status"] == "online"
