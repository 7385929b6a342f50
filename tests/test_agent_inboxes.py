"""Inboxes and inbox members on the agent API (reference agent §2.5, §3.6)."""

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

INBOX_KEYS = {
    "id", "avatar_url", "channel_id", "name", "channel_type", "greeting_enabled",
    "greeting_message", "working_hours_enabled", "enable_email_collect", "csat_survey_enabled",
    "csat_config", "enable_auto_assignment", "auto_assignment_config", "out_of_office_message",
    "working_hours", "timezone", "callback_webhook_url", "allow_messages_after_resolved",
    "lock_to_single_conversation", "sender_name_type", "business_name", "allowed_domains",
    "widget_color", "website_url", "hmac_mandatory", "welcome_title", "welcome_tagline",
    "web_widget_script", "website_token", "selected_feature_flags", "reply_time",
    "messaging_service_sid", "phone_number", "hmac_token", "webhook_url", "inbox_identifier",
    "additional_attributes", "provider",
}  # fmt: skip
CREATE_BODY = {
    "name": "Support API",
    "enable_auto_assignment": True,
    "greeting_enabled": False,
    "csat_survey_enabled": True,
    "csat_config": {
        "display_type": "star",
        "message": "Rate us",
        "button_text": "Rate",
        "language": "en",
        "survey_rules": {"operator": "contains", "values": ["vip"]},
    },
    "lock_to_single_conversation": False,
    "allow_messages_after_resolved": True,
    "timezone": "UTC",
    "channel": {
        "type": "api",
        "webhook_url": "https://integrator.example/chatwoot",
        "hmac_mandatory": True,
        "additional_attributes": {"agent_reply_time_window": 24},
    },
}


async def create_inbox(env: Env, body: dict[str, Any] | None = None) -> Any:
    r = await env.client.post(
        account_url(env, "/inboxes"), headers=auth(ADMIN_TOKEN), json=body or CREATE_BODY
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_list_and_show_with_secrets_for_administrators_only(env: Env) -> None:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    other = await env.new_inbox(name="another")
    listed = await get(env, "/inboxes", ADMIN_TOKEN)
    assert [i["name"] for i in listed["payload"]] == ["another", "Support API"]  # lower(name)
    shown = listed["payload"][1]
    assert set(shown) == INBOX_KEYS
    assert shown["hmac_token"] == env.inbox.hmac_token
    assert shown["inbox_identifier"] == env.inbox.identifier
    assert (shown["channel_type"], shown["channel_id"]) == ("Channel::Api", env.inbox.id)
    assert len(shown["working_hours"]) == 7
    mine = await get(env, "/inboxes", AGENT_TOKEN)
    assert [i["id"] for i in mine["payload"]] == [env.inbox.id]
    assert set(mine["payload"][0]) == INBOX_KEYS - {"hmac_token"}
    assert await get(env, f"/inboxes/{env.inbox.id}", AGENT_TOKEN) == mine["payload"][0]
    r = await env.client.get(account_url(env, f"/inboxes/{other.id}"), headers=auth(AGENT_TOKEN))
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    for path in ("/inboxes/999", "/inboxes/x"):
        r = await env.client.get(account_url(env, path), headers=auth(ADMIN_TOKEN))
        assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_create_an_api_inbox(env: Env) -> None:
    await admin(env)
    created = await create_inbox(env)
    assert set(created) == INBOX_KEYS
    assert created["webhook_url"] == "https://integrator.example/chatwoot"
    assert created["hmac_mandatory"] is True
    assert created["csat_survey_enabled"] is True
    assert created["csat_config"] == CREATE_BODY["csat_config"]  # stored as sent on create
    assert created["additional_attributes"] == {"agent_reply_time_window": 24}
    assert len(created["hmac_token"]) == 24 and len(created["inbox_identifier"]) == 24
    # The new inbox is live on the public API, with the settings the agent API gave it.
    r = await env.client.get(f"/public/api/v1/inboxes/{created['inbox_identifier']}")
    assert r.status_code == 200
    public = r.json()
    assert (public["name"], public["identity_validation_enabled"]) == ("Support API", True)
    assert public["csat_survey_enabled"] is True


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ({"name": "X"}, 422, {"error": "param is missing or the value is empty: channel"}),
        (
            {"name": "X", "channel": {"type": "carrier_pigeon"}},
            422,
            {"message": "Channel must exist", "attributes": ["channel"]},
        ),
        (
            {"name": "X", "channel": {"type": "web_widget"}},
            422,
            {
                "message": "Channel type web_widget is not supported: inboxgate has API "
                "inboxes only",
                "attributes": ["channel"],
            },
        ),
        (
            {"name": " ", "channel": {"type": "api"}},
            422,
            {"message": "Name can't be blank", "attributes": ["name"]},
        ),
        (
            {"name": "X", "channel": {"type": "api", "webhook_url": "ftp://x"}},
            422,
            {"message": "Webhook url is invalid", "attributes": ["webhook_url"]},
        ),
        (
            {"name": "X", "timezone": "Mars/Olympus", "channel": {"type": "api"}},
            422,
            {"message": "Timezone is not included in the list", "attributes": ["timezone"]},
        ),
        (
            {"name": "X", "sender_name_type": "loud", "channel": {"type": "api"}},
            422,
            {"error": "'loud' is not a valid sender_name_type"},
        ),
        (
            {
                "name": "X",
                "channel": {"type": "api", "additional_attributes": {"agent_reply_time_window": 0}},
            },
            422,
            {
                "message": "Additional attributes agent_reply_time_window must be greater than 0",
                "attributes": ["additional_attributes"],
            },
        ),
    ],
)
async def test_create_errors(
    env: Env, body: dict[str, Any], status: int, expected: dict[str, Any]
) -> None:
    await admin(env)
    r = await env.client.post(account_url(env, "/inboxes"), headers=auth(ADMIN_TOKEN), json=body)
    assert (r.status_code, r.json()) == (status, expected)


