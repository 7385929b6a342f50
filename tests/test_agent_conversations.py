"""Agent API conversations (reference agent §3.1, §2.1; seeds 000 and 001): create with the
seed's request, show with every field the seed lists, and the events each change sends."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from client_sdk import protocol as p
from gateway.domain import teams
from tests.agent_helpers import (
    NOT_FOUND,
    Staff,
    customer_conversation,
    make_staff,
    names,
    streams_of,
)
from tests.routes_helpers import ISO, T0, Env

pytestmark = pytest.mark.anyio

# Every field seed 000's response lists.
SEED_000_KEYS = {
    "meta", "id", "account_id", "additional_attributes", "can_reply", "custom_attributes",
    "inbox_id", "muted", "status", "created_at",
}  # fmt: skip
SEED_SENDER_KEYS = {
    "additional_attributes", "availability_status", "email", "id", "name", "phone_number",
    "identifier", "thumbnail", "custom_attributes", "last_activity_at", "blocked", "created_at",
}  # fmt: skip
SEED_ASSIGNEE_KEYS = {
    "id", "account_id", "availability_status", "auto_offline", "confirmed", "email",
    "available_name", "name", "role", "see_all_conversations", "thumbnail",
}  # fmt: skip
# Seed 001 adds these.
SEED_001_KEYS = SEED_000_KEYS | {
    "messages", "agent_last_seen_at", "assignee_last_seen_at", "contact_last_seen_at", "labels",
    "snoozed_until", "timestamp", "first_reply_created_at", "unread_count",
    "last_non_activity_message",
}  # fmt: skip
SEED_TEAM_KEYS = {"id", "name", "description", "allow_auto_assign", "account_id", "is_member"}
SEED_MESSAGE_KEYS = {
    "id", "content", "account_id", "inbox_id", "conversation_id", "message_type", "created_at",
    "updated_at", "private", "status", "source_id", "content_type", "content_attributes",
    "sender_type", "sender_id", "external_source_ids", "additional_attributes", "label_list",
    "created_at_exact", "conversation",
}  # fmt: skip
SEED_USER_SENDER_KEYS = {
    "id", "name", "available_name", "email", "avatar_url", "logo_user_url", "type",
    "availability_status", "thumbnail",
}  # fmt: skip
# The full shape of reference agent §2.1.
FULL_KEYS = SEED_001_KEYS | {"uuid", "updated_at", "last_activity_at", "priority",
                             "waiting_since", "sla_policy_id"}  # fmt: skip


@pytest.fixture
async def staff(env: Env) -> Staff:
    return await make_staff(env)


# -- seed 000: create ----------------------------------------------------------------------


async def test_seed_000_create_with_the_seed_request(env: Env, staff: Staff) -> None:
    contact, earlier = await customer_conversation(
        env, name="Alice", email="alice@example.com", phone_number="+15550001111"
    )
    await env.send(contact["source_id"], earlier, content="hello")  # sets last_activity_at
    team = await env.store.write(teams.create_team, env.account_id, "billing", env.clock())
    body = {  # the seed's example, with real ids (as strings, as the seed types them)
        "source_id": "crm-991-web",
        "inbox_id": str(env.inbox.id),
        "contact_id": str(contact["id"]),
        "additional_attributes": {},
        "custom_attributes": {"attribute_key": "attribute_value"},
        "status": "open",
        "assignee_id": str(staff.agent.id),
        "team_id": str(team.id),
    }
    created = await staff.admin_api.post("/conversations", json=body)
    assert set(created) >= SEED_000_KEYS and set(created) == FULL_KEYS
    meta = created["meta"]
    assert set(meta["sender"]) == SEED_SENDER_KEYS
    assert set(meta["assignee"]) == SEED_ASSIGNEE_KEYS | {"provider", "custom_role_id"}
    assert set(meta["team"]) == SEED_TEAM_KEYS
    assert meta["sender"] == {
        "additional_attributes": {}, "availability_status": "offline",
        "email": "alice@example.com", "id": contact["id"], "name": "Alice",
        "phone_number": "+15550001111", "identifier": None, "thumbnail": "",
        "custom_attributes": {}, "blocked": False, "created_at": int(T0),
        "last_activity_at": int(T0),
    }  # fmt: skip
    assert meta["assignee"] == {
        "id": staff.agent.id, "account_id": env.account_id, "availability_status": "online",
        "auto_offline": True, "confirmed": True, "email": "bob@acme.test", "provider": "email",
        "available_name": "Bob", "name": "Bob", "role": "agent", "thumbnail": "",
        "custom_role_id": None, "see_all_conversations": False,
    }  # fmt: skip
    assert meta["assignee_type"] == "User"
    assert meta["team"] == {
        "id": team.id, "name": "billing", "description": None, "allow_auto_assign": True,
        "account_id": env.account_id, "is_member": False,
    }  # fmt: skip
    assert (meta["channel"], meta["hmac_verified"]) == ("Channel::Api", False)
    assert created["account_id"] == env.account_id
    assert created["inbox_id"] == env.inbox.id
    assert (created["status"], created["muted"], created["can_reply"]) == ("open", False, True)
    assert created["custom_attributes"] == {"attribute_key": "attribute_value"}
    assert created["created_at"] == int(T0) and created["messages"] == []
    # A new session with the given source_id: the conversation belongs to it.
    mine = await env.client.get(env.contact_url("crm-991-web") + "/conversations")
    assert [c["id"] for c in mine.json()] == [created["id"]]
    assert names(env.events)[-3:] == ["conversation.created", "assignee.changed", "team.changed"]


async def test_seed_000_literal_example_ids_find_nothing(env: Env, staff: Staff) -> None:
    body = {
        "source_id": "string", "inbox_id": "string", "contact_id": "string",
        "additional_attributes": {}, "custom_attributes": {"attribute_key": "attribute_value"},
        "status": "open", "assignee_id": "string", "team_id": "string",
    }  # fmt: skip
    r = await staff.admin_api.request("POST", "/conversations", json=body)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_create_by_source_id_with_an_initial_message(env: Env, staff: Staff) -> None:
    contact = await env.contact(name="Alice")
    created = await staff.agent_api.post(
        "/conversations",
        json={"source_id": contact["source_id"], "message": {"content": "Hello from the CRM"}},
    )
    [first] = created["messages"]
    assert (first["content"], first["message_type"], first["sender_type"]) == (
        "Hello from the CRM", 1, "User",
    )  # fmt: skip
    assert first["sender"]["id"] == staff.agent.id and set(first) >= SEED_MESSAGE_KEYS
    assert created["last_non_activity_message"]["id"] == first["id"]
    assert created["first_reply_created_at"] == int(T0) and "assignee" not in created["meta"]
    # The customer (session 1) hears the conversation and the agent's message.
    assert streams_of(env.events, "conversation.created")[-2:] == [
        f"inbox:{env.inbox.id}", "session:1",
    ]  # fmt: skip
    assert "session:1" in streams_of(env.events, "message.created")


async def test_create_lookups(env: Env, staff: Staff) -> None:
    api = staff.admin_api
    contact = await env.contact(name="Alice")
    other = await env.contact(name="Carol")
    # source_id alone must name an existing session.
    r = await api.request("POST", "/conversations", json={"source_id": "nope"})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await api.request("POST", "/conversations", json={})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await api.request(
        "POST", "/conversations", json={"inbox_id": 999, "contact_id": contact["id"]}
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await api.request(
        "POST", "/conversations", json={"inbox_id": env.inbox.id, "contact_id": 999}
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    # Another contact's source_id in that inbox.
    r = await api.request(
        "POST", "/conversations",
        json={"inbox_id": env.inbox.id, "contact_id": other["id"],
              "source_id": contact["source_id"]},
    )  # fmt: skip
    assert (r.status_code, r.json()) == (422, {"error": "source_id should be unique"})
    # Without source_id a new session is made; the same one is reused when named.
    a = await api.post(
        "/conversations", json={"inbox_id": env.inbox.id, "contact_id": contact["id"]}
    )
    b = await api.post(
        "/conversations",
        json={"inbox_id": env.inbox.id, "contact_id": contact["id"],
              "source_id": contact["source_id"]},
    )  # fmt: skip
    assert a["id"] != b["id"]
    mine = await env.client.get(env.contact_url(contact["source_id"]) + "/conversations")
    assert [c["id"] for c in mine.json()] == [b["id"]]


async def test_create_status_and_validation(env: Env, staff: Staff) -> None:
    contact = await env.contact(name="Alice")
    api = staff.admin_api
    base = {"inbox_id": env.inbox.id, "contact_id": contact["id"]}
    snoozed = await api.post(
        "/conversations",
        json=base | {"status": "snoozed", "snoozed_until": "2026-02-01T09:00:00Z"},
    )
    assert (snoozed["status"], snoozed["snoozed_until"]) == (
        "snoozed", "2026-02-01T09:00:00.000Z",
    )  # fmt: skip
    pending = await api.post("/conversations", json=base | {"status": "pending"})
    assert pending["status"] == "pending" and pending["snoozed_until"] is None
    r = await api.request("POST", "/conversations", json=base | {"status": "closed"})
    assert (r.status_code, r.json()) == (422, {"error": "'closed' is not a valid status"})
    # Unknown assignees and teams are not stored.
    odd = await api.post("/conversations", json=base | {"assignee_id": 999, "team_id": 999})
    assert "assignee" not in odd["meta"] and "team" not in odd["meta"]


async def test_lock_to_single_conversation_returns_the_last(make_env: Any) -> None:
    async with make_env(inbox={"lock_to_single_conversation": True}) as env:
        staff = await make_staff(env)
        contact, display_id = await customer_conversation(env, name="Alice")
        again = await staff.admin_api.post(
            "/conversations", json={"source_id": contact["source_id"]}
        )
        assert again["id"] == display_id


# -- seed 001: show ------------------------------------------------------------------------


async def test_seed_001_show_lists_every_field(env: Env, staff: Staff) -> None:
    contact, display_id = await customer_conversation(env, name="Alice", identifier="crm-991")
    team = await env.store.write(teams.create_team, env.account_id, "billing", env.clock())
    await env.store.write(teams.add_team_member, team.id, staff.agent.id)
    api = staff.agent_api
    await env.send(contact["source_id"], display_id, content="I need a refund")
    await api.post(f"/conversations/{display_id}/assignments", json={"team_id": team.id})
    await api.post(f"/conversations/{display_id}/assignments", json={"assignee_id": staff.agent.id})
    await api.post(f"/conversations/{display_id}/labels", json={"labels": ["billing"]})
    env.clock.advance(5)
    reply = await api.post(f"/conversations/{display_id}/messages", json={"content": "On it"})
    await api.post(
        f"/conversations/{display_id}/messages", json={"content": "VIP!", "private": True}
    )
    shown = await api.get(f"/conversations/{display_id}")
    assert set(shown) == FULL_KEYS
    assert set(shown["meta"]) == {"sender", "channel", "team", "assignee", "assignee_type",
                                  "hmac_verified"}  # fmt: skip
    assert shown["meta"]["team"]["is_member"] is True  # the viewer is in the team
    assert shown["meta"]["assignee"]["id"] == staff.agent.id
    assert shown["labels"] == ["billing"]
    [last] = shown["messages"]  # the last message, private notes included
    assert (last["content"], last["private"]) == ("VIP!", True)
    assert set(last) == SEED_MESSAGE_KEYS | {"processed_message_content", "sentiment", "sender"}
    assert last["label_list"] == ["billing"] and ISO.match(last["created_at_exact"])
    assert set(last["conversation"]) >= {"assignee_id", "unread_count"}
    non_activity = shown["last_non_activity_message"]
    assert set(non_activity["sender"]) == SEED_USER_SENDER_KEYS
    assert non_activity["sender"]["email"] == "bob@acme.test"
    assert shown["first_reply_created_at"] == reply["created_at"] == int(T0) + 5
    assert shown["unread_count"] == 1 and shown["waiting_since"] == 0
    assert shown["timestamp"] == shown["last_activity_at"] == int(T0) + 5
    assert isinstance(shown["updated_at"], float)
    # The §2.1 shape decodes as the protocol Struct.
    decoded = p.agent_conversation_decoder.decode(msgspec.json.encode(shown))
    assert decoded.meta.team is not msgspec.UNSET


async def test_show_errors(env: Env, staff: Staff) -> None:
    for path in ("/conversations/999", "/conversations/abc"):
        r = await staff.admin_api.request("GET", path)
        assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_update_last_seen_resets_unread(env: Env, staff: Staff) -> None:
    contact, display_id = await customer_conversation(env, name="Alice")
    await env.send(contact["source_id"], display_id, content="one")
    await env.send(contact["source_id"], display_id, content="two")
    api = staff.agent_api
    assert (await api.get(f"/conversations/{display_id}"))["unread_count"] == 2
    await api.post(f"/conversations/{display_id}/assignments", json={"assignee_id": staff.agent.id})
    before = len(env.events)
    env.clock.advance(10)
    seen = await api.post(f"/conversations/{display_id}/update_last_seen")
    assert seen["unread_count"] == 0
    assert seen["agent_last_seen_at"] == seen["assignee_last_seen_at"] == int(T0) + 10
    assert len(env.events) == before  # no event, as Chatwoot
    seen = await staff.admin_api.post(f"/conversations/{display_id}/update_last_seen")
    assert seen["assignee_last_seen_at"] == int(T0) + 10  # the admin is not the assignee


async def test_create_form_encoded(env: Env, staff: Staff) -> None:
    contact = await env.contact(name="Alice")
    created = await staff.agent_api.post(
        "/conversations",
        data={"inbox_id": str(env.inbox.id), "contact_id": str(contact["id"]),
              "custom_attributes[order_id]": "A-77", "message[content]": "Hello",
              "message[private]": "true"},
    )  # fmt: skip
    assert created["custom_attributes"] == {"order_id": "A-77"}
    [note] = created["messages"]
    assert (note["content"], note["private"]) == ("Hello", True)
    assert created["first_reply_created_at"] == 0  # a note is no reply
    assert "last_activity_at" not in created["meta"]["sender"]  # omitted while null
