"""The full customer <-> agent loop over real sockets (issue 4's acceptance): a customer opens a
conversation through the public API and listens on /cable; an agent lists it and replies
through the agent API; the customer gets the reply as ``message.created``; a private note
reaches the agents' subscription and never the customer's; the agent resolves; the customer
gets the status change and the CSAT survey and rates it; the agent sees the rating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.cable_socket_helpers import Tenant, data, event_name, next_event, ok, subscribe_ok
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("agent-loop")) as started:
        yield started


async def until(
    cable: CableClient, wanted: Callable[[str | None, dict[str, Any]], bool]
) -> tuple[list[cp.Broadcast], cp.Broadcast]:
    """Read broadcasts until one is ``wanted``; returns the ones read before it, and it."""
    skipped: list[cp.Broadcast] = []
    while True:
        frame = await next_event(cable)
        if wanted(event_name(frame), data(frame)):
            return skipped, frame
        skipped.append(frame)


def message_event(name: str, message_id: int) -> Callable[[str | None, dict[str, Any]], bool]:
    return lambda event, payload: event == name and payload.get("id") == message_id


class AgentApi:
    def __init__(self, http: httpx.AsyncClient, tenant: Tenant, user: dict[str, Any]) -> None:
        self.http = http
        self.base = f"/api/v1/accounts/{tenant.account_id}"
        self.headers = {"api_access_token": user["access_token"]}

    async def get(self, path: str, **kw: Any) -> Any:
        return ok(await self.http.get(self.base + path, headers=self.headers, **kw))

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return ok(await self.http.post(self.base + path, headers=self.headers, json=body))


async def test_customer_and_agent_loop(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alice = await tenant.customer(http, name="Alice")
    agent = AgentApi(http, tenant, tenant.agent)
    profile = ok(await http.get("/api/v1/profile", headers=agent.headers))
    assert profile["pubsub_token"] == tenant.agent["pubsub_token"]  # how an agent learns it
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.EXT_JSON) as customer_cable,
        CableClient.connect(url, protocol=cp.JSON) as agent_cable,
    ):
        await customer_cable.expect(cp.Welcome)
        await subscribe_ok(customer_cable, alice.ident())
        await agent_cable.expect(cp.Welcome)
        await subscribe_ok(agent_cable, tenant.agent_ident(tenant.agent))

        # 1. The customer opens a conversation and writes.
        conv = await alice.start_conversation()
        hello = await alice.say(conv, "Hi, my order never arrived")
        await until(agent_cable, message_event("message.created", hello["id"]))

        # 2. The agent finds it in the list (the default: open conversations).
        listed = await agent.get("/conversations")
        [found] = [c for c in listed["data"]["payload"] if c["id"] == conv]
        assert found["messages"][0]["content"] == "Hi, my order never arrived"
        assert found["meta"]["sender"]["id"] == alice.id and found["unread_count"] == 1
        assert listed["data"]["meta"]["unassigned_count"] >= 1

        # 3. The agent replies; the customer gets it as message.created.
        reply = await agent.post(
            f"/conversations/{conv}/messages", {"content": "Sorry! Let me check.", "echo_id": "r1"}
        )
        skipped, got = await until(customer_cable, message_event("message.created", reply["id"]))
        assert [event_name(f) for f in skipped] == ["conversation.created", "message.created"]
        heard = data(got)
        assert (heard["content"], heard["message_type"], heard["private"]) == (
            "Sorry! Let me check.", 1, False,
        )  # fmt: skip
        assert heard["sender"]["type"] == "user" and heard["sender"]["id"] == tenant.agent["id"]
        assert heard["echo_id"] == "r1" and heard["conversation_id"] == conv
        await until(agent_cable, message_event("message.created", reply["id"]))

        # 4. A private note reaches the agents' subscription, never the customer's: the
        # customer's next message event is the public reply sent after it.
        note = await agent.post(
            f"/conversations/{conv}/messages", {"content": "VIP: refund fast", "private": True}
        )
        _, got = await until(agent_cable, message_event("message.created", note["id"]))
        assert data(got)["private"] is True and data(got)["content"] == "VIP: refund fast"
        marker = await agent.post(f"/conversations/{conv}/messages", {"content": "Found it."})
        skipped, _ = await until(customer_cable, message_event("message.created", marker["id"]))
        assert all(data(f).get("id") != note["id"] for f in skipped)
        assert all(not data(f).get("private") for f in skipped)
        assert "VIP" not in str([f.message for f in skipped])

        # 5. The agent resolves: the customer gets the status change, then the survey.
        resolved = await agent.post(f"/conversations/{conv}/toggle_status", {"status": "resolved"})
        assert resolved["payload"]["current_status"] == "resolved"
        skipped, changed = await until(
            customer_cable, lambda e, d: e == "conversation.status_changed"
        )
        assert data(changed)["status"] == "resolved" and data(changed)["id"] == conv
        _, survey_frame = await until(customer_cable, lambda e, d: e == "message.created")
        survey = data(survey_frame)
        assert (survey["content_type"], survey["message_type"]) == ("input_csat", 3)

        # 6. The customer rates it through the public API.
        rated = await alice.rate(conv, survey["id"], 5)
        assert (
            rated["content_attributes"]["submitted_values"]["csat_survey_response"]["rating"] == 5
        )

        # 7. The agent sees the rating: live, and in the messages list.
        _, updated = await until(agent_cable, message_event("message.updated", survey["id"]))
        answer = data(updated)["content_attributes"]["submitted_values"]
        assert answer["csat_survey_response"]["rating"] == 5
        messages = await agent.get(f"/conversations/{conv}/messages")
        [csat] = [m for m in messages["payload"] if m["content_type"] == "input_csat"]
        assert csat["content_attributes"]["submitted_values"]["csat_survey_response"] == {
            "rating": 5
        }
        contents = [m["content"] for m in messages["payload"]]
        assert "VIP: refund fast" in contents  # agents see their notes
        public = ok(await http.get(f"{alice.base}/conversations/{conv}/messages"))
        assert "VIP: refund fast" not in [m["content"] for m in public]
