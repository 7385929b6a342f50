"""What agents change on a conversation (reference agent §3.1.6-3.3) and who hears about it
(reference public §6.5): status, priority, custom attributes, assignments, labels, delete."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.domain import teams
from gateway.services.agent_conversations import AgentConversationService
from tests.agent_helpers import (
    NOT_AUTHORIZED,
    NOT_FOUND,
    Staff,
    customer_conversation,
    make_staff,
    names,
    streams_of,
)
from tests.routes_helpers import T0, Env, EnvFactory

pytestmark = pytest.mark.anyio


@pytest.fixture
async def staff(env: Env) -> Staff:
    return await make_staff(env)


def payload(env: Env, name: str, stream_prefix: str = "inbox:") -> dict[str, Any]:
    """The data of the last ``name`` event logged on a stream starting with the prefix."""
    for event in reversed(env.events):
        if event.name == name and event.stream.startswith(stream_prefix):
            data: dict[str, Any] = msgspec.json.decode(event.payload)["data"]
            return data
    raise AssertionError(f"no {name} on {stream_prefix}*")


async def activities(staff: Staff, display_id: int) -> list[str]:
    body = await staff.admin_api.get(f"/conversations/{display_id}/messages")
    return [m["content"] for m in body["payload"] if m["message_type"] == 2]


# -- toggle_status -------------------------------------------------------------------------


async def test_toggle_without_status_flips_open_and_resolved(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.admin_api
    body = await api.post(f"/conversations/{cid}/toggle_status")
    assert body == {"meta": {}, "payload": {"success": True, "conversation_id": cid,
                                            "current_status": "resolved",
                                            "snoozed_until": None}}  # fmt: skip
    assert streams_of(env.events, "conversation.status_changed") == [
        f"inbox:{env.inbox.id}", "session:1",
    ]  # fmt: skip
    body = await api.post(f"/conversations/{cid}/toggle_status", json={})
    assert body["payload"]["current_status"] == "open"
    assert await activities(staff, cid) == [
        "Conversation was marked resolved by Ada", "Conversation was reopened by Ada",
    ]  # fmt: skip
    # An administrator opening it is not made the assignee.
    assert "assignee" not in (await api.get(f"/conversations/{cid}"))["meta"]


async def test_snooze_until_and_set_statuses(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.admin_api
    until = int(T0) + 3600
    body = await api.post(
        f"/conversations/{cid}/toggle_status",
        json={"status": "snoozed", "snoozed_until": str(until)},
    )
    assert body["payload"] == {"success": True, "conversation_id": cid,
                               "current_status": "snoozed",
                               "snoozed_until": "2026-01-10T13:00:00.000Z"}  # fmt: skip
    shown = await api.get(f"/conversations/{cid}")
    assert (shown["status"], shown["snoozed_until"]) == ("snoozed", "2026-01-10T13:00:00.000Z")
    assert payload(env, "conversation.status_changed")["snoozed_until"] == (
        "2026-01-10T13:00:00.000Z"
    )
    # snoozed_until is dropped by any other status.
    body = await api.post(
        f"/conversations/{cid}/toggle_status", json={"status": "pending", "snoozed_until": until}
    )
    assert body["payload"]["snoozed_until"] is None
    r = await api.request("POST", f"/conversations/{cid}/toggle_status", json={"status": "x"})
    assert (r.status_code, r.json()) == (422, {"error": "'x' is not a valid status"})
    # (10**20 would be refused at the edge, as every integer past 64 bits: test_input_bounds)
    for bad in ("tomorrow", 10**15, -5):
        r = await api.request(
            "POST", f"/conversations/{cid}/toggle_status",
            json={"status": "snoozed", "snoozed_until": bad},
        )  # fmt: skip
        assert (r.status_code, r.json()) == (422, {"error": "invalid date"})


async def test_a_customer_message_reopens_a_snoozed_conversation(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    await staff.admin_api.post(
        f"/conversations/{cid}/toggle_status", json={"status": "snoozed", "snoozed_until": 1}
    )
    await env.send(contact["source_id"], cid, content="hello?")
    shown = await staff.admin_api.get(f"/conversations/{cid}")
    assert (shown["status"], shown["snoozed_until"]) == ("open", None)


async def test_snoozed_conversations_reopen_when_the_time_comes(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    _other, later = await customer_conversation(env, name="Bob")
    api = staff.admin_api
    for display_id, seconds in ((cid, 60), (later, 3600)):
        await api.post(
            f"/conversations/{display_id}/toggle_status",
            json={"status": "snoozed", "snoozed_until": int(T0) + seconds},
        )
    service = AgentConversationService(env.app.state.ctx)
    assert await service.reopen_snoozed() == 0
    env.clock.advance(61)
    assert await service.reopen_snoozed() == 2  # one status_changed: agents and customer
    shown = await api.get(f"/conversations/{cid}")
    assert (shown["status"], shown["snoozed_until"]) == ("open", None)
    assert payload(env, "conversation.status_changed", "session:")["status"] == "open"
    assert (await api.get(f"/conversations/{later}"))["status"] == "snoozed"


async def test_an_agent_opening_takes_the_conversation(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    await staff.admin_api.post(
        f"/conversations/{cid}/assignments", json={"assignee_id": staff.admin.id}
    )
    await api.post(f"/conversations/{cid}/toggle_status", json={"status": "resolved"})
    assert (await api.get(f"/conversations/{cid}"))["meta"]["assignee"]["id"] == staff.admin.id
    await api.post(f"/conversations/{cid}/toggle_status", json={"status": "open"})
    shown = await api.get(f"/conversations/{cid}")
    assert shown["meta"]["assignee"]["id"] == staff.agent.id  # even from someone else
    assert names(env.events)[-4:] == [
        "message.created", "assignee.changed", "conversation.updated", "message.created",
    ]  # fmt: skip
    assert (await activities(staff, cid))[-1] == "Bob self-assigned this conversation"


async def test_resolving_sends_the_csat_survey_once(make_env: EnvFactory) -> None:
    async with make_env(inbox={"csat_survey_enabled": True, "csat_message": "Rate us"}) as env:
        staff = await make_staff(env)
        contact, cid = await customer_conversation(env, name="Alice")
        api = staff.agent_api
        await api.post(f"/conversations/{cid}/toggle_status", json={"status": "resolved"})
        customer_sees = [
            (e.name, msgspec.json.decode(e.payload)["data"].get("content_type"))
            for e in env.events if e.stream == "session:1"
        ]  # fmt: skip
        assert customer_sees[-2:] == [
            ("conversation.status_changed", None), ("message.created", "input_csat"),
        ]  # fmt: skip
        survey = payload(env, "message.created", "session:")
        assert (survey["content"], survey["message_type"]) == ("Rate us", 3)
        await api.post(f"/conversations/{cid}/toggle_status", json={"status": "open"})
        await api.post(f"/conversations/{cid}/toggle_status", json={"status": "resolved"})
        listed = await api.get(f"/conversations/{cid}/messages")
        assert [m["content_type"] for m in listed["payload"]].count("input_csat") == 1
        assert contact["source_id"]


# -- priority, update, custom attributes ---------------------------------------------------


async def test_toggle_priority(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    url = f"/conversations/{cid}/toggle_priority"
    r = await api.request("POST", url, json={"priority": "urgent"})
    assert (r.status_code, r.content) == (200, b"")
    assert (await api.get(f"/conversations/{cid}"))["priority"] == "urgent"
    assert payload(env, "conversation.updated")["priority"] == "urgent"
    assert streams_of(env.events, "conversation.updated") == [
        f"inbox:{env.inbox.id}", "session:1",
    ]  # fmt: skip
    await api.post(url, json={"priority": "low"})
    await api.post(url, json={"priority": "none"})
    assert (await api.get(f"/conversations/{cid}"))["priority"] is None
    await api.post(url, json={"priority": "high"})
    await api.post(url)  # missing: cleared
    assert (await api.get(f"/conversations/{cid}"))["priority"] is None
    r = await api.request("POST", url, json={"priority": "asap"})
    assert (r.status_code, r.json()) == (422, {"error": "'asap' is not a valid priority"})
    assert await activities(staff, cid) == [
        "Bob set the priority to urgent", "Bob changed the priority from urgent to low",
        "Bob removed the priority", "Bob set the priority to high", "Bob removed the priority",
    ]  # fmt: skip


async def test_patch_updates_priority_only(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    for method in ("PATCH", "PUT"):
        body = await api.ok(method, f"/conversations/{cid}", json={"priority": "high"})
        assert body["priority"] == "high" and body["id"] == cid
    body = await api.ok("PATCH", f"/conversations/{cid}", json={"status": "resolved"})
    assert (body["priority"], body["status"]) == ("high", "open")
    body = await api.ok("PATCH", f"/conversations/{cid}", json={"priority": None})
    assert body["priority"] is None


async def test_custom_attributes_replace(env: Env, staff: Staff) -> None:
    contact = await env.contact(name="Alice")
    created = await env.conversation(contact["source_id"], custom_attributes={"a": 1, "b": 2})
    cid = created["id"]
    api = staff.agent_api
    body = await api.post(
        f"/conversations/{cid}/custom_attributes", json={"custom_attributes": {"order_id": "A-77"}}
    )
    assert body == {"custom_attributes": {"order_id": "A-77"}}
    assert (await api.get(f"/conversations/{cid}"))["custom_attributes"] == {"order_id": "A-77"}
    assert payload(env, "conversation.updated")["custom_attributes"] == {"order_id": "A-77"}


# -- assignments ---------------------------------------------------------------------------


async def test_assign_and_unassign_an_agent(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.admin_api
    url = f"/conversations/{cid}/assignments"
    body = await api.post(url, json={"assignee_id": staff.agent.id})
    assert body == {
        "id": staff.agent.id, "account_id": env.account_id, "availability_status": "online",
        "auto_offline": True, "confirmed": True, "email": "bob@acme.test", "provider": "email",
        "available_name": "Bob", "name": "Bob", "role": "agent", "thumbnail": "",
        "custom_role_id": None,
    }  # fmt: skip
    # assignee.changed reaches the agents only; conversation.updated the customer too.
    assert streams_of(env.events, "assignee.changed") == [f"inbox:{env.inbox.id}"]
    assert streams_of(env.events, "conversation.updated") == [
        f"inbox:{env.inbox.id}", "session:1",
    ]  # fmt: skip
    changed = payload(env, "assignee.changed")
    assert changed["meta"]["assignee"] == {
        "type": "user", "id": staff.agent.id, "name": "Bob", "available_name": "Bob",
        "avatar_url": "", "availability_status": "online", "thumbnail": "",
    }  # fmt: skip
    assert changed["meta"]["assignee_type"] == "User" and changed["account_id"] == env.account_id
    messages = await api.get(f"/conversations/{cid}/messages")
    assert messages["meta"]["assignee"]["id"] == staff.agent.id
    # An unknown user unassigns; the answer is null.
    r = await api.request("POST", url, json={"assignee_id": 999})
    assert (r.status_code, r.json()) == (200, None)
    assert "assignee" not in (await api.get(f"/conversations/{cid}"))["meta"]
    assert payload(env, "assignee.changed")["meta"]["assignee"] is None
    assert await activities(staff, cid) == [
        "Assigned to Bob by Ada", "Conversation unassigned by Ada",
    ]  # fmt: skip
    # Agent bots are not supported: nothing changes.
    await api.post(url, json={"assignee_id": staff.agent.id})
    r = await api.request("POST", url, json={"assignee_id": 9, "assignee_type": "AgentBot"})
    assert (r.status_code, r.json()) == (200, None)
    assert (await api.get(f"/conversations/{cid}"))["meta"]["assignee"]["id"] == staff.agent.id
    # Neither key: null.
    assert (await api.request("POST", url, json={})).json() is None


async def test_assign_a_team(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    team = await env.store.write(
        teams.create_team, env.account_id, "billing", env.clock(), description="Billing team"
    )
    api = staff.agent_api
    url = f"/conversations/{cid}/assignments"
    body = await api.post(url, json={"team_id": str(team.id)})
    assert body == {
        "id": team.id, "name": "billing", "description": "Billing team",
        "allow_auto_assign": True, "account_id": env.account_id,
        "created_at": "2026-01-10T12:00:00.000Z", "updated_at": "2026-01-10T12:00:00.000Z",
    }  # fmt: skip
    assert streams_of(env.events, "team.changed") == [f"inbox:{env.inbox.id}"]
    assert payload(env, "team.changed")["meta"]["team"] == {"id": team.id, "name": "billing"}
    # assignee_id takes precedence over team_id.
    await api.post(url, json={"assignee_id": staff.agent.id, "team_id": None})
    assert (await api.get(f"/conversations/{cid}"))["meta"]["team"]["id"] == team.id
    r = await api.request("POST", url, json={"team_id": 999})
    assert (r.status_code, r.json()) == (200, None)
    assert "team" not in (await api.get(f"/conversations/{cid}"))["meta"]
    assert (await activities(staff, cid))[0::2] == [
        "Assigned to billing by Bob", "Unassigned from billing by Bob",
    ]  # fmt: skip


# -- labels ----------------------------------------------------------------------------------


async def test_labels_replace(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    url = f"/conversations/{cid}/labels"
    assert await api.get(url) == {"payload": []}
    assert await api.post(url, json={"labels": ["billing", "vip", "billing", " "]}) == {
        "payload": ["billing", "vip"]
    }
    assert await api.get(url) == {"payload": ["billing", "vip"]}
    assert payload(env, "conversation.updated")["labels"] == ["billing", "vip"]
    assert await api.post(url, json={"labels": ["vip", "refund"]}) == {"payload": ["vip", "refund"]}
    assert await api.post(url, json={"labels": []}) == {"payload": []}
    assert await activities(staff, cid) == [
        "Bob added billing, vip", "Bob added refund", "Bob removed billing",
        "Bob removed vip, refund",
    ]  # fmt: skip
    # Form-encoded, as Rails clients send arrays.
    r = await api.request("POST", url, data={"labels[]": ["a", "b"]})
    assert r.json() == {"payload": ["a", "b"]}


# -- delete ----------------------------------------------------------------------------------


async def test_only_administrators_delete(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    await env.send(contact["source_id"], cid, content="hello")
    r = await staff.agent_api.request("DELETE", f"/conversations/{cid}")
    assert (r.status_code, r.json()) == (401, NOT_AUTHORIZED)
    r = await staff.admin_api.request("DELETE", f"/conversations/{cid}")
    assert (r.status_code, r.content) == (200, b"")
    r = await staff.admin_api.request("GET", f"/conversations/{cid}")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
