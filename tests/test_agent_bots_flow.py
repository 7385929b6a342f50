"""What an inbox's agent bot changes (reference agent §6), in process: conversations start
pending, every conversation and message event is queued for the bot's ``outgoing_url`` with
its secret (in the transaction of the event), the bot answers as an ``agent_bot`` sender, hands
off with ``toggle_status``, and a bot that cannot be reached hands off by itself."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from gateway.domain import agent_bots as bot_ops
from gateway.domain import outbox
from gateway.domain import provisioning as prov
from gateway.store.records import LoggedEvent
from gateway.store.sql import rows
from tests.admin_helpers import ADMIN_TOKEN, AGENT_TOKEN, account_url, admin, agent, auth
from tests.routes_helpers import Env

pytestmark = pytest.mark.anyio

# ``.invalid`` never resolves: the app's worker fails its one attempt at once (the test clock
# stands still, so no retry comes due).
HOOK = "http://bot.invalid/hook"
UNREACHABLE = "http://127.0.0.1:9/hook"


async def attached_bot(env: Env, url: str = HOOK) -> dict[str, Any]:
    await admin(env)
    await agent(env, inbox_ids=(env.inbox.id,))
    r = await env.client.post(
        account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN),
        json={"name": "Triage", "outgoing_url": url},
    )  # fmt: skip
    bot: dict[str, Any] = r.json()
    r = await env.client.post(
        account_url(env, f"/inboxes/{env.inbox.id}/set_agent_bot"),
        headers=auth(ADMIN_TOKEN), json={"agent_bot": bot["id"]},
    )  # fmt: skip
    assert r.status_code == 200
    return bot


async def bot_deliveries(env: Env) -> list[tuple[str, dict[str, Any]]]:
    found: list[outbox.Delivery] = await env.store.read(outbox.list_deliveries)
    return [(d.event, json.loads(d.body)) for d in found if d.receiver == "agent_bot"]


def contact_events(env: Env, name: str) -> list[dict[str, Any]]:
    """``name`` events logged on contact sessions' streams, decoded."""
    found: list[LoggedEvent] = [
        e for e in env.events if e.name == name and e.stream.startswith("session:")
    ]
    return [json.loads(e.payload)["data"] for e in found]


async def test_bot_sees_the_conversation_and_answers(env: Env) -> None:
    bot = await attached_bot(env)
    contact = await env.contact(name="Alice")
    conversation = await env.conversation(contact["source_id"])
    assert conversation["status"] == "pending"
    display_id = conversation["id"]
    await env.send(contact["source_id"], display_id, content="I need a refund")

    found: list[outbox.Delivery] = await env.store.read(outbox.list_deliveries)
    to_bot = [d for d in found if d.receiver == "agent_bot"]
    assert {(d.url, d.secret) for d in to_bot} == {(HOOK, bot["secret"])}
    assert [d.event for d in to_bot] == ["conversation_created", "message_created"]
    created = json.loads(to_bot[1].body)
    assert (created["event"], created["content"], created["message_type"]) == (
        "message_created", "I need a refund", "incoming",
    )  # fmt: skip
    assert created["conversation"]["status"] == "pending"
    assert created["conversation"]["id"] == display_id
    assert created["sender"]["name"] == "Alice"

    # The bot answers with its own token, as itself.
    token = auth(bot["access_token"])
    r = await env.client.post(
        account_url(env, f"/conversations/{display_id}/messages"), headers=token,
        json={"content": "Pick a topic", "content_type": "input_select",
              "content_attributes": {"items": [{"title": "Refund", "value": "refund"}]}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["sender"] == {
        "id": bot["id"], "name": "Triage", "avatar_url": "", "type": "agent_bot",
    }  # fmt: skip
    assert reply["message_type"] == 1
    [pushed] = [m for m in contact_events(env, "message.created") if m["id"] == reply["id"]]
    assert (pushed["sender_type"], pushed["sender_id"]) == ("AgentBot", bot["id"])
    assert pushed["sender"]["type"] == "agent_bot"
    assert pushed["performer"] == pushed["sender"]
    # The bot hears its own reply too (Chatwoot's bots must filter), sent by an agent_bot.
    event, body = (await bot_deliveries(env))[-1]
    assert event == "message_created" and body["id"] == reply["id"]
    assert body["sender"] == {"id": bot["id"], "name": "Triage", "type": "agent_bot"}
    # A bot's reply is no human's first reply; the contact still waits.
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(ADMIN_TOKEN)
    )
    assert shown.json()["first_reply_created_at"] == 0
    assert shown.json()["waiting_since"] > 0
    assert shown.json()["status"] == "pending"


async def test_handoff_and_back_to_the_bot(env: Env) -> None:
    bot = await attached_bot(env)
    source_id, display_id = await env.session(name="Alice")
    url = account_url(env, f"/conversations/{display_id}/toggle_status")
    r = await env.client.post(url, headers=auth(bot["access_token"]), json={"status": "open"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "meta": {},
        "payload": {"success": None, "conversation_id": display_id, "current_status": "open",
                    "snoozed_until": None},
    }  # fmt: skip
    [changed] = contact_events(env, "conversation.status_changed")
    assert changed["status"] == "open"
    events = [event for event, _ in await bot_deliveries(env)]
    assert events[-2:] == ["conversation_status_changed", "conversation_opened"]
    # Not assigned to anyone: a bot is not an agent taking over.
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(AGENT_TOKEN)
    )
    assert shown.json()["status"] == "open" and "assignee" not in shown.json()["meta"]

    # Resolved, then the contact writes again: back to the bot (pending), not open.
    r = await env.client.post(url, headers=auth(ADMIN_TOKEN), json={"status": "resolved"})
    assert r.json()["payload"]["success"] is True
    await env.send(source_id, display_id, content="one more thing")
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(AGENT_TOKEN)
    )
    assert shown.json()["status"] == "pending"
    assert [event for event, _ in await bot_deliveries(env)][-4:] == [
        "conversation_status_changed", "conversation_resolved", "message_created",
        "conversation_status_changed",
    ]  # fmt: skip


