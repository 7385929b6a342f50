"""The agent bot round trip over real sockets (issue 4's acceptance): a gateway under uvicorn,
a loopback HTTP server acting as the bot at its ``outgoing_url``, a customer and an agent on
``/cable``.

The customer opens a conversation on the bot's inbox (pending) and writes; the bot receives
``message_created``, signed with its secret, and answers through the application API with its
own token; the customer's socket gets the answer as ``message.created``; the bot hands off and
the agent's socket sees the conversation open. Then the agent types, which the customer sees
unless it is a private note.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient, agent_identifier, contact_identifier
from tests.cable_socket_helpers import data, event_name, next_event, subscribe_ok
from tests.server_helpers import GatewayProcess
from tests.webhook_receiver import Hit, Receiver

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@contextlib.contextmanager
def gateway(root: Path) -> Iterator[GatewayProcess]:
    server = GatewayProcess(
        root,
        INBOXGATE_WEBHOOK_ALLOW_PRIVATE="1",
        INBOXGATE_WEBHOOK_BACKOFF_BASE="0.1",
        INBOXGATE_WEBHOOK_BACKOFF_MAX="0.5",
        INBOXGATE_WEBHOOK_TIMEOUT="2",
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


@contextlib.asynccontextmanager
async def cable(server: GatewayProcess, identifier: str) -> AsyncIterator[CableClient]:
    async with CableClient.connect(server.ws_url("/cable"), protocol=cp.EXT_JSON) as client:
        await client.expect(cp.Welcome)
        await subscribe_ok(client, identifier)
        yield client


async def until(client: CableClient, name: str, **match: Any) -> dict[str, Any]:
    """Read events (in order) up to the first ``name`` whose data has ``match``'s values."""
    while True:
        frame = await next_event(client)
        payload = data(frame)
        if event_name(frame) == name and all(payload.get(k) == v for k, v in match.items()):
            return payload


async def wait_hit(receiver: Receiver, what: str, event: str, **match: Any) -> Hit:
    def pick(hits: list[Hit]) -> Hit | None:
        for hit in hits:
            if hit.event == event and all(hit.body.get(k) == v for k, v in match.items()):
                return hit
        return None

    def found(hits: list[Hit]) -> bool:
        return pick(hits) is not None

    hits = await anyio.to_thread.run_sync(receiver.wait_for, what, found)
    hit = pick(hits)
    assert hit is not None
    return hit


async def test_bot_round_trip_and_agent_typing(tmp_path: Path) -> None:
    with Receiver() as receiver, gateway(tmp_path / "gw") as server:
        account_id = int(server.cli("account", "create", "Acme")["id"])
        inbox = server.cli("inbox", "create", "--account", str(account_id), "--name", "Support")
        admin = server.cli(
            "user", "create", "--account", str(account_id), "--email", "ann@acme.test",
            "--name", "Ann", "--role", "administrator",
        )  # fmt: skip
        api = f"/api/v1/accounts/{account_id}"
        public = f"/public/api/v1/inboxes/{inbox['identifier']}"
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            as_admin = {"api_access_token": admin["access_token"]}
            r = await http.post(
                api + "/agent_bots", headers=as_admin,
                json={"name": "Triage", "outgoing_url": receiver.url("/bot")},
            )  # fmt: skip
            assert r.status_code == 200, r.text
            bot = r.json()
            receiver.secrets["/bot"] = bot["secret"]
            as_bot = {"api_access_token": bot["access_token"]}
            r = await http.post(
                f"{api}/inboxes/{inbox['id']}/set_agent_bot", headers=as_admin,
                json={"agent_bot": bot["id"]},
            )  # fmt: skip
            assert r.status_code == 200, r.text

            contact = (await http.post(public + "/contacts", json={"name": "Alice"})).json()
            conversations = f"{public}/contacts/{contact['source_id']}/conversations"
            conversation = (await http.post(conversations, json={})).json()
            assert conversation["status"] == "pending"
            display_id = conversation["id"]
            agent_ident = agent_identifier(admin["pubsub_token"], account_id, int(admin["id"]))
            async with (
                cable(server, contact_identifier(contact["pubsub_token"])) as customer,
                cable(server, agent_ident) as agent,
            ):
                r = await http.post(
                    f"{conversations}/{display_id}/messages", json={"content": "I need a refund"}
                )
                assert r.status_code == 200, r.text

                # The bot hears the customer, signed with its secret.
                hit = await wait_hit(
                    receiver, "the customer's message", "message_created",
                    content="I need a refund",
                )  # fmt: skip
                assert hit.signed and hit.path == "/bot"
                assert hit.body["message_type"] == "incoming"
                assert hit.body["conversation"]["status"] == "pending"
                assert hit.body["conversation"]["id"] == display_id

                # It answers with its own token; the customer's socket gets the answer.
                conversation_api = f"{api}/conversations/{hit.body['conversation']['id']}"
                r = await http.post(
                    conversation_api + "/messages", headers=as_bot,
                    json={"content": "Let me get someone"},
                )  # fmt: skip
                assert r.status_code == 200, r.text
                reply = r.json()
                pushed = await until(customer, "message.created", id=reply["id"])
                assert pushed["content"] == "Let me get someone"
                assert pushed["sender"] == {
                    "id": bot["id"], "name": "Triage", "avatar_url": "", "type": "agent_bot",
                }  # fmt: skip
                assert pushed["sender_type"] == "AgentBot"

                # Handoff: the conversation opens, and the agent's socket says so.
                r = await http.post(
                    conversation_api + "/toggle_status", headers=as_bot, json={"status": "open"}
                )
                assert r.status_code == 200, r.text
                assert r.json()["payload"]["success"] is None
                changed = await until(agent, "conversation.status_changed", id=display_id)
                assert changed["status"] == "open"
                await until(customer, "conversation.status_changed", status="open")
                opened = await wait_hit(
                    receiver, "the handoff", "conversation_status_changed", status="open"
                )
                assert opened.signed

                # The agent types: the customer sees who; a private note's typing stays inside.
                typing = conversation_api + "/toggle_typing_status"
                r = await http.post(typing, headers=as_admin, json={"typing_status": "on"})
                assert r.status_code == 200, r.text
                on = await next_event(customer)
                assert event_name(on) == "conversation.typing_on"
                assert data(on)["user"]["id"] == int(admin["id"])
                assert data(on)["user"]["type"] == "user"
                assert data(on)["is_private"] is False
                assert (await until(agent, "conversation.typing_on"))["is_private"] is False
                r = await http.post(
                    typing, headers=as_admin, json={"typing_status": "on", "is_private": True}
                )
                assert r.status_code == 200
                assert (await until(agent, "conversation.typing_on"))["is_private"] is True
                r = await http.post(
                    conversation_api + "/messages", headers=as_admin, json={"content": "marker"}
                )
                assert r.status_code == 200
                after = await next_event(customer)
                assert (event_name(after), data(after)["content"]) == ("message.created", "marker")

        # Every delivery to the bot was signed; it heard its own reply and the agent's too.
        hits = receiver.snapshot()
        assert hits and all(h.signed and h.path == "/bot" for h in hits)
        assert any(h.event == "conversation_opened" for h in hits)
        said = [h.body["content"] for h in hits if h.event == "message_created"]
        assert said[:2] == ["I need a refund", "Let me get someone"]
