"""Contacts on the agent API (reference agent §2.3, §3.5): list, search, create, show, update,
a contact's conversations, attaching a contact to an inbox."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

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
)
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

CONTACT_KEYS = {
    "additional_attributes",
    "availability_status",
    "email",
    "id",
    "name",
    "phone_number",
    "blocked",
    "identifier",
    "thumbnail",
    "custom_attributes",
    "created_at",
    "contact_inboxes",
}
CONTACT_INBOX_INBOX_KEYS = {"id", "avatar_url", "channel_id", "name", "channel_type", "provider"}
INBOX_RECORD_KEYS = {
    "id",
    "channel_id",
    "account_id",
    "name",
    "created_at",
    "updated_at",
    "channel_type",
    "enable_auto_assignment",
    "greeting_enabled",
    "greeting_message",
    "email_address",
    "working_hours_enabled",
    "out_of_office_message",
    "timezone",
    "enable_email_collect",
    "csat_survey_enabled",
    "allow_messages_after_resolved",
    "auto_assignment_config",
    "lock_to_single_conversation",
    "portal_id",
    "sender_name_type",
    "business_name",
    "csat_config",
}


async def create(env: Env, token: str = ADMIN_TOKEN, **body: Any) -> Any:
    r = await env.client.post(account_url(env, "/contacts"), headers=auth(token), json=body)
    assert r.status_code == 200, r.text
    return r.json()["payload"]


async def test_create_without_inbox_then_show(env: Env) -> None:
    await agent(env)  # agents may create contacts (§1.4)
    created = await create(
        env,
        AGENT_TOKEN,
        name="Alice",
        email="Alice@Example.com",
        phone_number="+15550001111",
        identifier="crm-991",
        custom_attributes={"plan": "pro"},
        additional_attributes={"city": "Austin"},
    )
    assert created["contact_inbox"] == {"inbox": None, "source_id": None}
    contact = created["contact"]
    assert set(contact) == CONTACT_KEYS  # last_activity_at is left out while unknown
    assert contact["email"] == "alice@example.com"
    assert (contact["availability_status"], contact["thumbnail"], contact["blocked"]) == (
        "offline",
        "",
        False,
    )
    assert contact["contact_inboxes"] == []
    assert isinstance(contact["created_at"], int)
    r = await env.client.get(
        account_url(env, f"/contacts/{contact['id']}"), headers=auth(AGENT_TOKEN)
    )
    assert r.status_code == 200
    assert r.json() == {"payload": contact}


async def test_create_in_an_inbox_returns_the_raw_inbox_and_a_session(env: Env) -> None:
    await admin(env)
    created = await create(
        env, name="Alice", email="a@example.com", inbox_id=env.inbox.id, source_id="crm-web-1"
    )
    session = created["contact_inbox"]
    assert session["source_id"] == "crm-web-1"
    assert set(session["inbox"]) == INBOX_RECORD_KEYS
    assert "hmac_token" not in session["inbox"]
    [entry] = created["contact"]["contact_inboxes"]
    assert entry["source_id"] == "crm-web-1"
    assert set(entry["inbox"]) == CONTACT_INBOX_INBOX_KEYS
    assert entry["inbox"]["id"] == env.inbox.id
    # The session is a real public-API session: the contact can use it at once.
    r = await env.client.get(env.contact_url("crm-web-1"))
    assert r.status_code == 200 and r.json()["id"] == created["contact"]["id"]


async def test_create_logs_contact_created_for_the_account(env: Env) -> None:
    await admin(env)
    contact = (await create(env, name="Alice", email="a@example.com"))["contact"]
    [event] = [e for e in env.events if e.name == "contact.created"]
    assert event.stream == f"account:{env.account_id}"
    data = msgspec.json.decode(event.payload)["data"]
    assert (data["id"], data["email"], data["type"], data["account_id"]) == (
        contact["id"],
        "a@example.com",
        "contact",
        env.account_id,
    )


async def test_create_with_an_unknown_inbox_is_404_and_creates_nothing(env: Env) -> None:
    await admin(env)
    r = await env.client.post(
        account_url(env, "/contacts"),
        headers=auth(ADMIN_TOKEN),
        json={"name": "A", "email": "a@example.com", "inbox_id": 999},
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    listed = await get(env, "/contacts", ADMIN_TOKEN)
    assert listed["meta"]["count"] == 0


@pytest.mark.parametrize(
    ("body", "message", "attributes"),
    [
        ({"email": "nope"}, "Email Invalid email", ["email"]),
        ({"phone_number": "5550001111"}, "Phone number should be in e164 format", ["phone_number"]),
        (
            {"email": "nope", "phone_number": "12"},
            "Email Invalid email, Phone number should be in e164 format",
            ["email", "phone_number"],
        ),
        ({"name": "x" * 256}, "Name is too long (maximum is 255 characters)", ["name"]),
    ],
)
async def test_create_validation(
    env: Env, body: dict[str, Any], message: str, attributes: list[str]
) -> None:
    await admin(env)
    r = await env.client.post(account_url(env, "/contacts"), headers=auth(ADMIN_TOKEN), json=body)
    assert (r.status_code, r.json()) == (422, {"message": message, "attributes": attributes})


async def test_unique_email_phone_and_identifier(env: Env) -> None:
    await admin(env)
    await create(
        env, name="A", email="a@example.com", phone_number="+15550001111", identifier="crm-1"
    )
    r = await env.client.post(
        account_url(env, "/contacts"),
        headers=auth(ADMIN_TOKEN),
        json={"email": "A@EXAMPLE.COM", "phone_number": "+15550001111", "identifier": "crm-1"},
    )
    assert r.status_code == 422
    assert r.json() == {
        "message": "Email has already been taken, Phone number has already been taken, "
        "Identifier has already been taken",
        "attributes": ["email", "phone_number", "identifier"],
    }


async def test_update_merges_attributes_and_overwrites_the_rest(env: Env) -> None:
    await agent(env)
    contact = (
        await create(
            env,
            AGENT_TOKEN,
            name="A",
            email="a@example.com",
            custom_attributes={"plan": "pro", "seats": 3},
            additional_attributes={"city": "Austin"},
        )
    )["contact"]
    url = account_url(env, f"/contacts/{contact['id']}")
    r = await env.client.patch(
        url,
        headers=auth(AGENT_TOKEN),
        json={
            "name": "Alice",
            "email": None,
            "phone_number": "+15550002222",
            "identifier": "crm-2",
            "blocked": True,
            "custom_attributes": {"seats": 5},
            "additional_attributes": {"company_name": "Acme"},
        },
    )
    assert r.status_code == 200, r.text
    updated = r.json()["payload"]
    assert (updated["name"], updated["email"], updated["phone_number"]) == (
        "Alice",
        None,
        "+15550002222",
    )
    assert (updated["identifier"], updated["blocked"]) == ("crm-2", True)
    assert updated["custom_attributes"] == {"plan": "pro", "seats": 5}
    assert updated["additional_attributes"] == {"city": "Austin", "company_name": "Acme"}
    r = await env.client.put(url, headers=auth(AGENT_TOKEN), json={"name": "Alicia"})
    assert r.status_code == 200 and r.json()["payload"]["phone_number"] == "+15550002222"
    assert [e.name for e in env.events if e.name.startswith("contact.")] == [
        "contact.created",
        "contact.updated",
        "contact.updated",
    ]


async def test_update_to_another_contacts_email_is_422(env: Env) -> None:
    await admin(env)
    await create(env, name="A", email="a@example.com")
    other = (await create(env, name="B", email="b@example.com"))["contact"]
    r = await env.client.patch(
        account_url(env, f"/contacts/{other['id']}"),
        headers=auth(ADMIN_TOKEN),
        json={"email": "a@example.com"},
    )
    assert (r.status_code, r.json()) == (
        422,
        {"message": "Email has already been taken", "attributes": ["email"]},
    )


async def test_show_and_update_refuse_other_accounts_and_bad_ids(make_env: Any) -> None:
    async with make_env() as one, make_env() as two:
        await admin(one)
        await admin(two)
        theirs = (await create(two, name="B", email="b@example.com"))["contact"]
        # Each env has its own database; make the same id exist in one's account too.
        mine = (await create(one, name="A", email="a@example.com"))["contact"]
        assert mine["id"] == theirs["id"]
        for path in ("/contacts/999", "/contacts/abc", "/contacts/999/conversations"):
            r = await one.client.get(account_url(one, path), headers=auth(ADMIN_TOKEN))
            assert (r.status_code, r.json()) == (404, NOT_FOUND), path
        r = await one.client.patch(
            account_url(one, "/contacts/999"), headers=auth(ADMIN_TOKEN), json={"name": "x"}
        )
        assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_list_shows_resolved_contacts_newest_activity_first(env: Env) -> None:
    await admin(env)
    await env.contact(name="Anonymous visitor")  # public API, no e-mail: not "resolved"
    for i in range(17):
        await create(env, name=f"Contact {i:02d}", email=f"c{i}@example.com")
    first = await get(env, "/contacts", ADMIN_TOKEN)
    assert first["meta"] == {"count": 17, "current_page": 1}
    assert len(first["payload"]) == 15
    second = await get(env, "/contacts", ADMIN_TOKEN, page=2)
    assert second["meta"] == {"count": 17, "current_page": 2}
    assert len(second["payload"]) == 2
    names = await get(env, "/contacts", ADMIN_TOKEN, sort="name")
    assert [c["name"] for c in names["payload"]][:2] == ["Contact 00", "Contact 01"]
    names = await get(env, "/contacts", ADMIN_TOKEN, sort="-name")
    assert names["payload"][0]["name"] == "Contact 16"
    bare = await get(env, "/contacts", ADMIN_TOKEN, include_contact_inboxes="false")
    assert all("contact_inboxes" not in c for c in bare["payload"])


async def test_search(env: Env) -> None:
    await agent(env)
    await create(env, AGENT_TOKEN, name="Alice Smith", email="alice@example.com")
    await create(env, AGENT_TOKEN, name="Bob", phone_number="+15550001111", identifier="crm_7")
    found = await get(env, "/contacts/search", AGENT_TOKEN, q="ALICE")
    assert [c["name"] for c in found["payload"]] == ["Alice Smith"]
    assert found["meta"] == {"count": 1, "current_page": 1}
    assert (await get(env, "/contacts/search", AGENT_TOKEN, q="5550001"))["meta"]["count"] == 1
    assert (await get(env, "/contacts/search", AGENT_TOKEN, q="crm_7"))["meta"]["count"] == 1
    # LIKE wildcards in q are literal characters.
    assert (await get(env, "/contacts/search", AGENT_TOKEN, q="%"))["meta"]["count"] == 0
    assert (await get(env, "/contacts/search", AGENT_TOKEN, q="crm%7"))["meta"]["count"] == 0
    r = await env.client.get(account_url(env, "/contacts/search"), headers=auth(AGENT_TOKEN))
    assert (r.status_code, r.json()) == (422, {"error": "Specify search string with parameter q"})
    # Search covers every contact, also those the list leaves out, and matches an id.
    visitor = await env.contact(name="Anonymous visitor")
    found = await get(env, "/contacts/search", AGENT_TOKEN, q="visitor")
    assert [c["id"] for c in found["payload"]] == [visitor["id"]]
    found = await get(env, "/contacts/search", AGENT_TOKEN, q=str(visitor["id"]))
    assert visitor["id"] in [c["id"] for c in found["payload"]]
    assert "contact_inboxes" in found["payload"][0]
    bare = await get(
        env, "/contacts/search", AGENT_TOKEN, q="visitor", include_contact_inboxes="no"
    )
    assert "contact_inboxes" not in bare["payload"][0]


async def test_a_contacts_conversations_follow_inbox_visibility(env: Env) -> None:
    await admin(env)
    await agent(env)  # not a member of env.inbox
    public = await env.contact(name="Alice", email="alice@example.com")
    first = await env.conversation(public["source_id"])
    second = await env.conversation(public["source_id"])
    found = await get(env, f"/contacts/{public['id']}/conversations", ADMIN_TOKEN)
    assert [c["id"] for c in found["payload"]] == [second["id"], first["id"]]
    assert found["payload"][0]["meta"]["sender"]["id"] == public["id"]
    assert found["payload"][0]["inbox_id"] == env.inbox.id
    hidden = await get(env, f"/contacts/{public['id']}/conversations", AGENT_TOKEN)
    assert hidden == {"payload": []}


async def test_attach_a_contact_to_an_inbox(env: Env) -> None:
    await admin(env)
    await agent(env)
    contact = (await create(env, name="A", email="a@example.com"))["contact"]
    url = account_url(env, f"/contacts/{contact['id']}/contact_inboxes")
    r = await env.client.post(
        url, headers=auth(ADMIN_TOKEN), json={"inbox_id": env.inbox.id, "source_id": "s-1"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["source_id"] == "s-1"
    assert r.json()["inbox"]["id"] == env.inbox.id
    other = (await create(env, name="B", email="b@example.com"))["contact"]
    r = await env.client.post(
        account_url(env, f"/contacts/{other['id']}/contact_inboxes"),
        headers=auth(ADMIN_TOKEN),
        json={"inbox_id": env.inbox.id, "source_id": "s-1"},
    )
    assert (r.status_code, r.json()) == (
        422,
        {"message": "Source has already been taken", "attributes": ["source_id"]},
    )
    # An agent may only attach contacts to inboxes they are a member of.
    r = await env.client.post(url, headers=auth(AGENT_TOKEN), json={"inbox_id": env.inbox.id})
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await env.client.post(url, headers=auth(ADMIN_TOKEN), json={"inbox_id": 999})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