async def test_agent_api_creates_pending_and_blocked_stays_resolved(env: Env) -> None:
    bot = await attached_bot(env)
    contact = await env.contact(name="Alice")
    r = await env.client.post(
        account_url(env, "/conversations"), headers=auth(bot["access_token"]),
        json={"source_id": contact["source_id"], "status": "open",
              "message": {"content": "Hello from the bot"}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    created = r.json()
    assert created["status"] == "pending"  # whatever was asked for (Chatwoot's rule)
    assert created["messages"][0]["sender"]["type"] == "agent_bot"
    assert created["meta"].get("team") is None
    blocked = await env.contact(name="Mallory")
    await env.store.write(_block, blocked["id"])
    r = await env.client.post(
        account_url(env, "/conversations"), headers=auth(ADMIN_TOKEN),
        json={"source_id": blocked["source_id"]},
    )  # fmt: skip
    assert r.json()["status"] == "resolved"


def _block(contact_id: int) -> Any:
    yield from rows("UPDATE contacts SET blocked = TRUE WHERE id = ? RETURNING id", contact_id)


async def settled(env: Env) -> list[outbox.Delivery]:
    """The bot's deliveries once the app's worker has finished with all of them. A delivery is
    enqueued in the transaction of its cause, so none pending means nothing more will come."""
    with anyio.fail_after(20):
        while True:
            found: list[outbox.Delivery] = await env.store.read(outbox.list_deliveries)
            if all(d.status != "pending" for d in found):
                return [d for d in found if d.receiver == "agent_bot"]
            await anyio.sleep(0.02)


async def test_unreachable_bot_hands_off(env: Env) -> None:
    # The app's own worker makes the attempt (a test giving up on a delivery itself would race
    # it for the row). A loopback receiver is refused by the SSRF guard without any network, so
    # the first attempt is final. The API refuses such a URL when it is saved, so it is written
    # straight to the store: a URL saved while private addresses were allowed.
    bot = await attached_bot(env)
    await env.store.write(
        bot_ops.update_bot, bot["id"], bot_ops.BotChanges(outgoing_url=UNREACHABLE), env.clock()
    )
    source_id, display_id = await env.session(name="Alice")
    await env.send(source_id, display_id, content="hello?")
    found = await settled(env)
    [message] = [d for d in found if d.event == "message_created"]
    assert (message.status, message.attempts) == ("dead", 1)
    assert message.last_error is not None and message.last_error.startswith("refused")
    inbox_events = [e for e in env.events if e.stream.startswith("inbox:")]
    changed = [e for e in inbox_events if e.name == "conversation.status_changed"]
    assert [json.loads(e.payload)["data"]["status"] for e in changed] == ["open"]
    activity = [
        json.loads(e.payload)["data"] for e in inbox_events
        if e.name == "message.created" and json.loads(e.payload)["data"]["message_type"] == 2
    ]  # fmt: skip
    assert [a["content"] for a in activity] == [outbox.BOT_FAILED]
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(AGENT_TOKEN)
    )
    assert shown.json()["status"] == "open"

    # Already open: the next failed delivery changes nothing.
    await env.send(source_id, display_id, content="anyone?")
    found = await settled(env)
    assert sum(d.event == "message_created" and d.status == "dead" for d in found) >= 2
    assert [
        e for e in env.events
        if e.name == "conversation.status_changed" and e.stream.startswith("inbox:")
    ] == changed  # fmt: skip
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(AGENT_TOKEN)
    )
    assert shown.json()["status"] == "open"


async def test_detached_inbox_is_back_to_normal(env: Env) -> None:
    await attached_bot(env)
    r = await env.client.post(
        account_url(env, f"/inboxes/{env.inbox.id}/set_agent_bot"),
        headers=auth(ADMIN_TOKEN), json={"agent_bot": None},
    )  # fmt: skip
    assert r.status_code == 200
    source_id, display_id = await env.session(name="Alice")
    await env.send(source_id, display_id, content="hi")
    shown = await env.client.get(
        account_url(env, f"/conversations/{display_id}"), headers=auth(AGENT_TOKEN)
    )
    assert shown.json()["status"] == "open"
    assert await bot_deliveries(env) == []


async def test_agent_typing_status_answers(env: Env) -> None:
    await agent(env, inbox_ids=(env.inbox.id,))
    _source_id, display_id = await env.session(name="Alice")
    url = account_url(env, f"/conversations/{display_id}/toggle_typing_status")
    for body in ({"typing_status": "on"}, {"typing_status": "off", "is_private": True},
                 {"typing_status": "sideways"}, {}):  # fmt: skip
        r = await env.client.post(url, headers=auth(AGENT_TOKEN), json=body)
        assert (r.status_code, r.content) == (200, b""), body
    r = await env.client.post(
        account_url(env, "/conversations/999/toggle_typing_status"), headers=auth(AGENT_TOKEN)
    )
    assert r.status_code == 404
    # An agent who is not a member of the inbox may not type there.
    await env.store.write(
        prov.create_user, env.account_id, "Olga", "olga@acme.test", "agent",
        "outsider-token-0123456789ab", env.clock(),
    )  # fmt: skip
    r = await env.client.post(
        url, headers=auth("outsider-token-0123456789ab"), json={"typing_status": "on"}
    )
    assert r.status_code == 401
