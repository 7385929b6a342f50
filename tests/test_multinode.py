"""Two gateway processes on two ports, sharing PostgreSQL and Redis, behave as one gateway.

* Every realtime event type crosses nodes: what a request on one node causes reaches the
  sockets on the other, for customers and agents, both ways; ``presence.update`` on one node
  counts who is online on the other.
* A client moved from node A to node B mid-stream (the sid taken on A restored on B, then
  history from its last offsets) ends with exactly the events in the log, in order, once.
* Both nodes run webhook workers over one outbox: a loopback receiver gets each delivery once,
  even when retries from both nodes fall due together.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient, contact_identifier
from tests.cable_socket_helpers import Customer, Tenant, event_name, ok, subscribe_ok
from tests.cable_views import SENTINEL, View, contact_path, store_messages
from tests.multinode_helpers import Cluster, cluster
from tests.postgres_helpers import fresh_database_sync
from tests.redis_helpers import redis_server
from tests.server_helpers import GatewayProcess
from tests.webhook_receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WAIT = 15.0
WEBHOOKS = {
    "INBOXGATE_WEBHOOK_ALLOW_PRIVATE": "1",
    "INBOXGATE_WEBHOOK_BACKOFF_BASE": "0.2",
    "INBOXGATE_WEBHOOK_BACKOFF_MAX": "0.5",
    "INBOXGATE_WEBHOOK_MAX_ATTEMPTS": "100",
    "INBOXGATE_WEBHOOK_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("multinode")
    (root / "redis").mkdir()
    with (
        fresh_database_sync() as url,
        redis_server(root / "redis") as redis,
        cluster(root, url, redis.url, **WEBHOOKS) as started,
    ):
        yield started


def fits(value: Any, expected: Any) -> bool:
    """``value`` has everything ``expected`` has (dicts compared item by item, recursively)."""
    if isinstance(expected, dict):
        return isinstance(value, dict) and all(
            k in value and fits(value[k], v) for k, v in expected.items()
        )
    return bool(value == expected)


async def heard(cable: CableClient, name: str, /, **match: Any) -> dict[str, Any]:
    """Read until a ``name`` broadcast whose data has every ``match`` item; returns its data.
    Other frames (pings, other events) are skipped: each check names what must arrive."""
    seen: list[str | None] = []
    try:
        with anyio.fail_after(WAIT):
            while True:
                frame = await cable.recv(WAIT)
                if not isinstance(frame, cp.Broadcast):
                    continue
                data = frame.message.get("data") if isinstance(frame.message, dict) else None
                seen.append(event_name(frame))
                if event_name(frame) == name and isinstance(data, dict) and fits(data, match):
                    return data
    except TimeoutError:
        raise AssertionError(f"{name} {match} never arrived; heard {seen}") from None


class Agent:
    def __init__(self, http: httpx.AsyncClient, tenant: Tenant, user: dict[str, Any]) -> None:
        self.http = http
        self.base = f"/api/v1/accounts/{tenant.account_id}"
        self.headers = {"api_access_token": user["access_token"]}

    async def call(self, node: GatewayProcess, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(
            method, node.url(self.base + path), headers=self.headers, json=body
        )
        return ok(response)


def on(node: GatewayProcess, customer: Customer) -> Customer:
    """The same contact session, its requests sent to ``node``."""
    return Customer(
        http=customer.http, base=node.url(customer.base), source_id=customer.source_id,
        pubsub_token=customer.pubsub_token, id=customer.id,
    )  # fmt: skip


@pytest.mark.anyio
async def test_every_event_type_crosses_nodes(nodes: Cluster) -> None:
    a, b = nodes.a, nodes.b
    tenant = Tenant.create(a)
    async with (
        httpx.AsyncClient(timeout=10.0) as http,
        CableClient.connect(a.ws_url(), protocol=cp.EXT_JSON) as customer_a,
        CableClient.connect(a.ws_url(), protocol=cp.JSON) as admin_a,
        CableClient.connect(b.ws_url(), protocol=cp.EXT_MSGPACK) as agent_b,
    ):
        created = ok(
            await http.post(
                a.url(f"/public/api/v1/inboxes/{tenant.inbox['identifier']}/contacts"),
                json={"name": "Alice"},
            )
        )
        alice = Customer(
            http=http, base=contact_path(tenant.inbox["identifier"], created["source_id"]),
            source_id=created["source_id"], pubsub_token=created["pubsub_token"],
            id=int(created["id"]),
        )  # fmt: skip
        alice_a, alice_b = on(a, alice), on(b, alice)
        admin, agent = Agent(http, tenant, tenant.admin), Agent(http, tenant, tenant.agent)
        for cable, ident in (
            (customer_a, alice.ident()),
            (admin_a, tenant.agent_ident(tenant.admin)),
            (agent_b, tenant.agent_ident(tenant.agent)),
        ):
            await cable.expect(cp.Welcome)
            await subscribe_ok(cable, ident)
        crossed: set[str] = set()

        # The customer opens a conversation and writes on A: the agent on B hears both.
        conv = await alice_a.start_conversation()
        await heard(agent_b, "conversation.created", id=conv)
        hello = await alice_a.say(conv, "hello from A", echo_id="a-1")
        assert (await heard(agent_b, "message.created", id=hello["id"]))["echo_id"] == "a-1"
        crossed |= {"conversation.created", "message.created"}

        # ... and writes on B: the admin and the customer's own socket on A hear it.
        again = await alice_b.say(conv, "hello from B", echo_id="b-1")
        await heard(admin_a, "message.created", id=again["id"])
        await heard(customer_a, "message.created", id=again["id"])

        # Typing: on through A, off through B; the agent on B and the admin on A hear them.
        await alice_a.typing(conv, "on")
        await heard(agent_b, "conversation.typing_on", conversation={"id": conv})
        await alice_b.typing(conv, "off")
        await heard(admin_a, "conversation.typing_off", conversation={"id": conv})
        crossed |= {"conversation.typing_on", "conversation.typing_off"}

        # The agent replies through the API on B: the customer's socket on A gets it.
        reply = await agent.call(
            b, "POST", f"/conversations/{conv}/messages", {"content": "Hi!", "echo_id": "r-1"}
        )
        got = await heard(customer_a, "message.created", id=reply["id"])
        assert (got["content"], got["message_type"]) == ("Hi!", 1)

        # The agent types on B: the customer on A sees it.
        await agent.call(b, "POST", f"/conversations/{conv}/toggle_typing_status",
                         {"typing_status": "on"})  # fmt: skip
        await heard(customer_a, "conversation.typing_on", conversation={"id": conv})

        # The customer reads the reply through B: the reply becomes read (message.updated, to
        # the customer on A) and the agents hear conversation.read (the admin on A).
        await alice_b.seen(conv)
        read = await heard(customer_a, "message.updated", id=reply["id"])
        assert read["status"] == "read"
        await heard(admin_a, "conversation.read", id=conv)
        crossed |= {"message.updated", "conversation.read"}

        # The admin assigns the agent and raises the priority through A: the agent on B hears.
        agent_id = int(tenant.agent["id"])
        await admin.call(a, "POST", f"/conversations/{conv}/assignments", {"assignee_id": agent_id})
        assigned = await heard(agent_b, "assignee.changed", id=conv)
        assert assigned["meta"]["assignee"]["id"] == agent_id
        await admin.call(a, "POST", f"/conversations/{conv}/toggle_priority", {"priority": "high"})
        updated = await heard(agent_b, "conversation.updated", id=conv, priority="high")
        assert updated["id"] == conv
        await heard(customer_a, "conversation.updated", id=conv, priority="high")
        crossed |= {"assignee.changed", "conversation.updated"}

        # Contacts: created through A heard on B, updated through B heard on A.
        bob = await admin.call(a, "POST", "/contacts", {"name": "Bob"})
        bob_id = bob["payload"]["contact"]["id"]
        await heard(agent_b, "contact.created", id=bob_id)
        await agent.call(b, "PATCH", f"/contacts/{alice.id}", {"name": "Alice Liddell"})
        await heard(admin_a, "contact.updated", id=alice.id, name="Alice Liddell")
        crossed |= {"contact.created", "contact.updated"}

        # The agent resolves on B: the customer on A hears the status change.
        await agent.call(b, "POST", f"/conversations/{conv}/toggle_status", {"status": "resolved"})
        await heard(customer_a, "conversation.status_changed", id=conv, status="resolved")
        crossed.add("conversation.status_changed")

        # Presence: the agent on B asks; the customer and the admin were seen on A.
        await agent_b.send(
            cp.Perform(
                identifier=tenant.agent_ident(tenant.agent),
                data=json.dumps({"action": "update_presence"}),
            )
        )
        presence = await heard(agent_b, "presence.update")
        assert str(alice.id) in presence["contacts"], presence
        assert str(tenant.admin["id"]) in presence["users"], presence
        assert str(agent_id) in presence["users"], presence
        crossed.add("presence.update")

    assert crossed == {
        "conversation.created", "conversation.status_changed", "conversation.updated",
        "conversation.read", "conversation.typing_on", "conversation.typing_off",
        "message.created", "message.updated", "assignee.changed", "contact.created",
        "contact.updated", "presence.update",
    }  # fmt: skip


@pytest.mark.anyio
async def test_a_client_moved_to_another_node_misses_and_repeats_nothing(nodes: Cluster) -> None:
    a, b = nodes.a, nodes.b
    inbox = a.provision_inbox(name="Move")["identifier"]
    async with httpx.AsyncClient(timeout=10.0) as http:
        contact = ok(await http.post(a.url(f"/public/api/v1/inboxes/{inbox}/contacts"), json={}))
        api = contact_path(inbox, contact["source_id"])
        view = View(contact_identifier(contact["pubsub_token"]))
        posted = 0

        async def post(node: GatewayProcess, conv: int) -> None:
            nonlocal posted
            posted += 1
            url = node.url(f"{api}/conversations/{conv}/messages")
            ok(await http.post(url, json={"content": f"m{posted}", "echo_id": f"e{posted}"}))

        async def read_until_all(cable: CableClient, conversations: list[int]) -> None:
            stored = await anyio.to_thread.run_sync(
                store_messages, a, inbox, contact["source_id"], conversations
            )
            with anyio.fail_after(WAIT):
                while {m["id"] for m in view.created()} < {m["id"] for m in stored}:
                    frame = await cable.recv(WAIT)
                    if isinstance(frame, cp.Broadcast):
                        view.record(frame)

        async with CableClient.connect(a.ws_url(), protocol=cp.EXT_JSON) as on_a:
            welcome = await on_a.expect(cp.Welcome)
            assert isinstance(welcome.sid, str)
            await on_a.subscribe(view.identifier)
            await on_a.expect(cp.ConfirmSubscription)
            conv = ok(await http.post(a.url(f"{api}/conversations"), json={}))["id"]
            for i in range(6):
                await post((a, b)[i % 2], conv)
            await read_until_all(on_a, [conv])
            on_a.ws.transport.abort()  # the network drops; the client goes elsewhere

        # Meanwhile, on both nodes: more messages, a resolve, a second conversation.
        for i in range(4):
            await post((b, a)[i % 2], conv)
        ok(await http.post(b.url(f"{api}/conversations/{conv}/toggle_status")))
        second = ok(await http.post(a.url(f"{api}/conversations"), json={}))["id"]
        await post(b, second)

        async with CableClient.connect(b.ws_url(f"/cable?sid={welcome.sid}"),
                                       protocol=cp.EXT_JSON) as on_b:  # fmt: skip
            restored = await on_b.expect(cp.Welcome)
            assert restored.restored is True and restored.restored_ids == [view.identifier]
            await on_b.send(cp.History(identifier=view.identifier, history=view.history()))
            with anyio.fail_after(WAIT):  # the replay, then the confirm
                while not isinstance(frame := await on_b.recv(WAIT), cp.ConfirmHistory):
                    assert isinstance(frame, cp.Broadcast | cp.Ping), frame
                    if isinstance(frame, cp.Broadcast):
                        view.record(frame)
            assert len(view.created()) == 11  # six before the move, five while away
            # Live again, from both nodes.
            for i in range(4):
                await post((a, b)[i % 2], second)
            await read_until_all(on_b, [conv, second])
            sentinel = {"content": SENTINEL, "echo_id": "sentinel"}
            ok(await http.post(a.url(f"{api}/conversations/{second}/messages"), json=sentinel))
            with anyio.fail_after(WAIT):  # anything repeated comes before it
                while not view.received(SENTINEL):
                    if isinstance(frame := await on_b.recv(WAIT), cp.Broadcast):
                        view.record(frame)

        stored = await anyio.to_thread.run_sync(
            store_messages, b, inbox, contact["source_id"], [conv, second]
        )
        assert len([m for m in stored if m["content"].startswith("m")]) == posted == 15
        view.check_against(stored, who="the moved client")
        events = [f.message["event"] for f in view.logged]
        assert events.count("conversation.created") == 2
        assert events.count("conversation.status_changed") == 1  # resolved while away


def test_webhook_workers_on_both_nodes_send_each_delivery_once(nodes: Cluster) -> None:
    a, b = nodes.a, nodes.b
    with Receiver() as receiver:
        account_id = int(a.cli("account", "create", "Hooks")["id"])
        inbox = a.cli(
            "inbox", "create", "--account", str(account_id), "--name", "Support",
            "--webhook-url", receiver.url("/inbox"),
        )  # fmt: skip
        admin = a.cli(
            "user", "create", "--account", str(account_id), "--email", "hooks@acme.test",
            "--name", "Ann", "--role", "administrator",
        )  # fmt: skip
        headers = {"api_access_token": admin["access_token"]}
        agent_api = f"/api/v1/accounts/{account_id}"
        public = f"/public/api/v1/inboxes/{inbox['identifier']}"
        with httpx.Client(timeout=10.0, headers=headers) as http:
            r = http.post(
                b.url(agent_api + "/webhooks"),
                json={"url": receiver.url("/account"), "subscriptions": ["message_created"]},
            )
            receiver.secrets["/account"] = ok(r)["payload"]["webhook"]["secret"]
            receiver.secrets["/inbox"] = ok(
                http.get(a.url(f"{agent_api}/inboxes/{inbox['id']}/webhook_secret"))
            )["secret"]
            source_id = ok(http.post(a.url(public + "/contacts"), json={}))["source_id"]
            conv = f"{public}/contacts/{source_id}/conversations"
            display_id = ok(http.post(b.url(conv)))["id"]
            messages = f"{conv}/{display_id}/messages"
            # The receiver fails the first attempts: retries of both nodes fall due together.
            receiver.down = True
            sent = [f"hook {i}" for i in range(20)]
            for i, content in enumerate(sent[:10]):
                ok(http.post((a, b)[i % 2].url(messages), json={"content": content}))
            receiver.wait_for("failed attempts", lambda h: sum(x.status == 503 for x in h) >= 10)
            receiver.down = False
            for i, content in enumerate(sent[10:]):
                ok(http.post((b, a)[i % 2].url(messages), json={"content": content}))

            def all_delivered(hits: list[Any]) -> bool:  # repeats are counted below
                return all(
                    {
                        h.body.get("content")
                        for h in hits
                        if h.status == 200 and h.path == path and h.event == "message_created"
                    }
                    >= set(sent)
                    for path in ("/account", "/inbox")
                )

            receiver.wait_for("every message_created on both receivers", all_delivered)
        time.sleep(1.5)  # a second send of anything would arrive now (leases, polls)
        delivered = receiver.delivered()
        per_id: dict[str, int] = {}
        for hit in delivered:
            per_id[hit.delivery] = per_id.get(hit.delivery, 0) + 1
        assert set(per_id.values()) == {1}, per_id
        assert all(h.signed for h in receiver.snapshot())
        for path in ("/account", "/inbox"):
            got = [h.body["content"] for h in delivered
                   if h.path == path and h.event == "message_created"]  # fmt: skip
            assert sorted(got) == sorted(sent), (path, got)  # once each
        assert [h.event for h in delivered if h.path == "/account"] == ["message_created"] * 20


def test_attachments_are_served_where_their_data_dir_is(nodes: Cluster, tmp_path: Path) -> None:
    """Files live in the receiving node's ``INBOXGATE_DATA_DIR``: another node serves the
    signed link only when it shares that directory (shared storage)."""
    a, b = nodes.a, nodes.b
    inbox = a.provision_inbox(name="Files")["identifier"]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    with httpx.Client(timeout=10.0) as http:
        contact = ok(http.post(a.url(f"/public/api/v1/inboxes/{inbox}/contacts"), json={}))
        api = f"{contact_path(inbox, contact['source_id'])}/conversations"
        conv = ok(http.post(a.url(api), json={}))["id"]
        sent = ok(
            http.post(
                a.url(f"{api}/{conv}/messages"),
                files=[("attachments[]", ("pixel.png", png, "image/png"))],
            )
        )
        path = httpx.URL(sent["attachments"][0]["data_url"]).raw_path.decode()
        assert http.get(a.url(path)).content == png
        assert http.get(b.url(path)).status_code == 404  # B has its own data dir
        # A third node sharing A's data directory (as an NFS or EFS mount would) serves it.
        shared = GatewayProcess(tmp_path / "node-c", env=a.env)
        with shared:
            download = http.get(shared.url(path))
            assert (download.status_code, download.content) == (200, png)
