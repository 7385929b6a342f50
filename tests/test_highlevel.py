"""The GoHighLevel-compatible ``POST /conversations/`` (seed 004): envelope, errors, mapping."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import provisioning as prov
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

TOKEN = "9c48df2694a849b6089f9d0d3513efe"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}


async def setup(env: Env, role: str = "administrator") -> tuple[prov.User, dict[str, Any]]:
    user: prov.User = await env.store.write(
        prov.create_user, env.account_id, "Bob", "bob@acme.test", role, TOKEN, env.clock()
    )
    contact = await env.contact(name="Alice")
    return user, contact


async def post(env: Env, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await env.client.post("/conversations/", json=body, headers=headers or HEADERS)


async def test_creates_a_conversation_with_the_seed_envelope(env: Env) -> None:
    _user, contact = await setup(env)
    body = {"locationId": env.inbox.identifier, "contactId": str(contact["id"])}
    r = await post(env, body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["success"] is True
    conversation = data["conversation"]
    assert set(conversation) == {
        "id", "dateUpdated", "dateAdded", "deleted", "contactId", "locationId",
        "lastMessageDate", "assignedTo",
    }  # fmt: skip
    assert conversation["deleted"] is False
    assert (conversation["contactId"], conversation["locationId"]) == (
        str(contact["id"]), env.inbox.identifier,
    )  # fmt: skip
    assert conversation["dateAdded"].endswith("Z") and conversation["assignedTo"] == ""
    # A real conversation of the contact: the public API lists it, and it was announced.
    listed = await env.client.get(env.contact_url(contact["source_id"]) + "/conversations")
    assert [c["id"] for c in listed.json()] == [int(conversation["id"])]
    assert "conversation.created" in {e.name for e in env.events}


async def test_an_account_id_location_means_its_default_inbox(env: Env) -> None:
    _user, contact = await setup(env)
    r = await post(env, {"locationId": str(env.account_id), "contactId": str(contact["id"])})
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["locationId"] == str(env.account_id)


@pytest.mark.parametrize(
    "headers",
    [{"Version": "2021-07-28"}, {"Authorization": "Bearer nope", "Version": "2021-07-28"},
     {"Authorization": f"Basic {TOKEN}", "Version": "2021-07-28"}],
)  # fmt: skip
async def test_a_bad_token_is_401(env: Env, headers: dict[str, str]) -> None:
    await setup(env)
    r = await post(env, {"locationId": env.inbox.identifier, "contactId": "1"}, headers)
    assert r.status_code == 401
    assert r.json() == {
        "statusCode": 401,
        "message": "Invalid token: access token is invalid",
        "error": "Unauthorized",
    }


@pytest.mark.parametrize("version", [None, "2021-04-15"])
async def test_a_missing_or_other_version_is_400(env: Env, version: str | None) -> None:
    await setup(env)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if version:
        headers["Version"] = version
    r = await post(env, {"locationId": env.inbox.identifier, "contactId": "1"}, headers)
    assert (r.status_code, r.json()) == (400, {"statusCode": 400, "message": "Bad Request"})


async def test_malformed_json_is_400(env: Env) -> None:
    await setup(env)
    r = await env.client.post("/conversations/", content=b"{nope", headers=HEADERS)
    assert (r.status_code, r.json()) == (400, {"statusCode": 400, "message": "Bad Request"})


@pytest.mark.parametrize(
    "body",
    [{}, {"locationId": "LOC"}, {"contactId": "1"}, {"locationId": 5, "contactId": "1"},
     {"locationId": "unknown-location", "contactId": "1"},
     {"locationId": "INBOX", "contactId": "999"}, {"locationId": "INBOX", "contactId": "abc"},
     # what no id can hold (found by schemathesis: these were a 400 for valid JSON)
     {"locationId": "IN\u0000BOX", "contactId": "1"}, {"locationId": "INBOX", "contactId": 2**70}],
)  # fmt: skip
async def test_unprocessable_bodies_are_422(env: Env, body: dict[str, Any]) -> None:
    await setup(env)
    body = {k: (env.inbox.identifier if v == "INBOX" else v) for k, v in body.items()}
    r = await post(env, body)
    assert r.status_code == 422
    data = r.json()
    assert data["statusCode"] == 422 and data["error"] == "Unprocessable Entity"
    assert isinstance(data["message"], list) and len(data["message"]) == 1


async def test_an_agent_without_the_inbox_is_refused(env: Env) -> None:
    user, contact = await setup(env, role="agent")  # not a member of the inbox
    r = await post(env, {"locationId": env.inbox.identifier, "contactId": str(contact["id"])})
    assert r.status_code == 401
    assert r.json()["message"] == "The token is not authorized for this location"
    await env.store.write(prov.add_inbox_member, env.inbox.id, user.id, env.clock())
    r = await post(env, {"locationId": env.inbox.identifier, "contactId": str(contact["id"])})
    assert r.status_code == 200, r.text
