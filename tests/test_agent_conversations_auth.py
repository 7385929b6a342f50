"""Authorization of every agent API conversation and message route (reference agent §1.2,
§1.4): a missing token, a wrong token, another account's user, an agent without access to the
conversation's inbox, and an agent doing what only administrators may."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import provisioning as prov
from tests.agent_helpers import NOT_AUTHORIZED, NOT_FOUND, Staff, customer_conversation, make_staff
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

SIGN_IN = {"errors": ["You need to sign in or sign up before continuing."]}
INVALID_TOKEN = {"error": "Invalid Access Token"}
NOT_MEMBER = {"error": "You are not authorized to access this account"}
STRANGER_TOKEN = "stranger-token-0123456789ab"
OUTSIDER = "outsider-token-0123456789ab"
AGENT = "agent-token-0123456789abcdef"

# (method, path, body): {cid} is a conversation of env.inbox, {mid} one of its messages.
ACCOUNT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/conversations", None),
    ("GET", "/conversations/meta", None),
    ("POST", "/conversations", {"source_id": "{source_id}"}),
]
CONVERSATION_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/conversations/{cid}", None),
    ("PATCH", "/conversations/{cid}", {"priority": "high"}),
    ("PUT", "/conversations/{cid}", {"priority": "high"}),
    ("DELETE", "/conversations/{cid}", None),
    ("POST", "/conversations/{cid}/toggle_status", {"status": "resolved"}),
    ("POST", "/conversations/{cid}/toggle_priority", {"priority": "urgent"}),
    ("POST", "/conversations/{cid}/custom_attributes", {"custom_attributes": {"a": 1}}),
    ("POST", "/conversations/{cid}/update_last_seen", None),
    ("POST", "/conversations/{cid}/assignments", {"assignee_id": 1}),
    ("GET", "/conversations/{cid}/labels", None),
    ("POST", "/conversations/{cid}/labels", {"labels": ["x"]}),
    ("GET", "/conversations/{cid}/messages", None),
    ("POST", "/conversations/{cid}/messages", {"content": "hi"}),
    ("PATCH", "/conversations/{cid}/messages/{mid}", {"status": "read"}),
    ("PUT", "/conversations/{cid}/messages/{mid}", {"status": "read"}),
    ("DELETE", "/conversations/{cid}/messages/{mid}", None),
]
ALL_ROUTES = ACCOUNT_ROUTES + CONVERSATION_ROUTES


class World:
    def __init__(self, env: Env, staff: Staff, contact: dict[str, Any], cid: int, mid: int):
        self.env, self.staff, self.contact, self.cid, self.mid = env, staff, contact, cid, mid

    def path(self, template: str) -> str:
        return f"/api/v1/accounts/{self.env.account_id}" + template.format(
            cid=self.cid, mid=self.mid
        )

    def body(self, body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is None:
            return None
        return {k: (self.contact["source_id"] if v == "{source_id}" else v)
                for k, v in body.items()}  # fmt: skip

    async def call(
        self, method: str, template: str, body: dict[str, Any] | None, token: str | None
    ) -> Any:
        headers = {"api_access_token": token} if token is not None else {}
        return await self.env.client.request(
            method, self.path(template), json=self.body(body), headers=headers
        )


@pytest.fixture
async def world(env: Env) -> World:
    staff = await make_staff(env)
    contact, cid = await customer_conversation(env, name="Alice")
    mid = (await env.send(contact["source_id"], cid, content="hello"))["id"]
    # A user of another account: a valid token, but no membership here.
    other = await env.store.write(prov.create_account, "Other", env.clock())
    await env.store.write(
        prov.create_user, other.id, "Sam", "sam@other.test", "administrator", STRANGER_TOKEN,
        env.clock(),
    )  # fmt: skip
    return World(env, staff, contact, cid, mid)


async def assert_untouched(world: World) -> None:
    shown = await world.staff.admin_api.get(f"/conversations/{world.cid}")
    assert (shown["status"], shown["priority"], shown["labels"]) == ("open", None, [])
    assert shown["custom_attributes"] == {} and "assignee" not in shown["meta"]
    listed = await world.staff.admin_api.get(f"/conversations/{world.cid}/messages")
    assert [m["content"] for m in listed["payload"]] == ["hello"]


# One world per check, every route in it: a failure names the route.


async def test_missing_token(world: World) -> None:
    for route in ALL_ROUTES:
        for token in (None, ""):
            r = await world.call(*route, token=token)
            assert (r.status_code, r.json()) == (401, SIGN_IN), route


async def test_wrong_token(world: World) -> None:
    for route in ALL_ROUTES:
        r = await world.call(*route, token="not-a-real-token-000000000")
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN), route
    await assert_untouched(world)


async def test_another_accounts_token(world: World) -> None:
    for route in ALL_ROUTES:
        r = await world.call(*route, token=STRANGER_TOKEN)
        assert (r.status_code, r.json()) == (401, NOT_MEMBER), route
    await assert_untouched(world)


async def test_unknown_account(world: World) -> None:
    headers = {"api_access_token": "admin-token-0123456789abcdef"}
    for method, template, body in ALL_ROUTES:
        path = f"/api/v1/accounts/999{template.format(cid=world.cid, mid=world.mid)}"
        r = await world.env.client.request(method, path, json=world.body(body), headers=headers)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, template)


async def test_agent_without_inbox_access(world: World) -> None:
    for route in CONVERSATION_ROUTES:
        r = await world.call(*route, token=OUTSIDER)
        assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED), route
    await assert_untouched(world)


async def test_unknown_conversation_is_404_before_access(world: World) -> None:
    for method, template, body in CONVERSATION_ROUTES:
        for missing in ("999", "abc"):
            r = await world.call(method, template.replace("{cid}", missing), body, OUTSIDER)
            assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, template, missing)


async def test_outsider_lists_nothing_and_cannot_create_there(world: World) -> None:
    outsider = world.staff.outsider_api
    body = await outsider.get("/conversations")
    assert body["data"]["payload"] == [] and body["data"]["meta"]["all_count"] == 0
    r = await outsider.request(
        "POST", "/conversations",
        json={"inbox_id": world.env.inbox.id, "contact_id": world.contact["id"]},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await outsider.request(
        "POST", "/conversations", json={"source_id": world.contact["source_id"]}
    )
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)


async def test_deleting_a_conversation_is_for_administrators(world: World) -> None:
    r = await world.call("DELETE", "/conversations/{cid}", None, AGENT)
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    await assert_untouched(world)
    # An agent may delete messages of conversations they can access (reference agent §1.4).
    r = await world.call("DELETE", "/conversations/{cid}/messages/{mid}", None, AGENT)
    assert r.status_code == 200
