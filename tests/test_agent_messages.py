"""Agent API messages (reference agent §3.4, §2.2; seed 002): create every type and content
type, private notes, who hears what, the list windows, delete, delivery status."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from client_sdk import protocol as p
from tests.agent_helpers import NOT_FOUND, Staff, customer_conversation, make_staff, streams_of
from tests.routes_helpers import ISO, T0, Env, EnvFactory, attachment_files

pytestmark = pytest.mark.anyio

# Every field seed 002's response lists.
SEED_002_KEYS = {
    "id", "content", "inbox_id", "conversation_id", "message_type", "content_type", "status",
    "content_attributes", "created_at", "private", "source_id", "sender", "created_at_exact",
}  # fmt: skip
SEED_002_SENDER = {
    "id", "name", "available_name", "email", "avatar_url", "logo_user_url", "type",
    "availability_status", "thumbnail",
}  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
async def staff(env: Env) -> Staff:
    return await make_staff(env)


def events_named(env: Env, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.stream, msgspec.json.decode(e.payload)["data"]) for e in env.events if e.name == name
    ]


async def test_seed_002_create_with_the_seed_request(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    body = {  # the seed's example, as given
        "content": "string", "message_type": "outgoing", "private": False,
        "content_type": "text", "content_attributes": {},
    }  # fmt: skip
    created = await staff.agent_api.post(f"/conversations/{cid}/messages", json=body)
    assert set(created) == SEED_002_KEYS
    assert set(created["sender"]) == SEED_002_SENDER
    assert created == {
        "id": created["id"], "content": "string", "inbox_id": env.inbox.id,
        "conversation_id": cid, "message_type": 1, "content_type": "text", "status": "sent",
        "content_attributes": {}, "created_at": int(T0), "private": False, "source_id": None,
        "sender": {"type": "user", "id": staff.agent.id, "name": "Bob", "available_name": "Bob",
                   "email": "bob@acme.test", "avatar_url": "", "logo_user_url": "",
                   "availability_status": "online", "thumbnail": ""},
        "created_at_exact": "2026-01-10T12:00:00.000Z",
    }  # fmt: skip
    assert ISO.match(created["created_at_exact"])
    p.agent_message_decoder.decode(msgspec.json.encode(created))


async def test_a_reply_reaches_the_customer(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    created = await staff.agent_api.post(
        f"/conversations/{cid}/messages", json={"content": "Hi Alice", "echo_id": "tmp-1"}
    )
    assert created["echo_id"] == "tmp-1"  # the agent API's response echoes it
    [(inbox_stream, to_agents), (session_stream, to_customer)] = events_named(
        env, "message.created"
    )
    assert (inbox_stream, session_stream) == (f"inbox:{env.inbox.id}", "session:1")
    assert to_agents == to_customer
    assert (to_customer["content"], to_customer["message_type"]) == ("Hi Alice", 1)
    assert to_customer["echo_id"] == "tmp-1" and to_customer["sender"]["type"] == "user"
    assert to_customer["performer"]["id"] == staff.agent.id
    # The first reply is noted for the agents, and the conversation stops waiting.
    assert streams_of(env.events, "first.reply.created") == [inbox_stream]
    assert streams_of(env.events, "conversation.updated") == [inbox_stream, session_stream]
    # The customer sees it through the public API too (echo_id not stored: not there).
    public = await env.messages(contact["source_id"], cid)
    assert public[-1]["content"] == "Hi Alice" and "echo_id" not in public[-1]
    assert public[-1]["sender"]["type"] == "user"


async def test_private_notes_reach_agents_only(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    note = await staff.agent_api.post(
        f"/conversations/{cid}/messages", json={"content": "VIP customer", "private": True}
    )
    assert note["private"] is True and note["message_type"] == 1
    assert streams_of(env.events, "message.created") == [f"inbox:{env.inbox.id}"]
    assert streams_of(env.events, "first.reply.created") == []  # a note is no reply
    assert await env.messages(contact["source_id"], cid) == []
    # Agents see it in the list (unless they filter internal messages).
    listed = await staff.admin_api.get(f"/conversations/{cid}/messages")
    assert [m["content"] for m in listed["payload"]] == ["VIP customer"]
    internal = await staff.admin_api.get(
        f"/conversations/{cid}/messages", params={"filter_internal_messages": "true"}
    )
    assert internal["payload"] == []
    # Deleting the note tells the agents only.
    await staff.agent_api.ok("DELETE", f"/conversations/{cid}/messages/{note['id']}")
    assert streams_of(env.events, "message.updated") == [f"inbox:{env.inbox.id}"]


async def test_message_types_and_senders(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    url = f"/conversations/{cid}/messages"
    await api.post(url, json={"content": "x"})
    await api.post(f"/conversations/{cid}/toggle_status", json={"status": "resolved"})
    incoming = await api.post(url, json={"content": "from the CRM", "message_type": "incoming"})
    # Every type but outgoing is the contact's; an incoming message reopens.
    assert incoming["message_type"] == 0 and incoming["sender"]["type"] == "contact"
    assert incoming["sender"]["id"] == contact["id"]
    assert (await api.get(f"/conversations/{cid}"))["status"] == "open"
    activity = await api.post(url, json={"content": "note", "message_type": "activity"})
    assert activity["message_type"] == 2
    assert ("session:1", activity["id"]) not in [
        (s, d["id"]) for s, d in events_named(env, "message.created")
    ]  # activity never reaches customers
    template = await api.post(url, json={"content": "Hi", "message_type": "template"})
    assert template["message_type"] == 3 and template["sender"]["type"] == "contact"
    r = await api.request("POST", url, json={"content": "?", "message_type": "broadcast"})
    assert (r.status_code, r.json()) == (422, {"error": "'broadcast' is not a valid message_type"})


@pytest.mark.parametrize(
    ("content_type", "attributes"),
    [
        ("input_select", {"items": [{"title": "Yes", "value": "yes"},
                                    {"title": "No", "value": "no"}]}),
        ("cards", {"items": [{"title": "Acme Shoes 2.0", "description": "Move with Acme",
                              "media_url": "https://example.com/shoe.jpg",
                              "actions": [{"type": "link", "text": "View More",
                                           "uri": "https://example.com"},
                                          {"type": "postback", "text": "Add to cart",
                                           "payload": "ITEM_SELECTED"}]}]}),
        ("form", {"items": [{"name": "email", "type": "email", "label": "Email",
                             "placeholder": "you@example.com", "required": "required",
                             "pattern": "^.+@.+$", "pattern_error": "An e-mail"},
                            {"name": "food", "type": "select", "label": "Pick",
                             "options": [{"label": "Pasta", "value": "Pasta"}]}]}),
        ("article", {"items": [{"title": "Acme Hardware", "description": "Reimagined",
                                "link": "http://example.com"}]}),
        ("input_csat", {"display_type": "star"}),
        ("input_email", {}),
    ],
)  # fmt: skip
async def test_interactive_content_types(
    env: Env, staff: Staff, content_type: str, attributes: dict[str, Any]
) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    created = await staff.agent_api.post(
        f"/conversations/{cid}/messages",
        json={"content": "Pick one", "content_type": content_type,
              "content_attributes": attributes},
    )  # fmt: skip
    assert (created["content_type"], created["content_attributes"]) == (content_type, attributes)
    [public] = await env.messages(contact["source_id"], cid)
    assert public["content_attributes"] == attributes


async def test_content_attributes_as_a_json_string(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    created = await staff.agent_api.post(
        f"/conversations/{cid}/messages",
        data={"content_type": "input_select",
              "content_attributes": '{"items": [{"title": "A", "value": "a"}]}'},
    )  # fmt: skip
    assert created["content_attributes"] == {"items": [{"title": "A", "value": "a"}]}
    assert created["content"] is None  # content is not required


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"content_type": "input_select"},
         "Validation failed: Content attributes At least one item is required."),
        ({"content_type": "input_select", "content_attributes": {"items": ["a"]}},
         "Validation failed: Content attributes Items should be a hash."),
        ({"content_type": "input_select",
          "content_attributes": {"items": [{"title": "A", "value": "a", "color": "red"}]}},
         "Validation failed: Content attributes contains invalid keys for items : [:color]"),
        ({"content_type": "cards", "content_attributes": {"items": [{"title": "A"}]}},
         "Validation failed: Content attributes contains items missing actions"),
        ({"content_type": "cards",
          "content_attributes": {"items": [{"title": "A", "actions": [{"href": "x"}]}]}},
         "Validation failed: Content attributes contains invalid keys for actions:  [:href]"),
        ({"content_type": "video"}, "'video' is not a valid content_type"),
        ({"content": "x" * 150_001},
         "Validation failed: Content is too long (maximum is 150000 characters)"),
        ({"content_attributes": "{nope"}, "unexpected token at '{nope'"),
        ({"private": "maybe"}, "Private Expected `bool | null`, got `str`"),
    ],
)  # fmt: skip
async def test_create_errors_are_422_error(
    env: Env, staff: Staff, body: dict[str, Any], error: str
) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    r = await staff.agent_api.request("POST", f"/conversations/{cid}/messages", json=body)
    assert (r.status_code, r.json()) == (422, {"error": error})


async def test_flood_guard(make_env: EnvFactory) -> None:
    async with make_env(messages_per_minute=2) as env:
        staff = await make_staff(env)
        _contact, cid = await customer_conversation(env, name="Alice")
        url = f"/conversations/{cid}/messages"
        await staff.agent_api.post(url, json={"content": "1"})
        await staff.agent_api.post(url, json={"content": "2"})
        r = await staff.agent_api.request("POST", url, json={"content": "3"})
        assert (r.status_code, r.json()) == (422, {"error": "Validation failed: Too many messages"})
        # "1" and "2" fill the minute; the first leaves it 60 s after it was sent (the clock
        # has not moved)
        assert r.headers["retry-after"] == "60"


async def test_attachments(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    created = await staff.agent_api.post(
        f"/conversations/{cid}/messages",
        data={"content": "See attached"},
        files=[("attachments[]", ("shot.png", PNG, "image/png"))],
    )
    [att] = created["attachments"]
    assert (att["file_type"], att["extension"], att["file_size"]) == ("image", "png", len(PNG))
    assert len(attachment_files(env.settings)) == 1
    fetched = await env.client.get(att["data_url"])
    assert fetched.content == PNG
    # Deleting the message drops its files.
    deleted = await staff.agent_api.ok("DELETE", f"/conversations/{cid}/messages/{created['id']}")
    assert "attachments" not in deleted
    assert attachment_files(env.settings) == []


async def test_delete_shows_this_message_was_deleted(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice")
    sent = await staff.agent_api.post(
        f"/conversations/{cid}/messages",
        json={"content": "Pick", "content_type": "input_select",
              "content_attributes": {"items": [{"title": "A", "value": "a"}]}},
    )  # fmt: skip
    deleted = await staff.admin_api.ok("DELETE", f"/conversations/{cid}/messages/{sent['id']}")
    assert (deleted["id"], deleted["content"], deleted["content_type"]) == (
        sent["id"], "This message was deleted", "text",
    )  # fmt: skip
    assert deleted["content_attributes"] == {"deleted": True}
    [(agents, _), (customer, data)] = events_named(env, "message.updated")
    assert (agents, customer) == (f"inbox:{env.inbox.id}", "session:1")
    assert (data["content"], data["content_attributes"]) == (
        "This message was deleted", {"deleted": True},
    )  # fmt: skip
    assert data["previous_changes"]["content"] == ["Pick", "This message was deleted"]
    assert data["performer"]["id"] == staff.admin.id
    [public] = await env.messages(contact["source_id"], cid)
    assert public["content"] == "This message was deleted"
    r = await staff.admin_api.request("DELETE", f"/conversations/{cid}/messages/999")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_delivery_status(env: Env, staff: Staff) -> None:
    _contact, cid = await customer_conversation(env, name="Alice")
    api = staff.agent_api
    sent = await api.post(f"/conversations/{cid}/messages", json={"content": "hi"})
    url = f"/conversations/{cid}/messages/{sent['id']}"
    assert (await api.ok("PATCH", url, json={"status": "read"}))["status"] == "read"
    assert (await api.ok("PATCH", url, json={"status": "delivered"}))["status"] == "read"
    assert (await api.ok("PATCH", url, json={"status": "bogus"}))["status"] == "read"
    failed = await api.ok("PUT", url, json={"status": "failed", "external_error": "no route"})
    assert failed["status"] == "failed"
    assert failed["content_attributes"] == {"external_error": "no route"}
    assert len(events_named(env, "message.updated")) == 4  # read, failed: agents + customer


async def test_list_windows(env: Env, staff: Staff) -> None:
    contact, cid = await customer_conversation(env, name="Alice", email="alice@example.com")
    ids = [(await env.send(contact["source_id"], cid, content=str(i)))["id"] for i in range(25)]
    api = staff.agent_api
    url = f"/conversations/{cid}/messages"
    latest = await api.get(url)
    assert [m["id"] for m in latest["payload"]] == ids[-20:]
    assert latest["meta"] == {
        "labels": [], "additional_attributes": {},
        "contact": {"type": "contact", "additional_attributes": {}, "custom_attributes": {},
                    "email": "alice@example.com", "id": contact["id"], "identifier": None,
                    "name": "Alice", "phone_number": None, "thumbnail": "", "blocked": False},
        "agent_last_seen_at": None, "assignee_last_seen_at": None,
    }  # fmt: skip
    assert [m["id"] for m in (await api.get(url, params={"before": ids[5]}))["payload"]] == ids[:5]
    after = await api.get(url, params={"after": ids[20]})
    assert [m["id"] for m in after["payload"]] == ids[21:]
    between = await api.get(url, params={"after": ids[2], "before": ids[6]})
    assert [m["id"] for m in between["payload"]] == ids[2:6]
    r = await api.request("GET", url, params={"before": "x"})
    assert r.status_code == 422
