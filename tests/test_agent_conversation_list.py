"""Agent API conversation list and counts (reference agent §3.1.1-2): filters, visibility,
pagination, sort and the ``meta`` counts."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain import teams
from tests.agent_helpers import NOT_FOUND, Api, Staff, customer_conversation, make_staff
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio


@pytest.fixture
async def staff(env: Env) -> Staff:
    return await make_staff(env)


async def listed(api: Api, **params: Any) -> tuple[dict[str, int], list[int]]:
    body = await api.get("/conversations", params=params)
    assert set(body) == {"data"} and set(body["data"]) == {"meta", "payload"}
    return body["data"]["meta"], [c["id"] for c in body["data"]["payload"]]


def counts(mine: int, assigned: int, unassigned: int, total: int) -> dict[str, int]:
    return {"mine_count": mine, "assigned_count": assigned, "unassigned_count": unassigned,
            "all_count": total}  # fmt: skip


async def test_list_counts_and_assignee_type(env: Env, staff: Staff) -> None:
    ids = []
    for name in ("A", "B", "C", "D"):
        env.clock.advance(1)
        ids.append((await customer_conversation(env, name=name))[1])
    api = staff.agent_api
    env.clock.advance(1)
    await api.post(f"/conversations/{ids[0]}/assignments", json={"assignee_id": staff.agent.id})
    env.clock.advance(1)
    await api.post(f"/conversations/{ids[1]}/assignments", json={"assignee_id": staff.admin.id})
    meta, found = await listed(api)
    assert meta == counts(1, 2, 2, 4)
    assert found == [ids[1], ids[0], ids[3], ids[2]]  # latest activity first (the assignments)
    assert (await listed(api, assignee_type="me"))[1] == [ids[0]]
    assert (await listed(api, assignee_type="assigned"))[1] == [ids[1], ids[0]]
    assert (await listed(api, assignee_type="unassigned"))[1] == [ids[3], ids[2]]
    # Counts ignore assignee_type; /meta gives the same counts.
    assert (await listed(api, assignee_type="me"))[0] == meta
    assert await api.get("/conversations/meta") == {"meta": meta}
    assert (await api.get("/conversations/meta", params={"assignee_type": "me"}))["meta"] == meta
    # For the administrator "mine" is theirs.
    assert (await listed(staff.admin_api))[0] == counts(1, 2, 2, 4)


async def test_status_filter(env: Env, staff: Staff) -> None:
    api = staff.admin_api
    ids = [(await customer_conversation(env, name=n))[1] for n in "ABC"]
    await api.post(f"/conversations/{ids[0]}/toggle_status", json={"status": "resolved"})
    await api.post(f"/conversations/{ids[1]}/toggle_status", json={"status": "pending"})
    assert sorted((await listed(api))[1]) == [ids[2]]  # default: open
    assert (await listed(api, status="resolved"))[1] == [ids[0]]
    assert (await listed(api, status="pending"))[1] == [ids[1]]
    assert sorted((await listed(api, status="all"))[1]) == ids
    assert (await listed(api, status="bogus"))[1] == []  # matches nothing, as Chatwoot


async def test_visibility_follows_inbox_membership(env: Env, staff: Staff) -> None:
    sales = await env.new_inbox(name="Sales")
    _c1, mine = await customer_conversation(env, name="A")
    _c2, theirs = await customer_conversation(env, inbox=sales, name="B")
    assert (await listed(staff.agent_api))[1] == [mine]
    assert (await listed(staff.outsider_api))[1] == []
    assert sorted((await listed(staff.admin_api))[1]) == sorted([mine, theirs])
    assert (await listed(staff.admin_api, inbox_id=sales.id))[1] == [theirs]
    # An inbox the agent cannot see: an empty list, not an error.
    assert (await listed(staff.agent_api, inbox_id=sales.id)) == (counts(0, 0, 0, 0), [])


async def test_labels_q_team_source_filters(env: Env, staff: Staff) -> None:
    api = staff.admin_api
    alice, a = await customer_conversation(env, name="Alice")
    _bob, b = await customer_conversation(env, name="Bob")
    _carol, c = await customer_conversation(env, name="Carol")
    await api.post(f"/conversations/{a}/labels", json={"labels": ["billing", "vip"]})
    await api.post(f"/conversations/{b}/labels", json={"labels": ["vip"]})
    assert sorted((await listed(api, **{"labels[]": ["billing"]}))[1]) == [a]
    both = await api.get("/conversations", params=[("labels[]", "billing"), ("labels[]", "vip")])
    assert sorted(x["id"] for x in both["data"]["payload"]) == sorted([a, b])  # any match
    await env.send(alice["source_id"], a, content="My Invoice is wrong")
    await api.post(f"/conversations/{b}/messages", json={"content": "an invoice"})
    await api.post(f"/conversations/{c}/messages", json={"content": "invoice", "private": True})
    await api.post(f"/conversations/{a}/toggle_status", json={"status": "resolved"})
    # q searches incoming and outgoing messages (notes are outgoing too), whatever the status.
    assert sorted((await listed(api, q="INVOICE"))[1]) == sorted([a, b, c])
    await api.post(f"/conversations/{b}/toggle_status", json={"status": "resolved"})
    assert sorted((await listed(api, q="invoice"))[1]) == sorted([a, b, c])
    assert (await listed(api, q="100%"))[1] == []
    team = await env.store.write(teams.create_team, env.account_id, "billing", env.clock())
    await api.post(f"/conversations/{c}/assignments", json={"team_id": team.id})
    assert (await listed(api, team_id=team.id))[1] == [c]
    r = await api.request("GET", "/conversations", params={"team_id": 999})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    assert (await listed(api, source_id=alice["source_id"], status="all"))[1] == [a]
    assert (await listed(api, conversation_type="mention"))[1] == []


async def test_pagination_and_sort(env: Env, staff: Staff) -> None:
    api = staff.admin_api
    ids = []
    for i in range(27):
        env.clock.advance(1)
        ids.append((await customer_conversation(env, name=f"C{i}"))[1])
    meta, first = await listed(api)
    assert meta["all_count"] == 27 and len(first) == 25
    assert first == list(reversed(ids))[:25]
    assert (await listed(api, page=2))[1] == list(reversed(ids))[25:]
    assert (await listed(api, page=3))[1] == []
    assert (await listed(api, sort_by="created_at_asc"))[1] == ids[:25]
    assert len((await listed(api, updated_within=3600))[1]) == 27  # no paging
    await api.post(f"/conversations/{ids[3]}/toggle_priority", json={"priority": "low"})
    await api.post(f"/conversations/{ids[5]}/toggle_priority", json={"priority": "urgent"})
    assert (await listed(api, sort_by="priority_desc"))[1][:3] == [ids[5], ids[3], ids[26]]
    assert (await listed(api, sort_by="priority_asc"))[1][:2] == [ids[3], ids[5]]
    assert (await listed(api, conversation_type="unattended"))[0]["all_count"] == 27
