"""Every agent-API and Platform-API route the app serves refuses a missing token, a wrong token
and another account's token, with Chatwoot's bodies (reference agent §1.2).

The routes are read from the running app, not from a list kept by hand, so a route added
later without an auth check fails here. Role checks (an agent doing an administrator's
action) need to know which actions are administrative; they are in the per-area tests
(``test_agent_admin_auth.py``, ``test_agent_conversations_auth.py``, ``test_agent_bots.py``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from starlette.routing import Route

from gateway.domain import provisioning as prov
from gateway.routes.agent_routing import ACCOUNT
from tests.admin_helpers import ADMIN_TOKEN, admin, auth, make_user
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

SIGN_IN = {"errors": ["You need to sign in or sign up before continuing."]}
INVALID = {"error": "Invalid Access Token"}
NOT_MEMBER = {"error": "You are not authorized to access this account"}
OUTSIDER_TOKEN = "outsider-token-0123456789a"
ACCOUNT_PREFIX = ACCOUNT
PLATFORM_PREFIX = "/platform/api/v1"
PARAM = re.compile(r"{([a-z_]+)(?::[a-z]+)?}")


def served(app: Any, prefix: str) -> list[tuple[str, str]]:
    """(method, path template) of every route under ``prefix``."""
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(prefix):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path))
    return found


def fill(path: str, account_id: int) -> str:
    # Ids that exist are not needed: authentication comes before any lookup.
    return PARAM.sub(lambda m: str(account_id) if m[1] == "account_id" else "1", path)


async def request(env: Env, method: str, path: str, headers: dict[str, str]) -> Any:
    body = None if method in ("GET", "DELETE") else {}
    return await env.client.request(method, path, headers=headers, json=body)


async def test_every_account_route_refuses_bad_tokens(env: Env) -> None:
    await admin(env)
    elsewhere = await env.store.write(prov.create_account, "Elsewhere", env.clock())
    await make_user(env, OUTSIDER_TOKEN, role="administrator", account_id=elsewhere.id)
    routes = served(env.app, ACCOUNT_PREFIX)
    # Conversations, messages, contacts, inboxes, members, agents, webhooks, bots at least.
    assert len(routes) >= 60, len(routes)
    failures = []
    for method, template in routes:
        path = fill(template, env.account_id)
        cases = [
            ({}, SIGN_IN),
            (auth("not-a-token-at-all"), INVALID),
            (auth(OUTSIDER_TOKEN), NOT_MEMBER),
        ]
        for headers, expected in cases:
            r = await request(env, method, path, headers)
            if r.status_code != 401 or r.json() != expected:
                failures.append((method, template, headers, r.status_code, r.text[:120]))
    assert failures == []


async def test_every_account_route_checks_the_account_exists(env: Env) -> None:
    await admin(env)
    failures = []
    for method, template in served(env.app, ACCOUNT_PREFIX):
        r = await request(env, method, fill(template, 999_999), auth(ADMIN_TOKEN))
        if r.status_code not in (401, 404):
            failures.append((method, template, r.status_code, r.text[:120]))
    assert failures == []


async def test_every_platform_route_refuses_bad_tokens(env: Env) -> None:
    await admin(env)
    routes = served(env.app, PLATFORM_PREFIX)
    assert len(routes) >= 10, len(routes)
    failures = []
    for method, template in routes:
        path = fill(template, env.account_id)
        # A user's access token is not a platform app token.
        for headers in ({}, auth("not-a-token-at-all"), auth(ADMIN_TOKEN)):
            r = await request(env, method, path, headers)
            if r.status_code != 401 or "error" not in r.json():
                failures.append((method, template, headers, r.status_code, r.text[:120]))
    assert failures == []


async def test_profile_refuses_bad_tokens(env: Env) -> None:
    for headers, expected in [({}, SIGN_IN), (auth("not-a-token-at-all"), INVALID)]:
        r = await env.client.get("/api/v1/profile", headers=headers)
        assert (r.status_code, r.json()) == (401, expected)