async def test_create_past_the_account_limit_is_402(env: Env) -> None:
    await admin(env)
    changes = platform_ops.AccountChanges(limits={"inboxes": 1})
    await env.store.write(platform_ops.update_account, env.account_id, changes, env.clock())
    r = await env.client.post(
        account_url(env, "/inboxes"), headers=auth(ADMIN_TOKEN), json=CREATE_BODY
    )
    assert (r.status_code, r.json()) == (
        402,
        {"error": "Account limit exceeded. Upgrade to a higher plan"},
    )


async def test_update(env: Env) -> None:
    await admin(env)
    public_url = f"/public/api/v1/inboxes/{env.inbox.identifier}"
    assert (await env.client.get(public_url)).json()["name"] == "Support API"  # now cached
    r = await env.client.patch(
        account_url(env, f"/inboxes/{env.inbox.id}"),
        headers=auth(ADMIN_TOKEN),
        json={
            "name": "Billing",
            "greeting_message": "null",  # Chatwoot reads the string "null" as null
            "csat_config": {"display_type": "star"},
            "working_hours": [
                {
                    "day_of_week": 6,
                    "closed_all_day": False,
                    "open_hour": 10,
                    "open_minutes": 0,
                    "close_hour": 14,
                    "close_minutes": 30,
                }
            ],
            "channel": {
                "type": "ignored",
                "webhook_url": "https://new.example/hook",
                "hmac_mandatory": True,
            },
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["name"] == "Billing"
    assert updated["greeting_message"] is None
    assert updated["csat_config"] == {  # completed with the defaults on update
        "display_type": "star",
        "message": "",
        "button_text": "Please rate us",
        "language": "en",
        "survey_rules": {"operator": "contains", "values": []},
    }
    days = {d["day_of_week"]: d for d in updated["working_hours"]}
    assert (days[6]["open_hour"], days[6]["close_minutes"], days[6]["closed_all_day"]) == (
        10,
        30,
        False,
    )
    assert days[1]["open_hour"] == 9  # days not given keep their hours
    assert (updated["webhook_url"], updated["hmac_mandatory"]) == ("https://new.example/hook", True)
    assert updated["inbox_identifier"] == env.inbox.identifier
    # The public API sees the change at once: the update dropped the cached inbox.
    public = (await env.client.get(public_url)).json()
    assert (public["name"], public["identity_validation_enabled"]) == ("Billing", True)
    r = await env.client.put(
        account_url(env, f"/inboxes/{env.inbox.id}"),
        headers=auth(ADMIN_TOKEN),
        json={"channel": {"webhook_url": ""}},
    )
    assert r.status_code == 200 and r.json()["webhook_url"] is None
    assert r.json()["name"] == "Billing"


async def test_update_refusals(env: Env) -> None:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    url = account_url(env, f"/inboxes/{env.inbox.id}")
    r = await env.client.patch(url, headers=auth(AGENT_TOKEN), json={"name": "Mine"})
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await env.client.patch(url, headers=auth(ADMIN_TOKEN), json={"name": ""})
    assert (r.status_code, r.json()) == (
        422,
        {"message": "Name can't be blank", "attributes": ["name"]},
    )
    r = await env.client.patch(
        url, headers=auth(ADMIN_TOKEN), json={"working_hours": [{"day_of_week": 9}]}
    )
    assert r.status_code == 422 and r.json()["attributes"] == ["working_hours"]
    r = await env.client.patch(account_url(env, "/inboxes/999"), headers=auth(AGENT_TOKEN), json={})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


# -- inbox members ---------------------------------------------------------------------------


async def members(env: Env, method: str, token: str = ADMIN_TOKEN, **body: Any) -> Any:
    return await env.client.request(
        method, account_url(env, "/inbox_members"), headers=auth(token), json=body
    )


async def test_inbox_members(env: Env) -> None:
    ada = await admin(env)
    bob = await agent(env)
    cy = await make_user(env, "cy-token-0123456789abcdef", name="Cy")
    url = account_url(env, f"/inbox_members/{env.inbox.id}")
    assert (await get(env, f"/inbox_members/{env.inbox.id}", ADMIN_TOKEN)) == {"payload": []}
    r = await members(env, "POST", inbox_id=env.inbox.id, user_ids=[bob.id, cy.id])
    assert r.status_code == 200, r.text
    assert [a["name"] for a in r.json()["payload"]] == ["Bob", "Cy"]
    assert r.json()["payload"][0]["role"] == "agent"
    # Bob, now a member, sees the inbox and its members.
    assert [i["id"] for i in (await get(env, "/inboxes", AGENT_TOKEN))["payload"]] == [env.inbox.id]
    assert len((await get(env, f"/inbox_members/{env.inbox.id}", AGENT_TOKEN))["payload"]) == 2
    r = await members(env, "PATCH", inbox_id=str(env.inbox.id), user_ids=[ada.id, cy.id])
    assert [a["name"] for a in r.json()["payload"]] == ["Ada", "Cy"]
    r = await members(env, "DELETE", inbox_id=env.inbox.id, user_ids=[cy.id])
    assert (r.status_code, r.content) == (200, b"")
    assert [
        a["id"] for a in (await get(env, f"/inbox_members/{env.inbox.id}", ADMIN_TOKEN))["payload"]
    ] == [ada.id]
    # Bob is no member any more: the inbox and its member list are closed to him.
    r = await env.client.get(url, headers=auth(AGENT_TOKEN))
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)


async def test_inbox_member_errors(env: Env) -> None:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    elsewhere = await env.store.write(prov.create_account, "Elsewhere", env.clock())
    stranger = await make_user(env, "stranger-0123456789abcdef", account_id=elsewhere.id)
    r = await members(env, "POST", inbox_id=env.inbox.id, user_ids=[stranger.id])
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await members(env, "POST", inbox_id=env.inbox.id)
    assert (r.status_code, r.json()) == (
        422,
        {"error": "param is missing or the value is empty: user_ids"},
    )
    r = await members(env, "POST", user_ids=[1])
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await members(env, "POST", inbox_id=999, user_ids=[1])
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    for method in ("POST", "PATCH", "DELETE"):
        r = await members(env, method, AGENT_TOKEN, inbox_id=env.inbox.id, user_ids=[1])
        assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED), method


async def test_webhook_url_must_be_public_unless_allowed(make_env: Any) -> None:
    body = {"name": "X", "channel": {"type": "api", "webhook_url": "http://127.0.0.1:9/hook"}}
    async with make_env() as env:
        await admin(env)
        r = await env.client.post(
            account_url(env, "/inboxes"), headers=auth(ADMIN_TOKEN), json=body
        )
        assert r.status_code == 422
        assert r.json()["attributes"] == ["webhook_url"]
        assert r.json()["message"].startswith("Webhook url is not allowed")
        r = await env.client.patch(
            account_url(env, f"/inboxes/{env.inbox.id}"),
            headers=auth(ADMIN_TOKEN),
            json={"channel": {"webhook_url": "http://10.0.0.1/hook"}},
        )
        assert r.status_code == 422 and r.json()["attributes"] == ["webhook_url"]
    async with make_env(webhook_allow_private=True) as env:
        await admin(env)
        r = await env.client.post(
            account_url(env, "/inboxes"), headers=auth(ADMIN_TOKEN), json=body
        )
        assert r.status_code == 200 and r.json()["webhook_url"] == "http://127.0.0.1:9/hook"
