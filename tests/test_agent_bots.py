"""Agent bots on the application and Platform APIs (reference agent §2.4, §3.6, §3.8, §4):
CRUD, shapes, who may do what, and what a bot's own token may reach (§1.3)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import provisioning as prov
from tests.admin_helpers import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    NOT_AUTHORIZED,
    NOT_FOUND,
    PLATFORM_NOT_FOUND,
    PLATFORM_TOKEN,
    account_url,
    admin,
    agent,
    auth,
    platform_app,
)
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

BOT_KEYS = {
    "id", "name", "description", "thumbnail", "outgoing_url", "bot_type", "bot_config",
    "account_id", "system_bot",
}  # fmt: skip
PLATFORM = "/platform/api/v1"
NOT_FOR_BOTS = {"error": "Access to this endpoint is not authorized for bots"}
BOT_ELSEWHERE = {"error": "Bot is not authorized to access this account"}
NON_PERMISSIBLE = {"error": "Non permissible resource"}


async def create_bot(env: Env, **body: Any) -> dict[str, Any]:
    body = {"name": "Triage", "outgoing_url": "https://bot.example/hook", **body}
    r = await env.client.post(account_url(env, "/agent_bots"), json=body, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_create_shows_token_and_secret_once(env: Env) -> None:
    await admin(env)
    await agent(env)
    bot = await create_bot(
        env, description="Sorts questions", bot_config={"lang": "en"}, avatar_url=""
    )
    assert set(bot) == BOT_KEYS | {"access_token", "secret"}
    assert bot["name"] == "Triage" and bot["description"] == "Sorts questions"
    assert (bot["outgoing_url"], bot["bot_type"], bot["bot_config"]) == (
        "https://bot.example/hook", "webhook", {"lang": "en"},
    )  # fmt: skip
    assert (bot["account_id"], bot["system_bot"], bot["thumbnail"]) == (env.account_id, False, "")
    assert len(bot["access_token"]) == 24 and len(bot["secret"]) == 24

    # Later reads never show the token (only its hash is kept); agents see no secret.
    shown = await env.client.get(
        account_url(env, f"/agent_bots/{bot['id']}"), headers=auth(ADMIN_TOKEN)
    )
    assert shown.json() == {k: v for k, v in bot.items() if k != "access_token"}
    listed = await env.client.get(account_url(env, "/agent_bots"), headers=auth(AGENT_TOKEN))
    assert listed.status_code == 200
    [seen] = listed.json()
    assert set(seen) == BOT_KEYS and seen["id"] == bot["id"]

    # A new token replaces the old one.
    r = await env.client.post(
        account_url(env, f"/agent_bots/{bot['id']}/reset_access_token"), headers=auth(ADMIN_TOKEN)
    )
    assert r.status_code == 200
    rotated = r.json()["access_token"]
    assert rotated != bot["access_token"]
    conversations = account_url(env, "/conversations")
    r = await env.client.post(conversations, headers=auth(bot["access_token"]), json={})
    assert r.json() == {"error": "Invalid Access Token"}
    r = await env.client.post(conversations, headers=auth(rotated), json={})
    assert r.status_code == 404  # authenticated; no source_id to find


async def test_update_and_delete(env: Env) -> None:
    await admin(env)
    bot = await create_bot(env)
    url = account_url(env, f"/agent_bots/{bot['id']}")
    r = await env.client.patch(
        url, headers=auth(ADMIN_TOKEN),
        json={"agent_bot": {"name": "Sorter", "outgoing_url": "https://bot.example/v2"}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["outgoing_url"]) == ("Sorter", "https://bot.example/v2")
    assert r.json()["description"] is None and "access_token" not in r.json()
    await env.client.post(
        account_url(env, f"/inboxes/{env.inbox.id}/set_agent_bot"),
        headers=auth(ADMIN_TOKEN), json={"agent_bot": bot["id"]},
    )  # fmt: skip
    r = await env.client.delete(url, headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.content) == (200, b"")
    assert (await env.client.get(url, headers=auth(ADMIN_TOKEN))).json() == NOT_FOUND
    r = await env.client.get(
        account_url(env, f"/inboxes/{env.inbox.id}/agent_bot"), headers=auth(ADMIN_TOKEN)
    )
    assert r.json() == {"agent_bot": {}}
    r = await env.client.post(
        account_url(env, "/conversations"), headers=auth(bot["access_token"]), json={}
    )
    assert r.json() == {"error": "Invalid Access Token"}


@pytest.mark.parametrize(
    ("body", "message", "attribute"),
    [
        ({"name": ""}, "Name can't be blank", "name"),
        ({"outgoing_url": "ftp://bot.example"}, "Outgoing url is invalid", "outgoing_url"),
        (
            {"outgoing_url": "https://bot.example/" + "a" * 2048},
            "Outgoing url is too long (maximum is 2048 characters)",
            "outgoing_url",
        ),
    ],
)
async def test_invalid_bots(env: Env, body: dict[str, Any], message: str, attribute: str) -> None:
    await admin(env)
    r = await env.client.post(
        account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN),
        json={"name": "Triage", **body},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (422, {"message": message, "attributes": [attribute]})
    r = await env.client.post(
        account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN),
        json={"name": "Triage", "bot_type": "csml"},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (422, {"error": "'csml' is not a valid bot_type"})


async def test_agents_read_but_do_not_manage(env: Env) -> None:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    bot = await create_bot(env)
    url = f"/agent_bots/{bot['id']}"
    for method, path, body in [
        ("POST", "/agent_bots", {"name": "Mine"}),
        ("PATCH", url, {"name": "Mine"}),
        ("DELETE", url, None),
        ("POST", url + "/reset_access_token", None),
        ("POST", f"/inboxes/{env.inbox.id}/set_agent_bot", {"agent_bot": bot["id"]}),
    ]:
        r = await env.client.request(
            method, account_url(env, path), headers=auth(AGENT_TOKEN), json=body
        )
        assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED), (method, path)
    r = await env.client.get(account_url(env, url), headers=auth(AGENT_TOKEN))
    assert r.status_code == 200 and "secret" not in r.json()


async def test_attach_and_show_an_inbox_bot(env: Env) -> None:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    bot = await create_bot(env)
    inbox = f"/inboxes/{env.inbox.id}"
    shown = await env.client.get(account_url(env, inbox + "/agent_bot"), headers=auth(AGENT_TOKEN))
    assert shown.json() == {"agent_bot": {}}
    r = await env.client.post(
        account_url(env, inbox + "/set_agent_bot"), headers=auth(ADMIN_TOKEN),
        json={"agent_bot": bot["id"]},
    )  # fmt: skip
    assert (r.status_code, r.content) == (200, b"")
    shown = await env.client.get(account_url(env, inbox + "/agent_bot"), headers=auth(AGENT_TOKEN))
    got = shown.json()["agent_bot"]
    assert set(got) == BOT_KEYS and got["id"] == bot["id"]  # no token, no secret
    # Unknown bots and inboxes are 404s; null detaches.
    for body, path in [({"agent_bot": 999}, inbox), ({"agent_bot": bot["id"]}, "/inboxes/999")]:
        r = await env.client.post(
            account_url(env, path + "/set_agent_bot"), headers=auth(ADMIN_TOKEN), json=body
        )
        assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await env.client.post(
        account_url(env, inbox + "/set_agent_bot"), headers=auth(ADMIN_TOKEN),
        json={"agent_bot": None},
    )  # fmt: skip
    assert r.status_code == 200
    shown = await env.client.get(account_url(env, inbox + "/agent_bot"), headers=auth(AGENT_TOKEN))
    assert shown.json() == {"agent_bot": {}}


async def test_bot_token_only_on_allow_listed_routes(env: Env) -> None:
    await admin(env)
    bot = await create_bot(env)
    token = auth(bot["access_token"])
    # Refused before the account is even looked up (reference §1.2 pipeline order).
    for method, path in [
        ("GET", account_url(env, "/conversations")),
        ("GET", account_url(env, "/conversations/1")),
        ("GET", account_url(env, "/conversations/1/messages")),
        ("POST", account_url(env, "/conversations/1/labels")),
        ("POST", account_url(env, "/conversations/1/toggle_typing_status")),
        ("GET", account_url(env, "/contacts")),
        ("GET", account_url(env, "/agent_bots")),
        ("GET", account_url(env, "/inboxes")),
        ("GET", account_url(env, "/conversations", account_id=9999)),
        ("GET", "/api/v1/profile"),
    ]:
        r = await env.client.request(method, path, headers=token)
        assert (r.status_code, r.json()) == (401, NOT_FOR_BOTS), (method, path)
    # Allow-listed routes authenticate it (then find no conversation).
    for method, path in [
        ("POST", "/conversations/1/messages"),
        ("POST", "/conversations/1/toggle_status"),
        ("POST", "/conversations/1/toggle_priority"),
        ("POST", "/conversations/1/custom_attributes"),
        ("POST", "/conversations/1/assignments"),
        ("PATCH", "/conversations/1"),
    ]:
        r = await env.client.request(method, account_url(env, path), headers=token, json={})
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, path)
    # Platform routes do not take bot tokens either.
    r = await env.client.get(PLATFORM + "/agent_bots", headers=token)
    assert (r.status_code, r.json()) == (401, {"error": "Invalid access_token"})


async def test_bot_of_another_account(env: Env) -> None:
    await admin(env)
    bot = await create_bot(env)
    other = await env.store.write(prov.create_account, "Other", env.clock())
    url = account_url(env, "/conversations/1/messages", account_id=other.id)
    r = await env.client.post(url, headers=auth(bot["access_token"]), json={"content": "hi"})
    assert (r.status_code, r.json()) == (401, BOT_ELSEWHERE)
    r = await env.client.post(
        account_url(env, "/conversations/1/messages", account_id=9999),
        headers=auth(bot["access_token"]), json={},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_missing_and_wrong_tokens(env: Env) -> None:
    await admin(env)
    url = account_url(env, "/agent_bots")
    r = await env.client.get(url)
    assert r.status_code == 401
    assert r.json() == {"errors": ["You need to sign in or sign up before continuing."]}
    r = await env.client.get(url, headers=auth("no-such-token-000000000000"))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})
    await platform_app(env)
    r = await env.client.get(url, headers=auth(PLATFORM_TOKEN))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})


async def test_system_bots_through_the_platform_api(env: Env) -> None:
    await admin(env)
    await platform_app(env)
    other_app = await platform_app(env, token="other-platform-token-0123", name="Other")
    assert other_app
    platform = auth(PLATFORM_TOKEN)
    r = await env.client.post(
        PLATFORM + "/agent_bots", headers=platform,
        json={"name": "Global", "outgoing_url": "https://bot.example/global"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    bot = r.json()
    assert set(bot) == {
        "id", "name", "description", "outgoing_url", "account_id", "thumbnail", "access_token",
        "secret",
    }  # fmt: skip
    # The real URL, not Chatwoot's name-in-the-url bug (gotcha 10); no account: a system bot.
    assert (bot["outgoing_url"], bot["account_id"]) == ("https://bot.example/global", None)
    url = f"{PLATFORM}/agent_bots/{bot['id']}"
    assert (await env.client.get(url, headers=platform)).json() == {
        k: v for k, v in bot.items() if k != "access_token"
    }
    listed = await env.client.get(PLATFORM + "/agent_bots", headers=platform)
    assert [b["id"] for b in listed.json()] == [bot["id"]]
    r = await env.client.patch(url, headers=platform, json={"description": "Everywhere"})
    assert r.json()["description"] == "Everywhere"

    # Another app: not its bot.
    other = auth("other-platform-token-0123")
    assert (await env.client.get(url, headers=other)).json() == NON_PERMISSIBLE
    assert (await env.client.get(PLATFORM + "/agent_bots", headers=other)).json() == []
    r = await env.client.post(
        PLATFORM + "/agent_bots", headers=other,
        json={"name": "Sneaky", "account_id": env.account_id},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (401, NON_PERMISSIBLE)
    r = await env.client.get(PLATFORM + "/agent_bots/9999", headers=platform)
    assert (r.status_code, r.json()) == (404, PLATFORM_NOT_FOUND)

    # Accounts list a system bot without its URL and token; it acts only where attached.
    listed = await env.client.get(account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN))
    [seen] = listed.json()
    assert seen["system_bot"] is True and "outgoing_url" not in seen and "secret" not in seen
    messages = account_url(env, "/conversations/1/messages")
    r = await env.client.post(messages, headers=auth(bot["access_token"]), json={})
    assert (r.status_code, r.json()) == (401, BOT_ELSEWHERE)
    r = await env.client.post(
        account_url(env, f"/inboxes/{env.inbox.id}/set_agent_bot"),
        headers=auth(ADMIN_TOKEN), json={"agent_bot": bot["id"]},
    )  # fmt: skip
    assert r.status_code == 200
    r = await env.client.post(messages, headers=auth(bot["access_token"]), json={})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    # An account cannot change a system bot.
    r = await env.client.patch(
        account_url(env, f"/agent_bots/{bot['id']}"), headers=auth(ADMIN_TOKEN),
        json={"name": "Mine"},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (404, NOT_FOUND)

    r = await env.client.delete(url, headers=platform)
    assert r.status_code == 200
    assert (await env.client.get(url, headers=platform)).status_code == 404
