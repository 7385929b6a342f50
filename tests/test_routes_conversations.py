"""Public API: conversations (§3.5-3.10): list, create, show, resolve (+ CSAT), typing, seen."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.services.conversations import SHORT_CONVERSATION
from tests.routes_helpers import (
    CONTACT_RECORD_KEYS,
    CONVERSATION_KEYS,
    MESSAGE_KEYS,
    NOT_FOUND,
    T0,
    Env,
    EnvFactory,
)

pytestmark = pytest.mark.anyio


async def _list(env: Env, source_id: str) -> list[dict[str, Any]]:
    r = await env.client.get(env.contact_url(source_id) + "/conversations")
    assert r.status_code == 200
    body: list[dict[str, Any]] = r.json()
    return body


# -- 3.6 create -------------------------------------------------------------------------------


async def test_create_conversation_shape(env: Env) -> None:
    contact = await env.contact(name="Alice", email="alice@example.com")
    r = await env.client.post(env.contact_url(contact["source_id"]) + "/conversations")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == CONVERSATION_KEYS
    assert body["id"] == 1
    assert body["status"] == "open"
    assert body["messages"] == []
    assert body["inbox_id"] == env.inbox.id
    assert (body["contact_last_seen_at"], body["agent_last_seen_at"]) == (0, 0)
    assert len(body["uuid"]) == 36
    assert set(body["contact"]) == CONTACT_RECORD_KEYS
    assert body["contact"]["id"] == contact["id"]
    assert body["contact"]["email"] == "alice@example.com"


async def test_display_ids_are_per_account_sequence(env: Env) -> None:
    other = await env.new_inbox(name="Second")
    a = await env.contact()
    b = await env.contact(other)
    ids = [
        (await env.conversation(a["source_id"]))["id"],
        (await env.conversation(b["source_id"], other))["id"],
        (await env.conversation(a["source_id"]))["id"],
    ]
    assert ids == [1, 2, 3]


async def test_create_only_takes_custom_attributes(env: Env) -> None:
    contact = await env.contact()
    body = {"custom_attributes": {"order": "A-1"}, "status": "resolved", "assignee_id": 3}
    r = await env.client.post(env.contact_url(contact["source_id"]) + "/conversations", json=body)
    assert r.status_code == 200
    assert r.json()["status"] == "open"


@pytest.mark.parametrize(
    "custom, message",
    [
        ({"note": "n" * 1501}, "Custom attributes note length should be < 1500"),
        ({"big": 10_000_000_000}, "Custom attributes big value should be < 9999999999"),
        ({"neg": -10_000_000_000}, "Custom attributes neg value should be < 9999999999"),
    ],
)
async def test_create_custom_attribute_limits_422(
    env: Env, custom: dict[str, Any], message: str
) -> None:
    contact = await env.contact()
    r = await env.client.post(
        env.contact_url(contact["source_id"]) + "/conversations",
        json={"custom_attributes": custom},
    )
    assert r.status_code == 422
    assert r.json() == {"message": message, "attributes": ["custom_attributes"]}


async def test_create_custom_attributes_wrong_type_422(env: Env) -> None:
    contact = await env.contact()
    r = await env.client.post(
        env.contact_url(contact["source_id"]) + "/conversations",
        json={"custom_attributes": ["a"]},
    )
    assert r.status_code == 422
    assert r.json()["attributes"] == ["custom_attributes"]


async def test_create_for_unknown_source_id_is_404(env: Env) -> None:
    r = await env.client.post(env.contact_url("nobody") + "/conversations", json={})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_lock_to_single_conversation(make_env: EnvFactory) -> None:
    async with make_env(inbox={"lock_to_single_conversation": True}) as env:
        contact = await env.contact()
        first = await env.conversation(contact["source_id"])
        await env.send(contact["source_id"], first["id"], content="hi")
        second = await env.conversation(contact["source_id"])
        assert second["id"] == first["id"]
        assert second["uuid"] == first["uuid"]
        assert [m["content"] for m in second["messages"]] == ["hi"]
        # another session (device) of the same contact gets its own conversation
        other = await env.contact(source_id="device-2")
        assert (await env.conversation(other["source_id"]))["id"] != first["id"]


async def test_without_lock_every_create_is_new(env: Env) -> None:
    contact = await env.contact()
    a = await env.conversation(contact["source_id"])
    b = await env.conversation(contact["source_id"])
    assert a["id"] != b["id"]


# -- 3.5 list / 3.7 show ----------------------------------------------------------------------


async def test_list_is_a_bare_array(env: Env) -> None:
    contact = await env.contact()
    assert await _list(env, contact["source_id"]) == []
    a = await env.conversation(contact["source_id"])
    await env.send(contact["source_id"], a["id"], content="hello")
    b = await env.conversation(contact["source_id"])
    listed = await _list(env, contact["source_id"])
    assert [c["id"] for c in listed] == [a["id"], b["id"]]
    assert all(set(c) == CONVERSATION_KEYS for c in listed)
    assert [m["content"] for m in listed[0]["messages"]] == ["hello"]
    assert set(listed[0]["messages"][0]) == MESSAGE_KEYS | {"sender"}


async def test_unverified_session_sees_only_its_conversations(env: Env) -> None:
    proof = {"identifier": "u-1", "identifier_hash": env.hash("u-1")}
    one = await env.contact(**proof)
    conv = await env.conversation(one["source_id"])
    # the same contact, through a session an agent made for it: not verified
    two = await env.contact(identifier="u-1")
    assert two["id"] != one["id"]
    assert await _list(env, two["source_id"]) == []
    for suffix in ("", "/toggle_status", "/toggle_typing", "/update_last_seen", "/messages"):
        method = "GET" if suffix in ("", "/messages") else "POST"
        r = await env.client.request(method, env.conv_url(two["source_id"], conv["id"]) + suffix)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), suffix
    r = await env.client.post(
        env.conv_url(two["source_id"], conv["id"]) + "/messages", json={"content": "x"}
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_verified_session_sees_all_conversations_of_contact(env: Env) -> None:
    other_inbox = await env.new_inbox(name="Email")
    one = await env.contact(identifier="u-2", identifier_hash=env.hash("u-2"))
    c1 = await env.conversation(one["source_id"])
    elsewhere = await env.contact(
        other_inbox, identifier="u-2", identifier_hash=env.hash("u-2", other_inbox)
    )
    c2 = await env.conversation(elsewhere["source_id"], other_inbox)
    verified = await env.contact(identifier="u-2", identifier_hash=env.hash("u-2"))
    c3 = await env.conversation(verified["source_id"])
    listed = await _list(env, verified["source_id"])
    assert [c["id"] for c in listed] == [c1["id"], c2["id"], c3["id"]]
    r = await env.client.get(env.conv_url(verified["source_id"], c2["id"]))
    assert r.status_code == 200
    assert r.json()["inbox_id"] == other_inbox.id
    r = await env.client.get(env.conv_url(verified["source_id"], c2["id"]) + "/messages")
    assert r.status_code == 200
    # a conversation of another contact stays invisible
    stranger = await env.contact()
    c4 = await env.conversation(stranger["source_id"])
    r = await env.client.get(env.conv_url(verified["source_id"], c4["id"]))
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_show_conversation(env: Env) -> None:
    source_id, cid = await env.session(name="Alice")
    created = (await _list(env, source_id))[0]
    r = await env.client.get(env.conv_url(source_id, cid))
    assert r.status_code == 200
    assert r.json() == created


@pytest.mark.parametrize("extra", [0, 1])
async def test_show_conversation_of_any_length(env: Env, extra: int) -> None:
    """Up to SHORT_CONVERSATION messages, a conversation is read and rendered on the loop;
    a longer one on a reader's snapshot: every message, the same shape either way."""
    source_id, cid = await env.session(name="Alice")
    count = SHORT_CONVERSATION + extra
    for i in range(count):
        await env.send(source_id, cid, content=f"m{i}")
    listed = (await _list(env, source_id))[0]
    r = await env.client.get(env.conv_url(source_id, cid))
    assert r.status_code == 200
    assert r.json() == listed
    shown = r.json()["messages"]
    assert [m["content"] for m in shown] == [f"m{i}" for i in range(count)]
    assert {m["sender"]["name"] for m in shown} == {"Alice"}


@pytest.mark.parametrize("conversation_id", ["999", "abc", "-1", "1.5", "99999999999999999999999"])
async def test_show_unknown_or_non_numeric_conversation_is_404(
    env: Env, conversation_id: str
) -> None:
    source_id, _cid = await env.session()
    for suffix, method in [
        ("", "GET"),
        ("/toggle_status", "POST"),
        ("/toggle_typing", "POST"),
        ("/update_last_seen", "POST"),
        ("/messages", "GET"),
        ("/messages", "POST"),
        ("/messages/1", "PATCH"),
    ]:
        r = await env.client.request(method, env.conv_url(source_id, conversation_id) + suffix)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (suffix, method)


async def test_undeclared_conversation_methods_are_404(env: Env) -> None:
    source_id, cid = await env.session()
    for method in ("PATCH", "PUT", "DELETE"):
        r = await env.client.request(method, env.conv_url(source_id, cid))
        assert (r.status_code, r.json()) == (404, NOT_FOUND), method
    r = await env.client.get(env.conv_url(source_id, cid) + "/toggle_status")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


# -- 3.8 toggle_status ------------------------------------------------------------------------


async def test_toggle_status_resolves_and_is_idempotent(env: Env) -> None:
    source_id, cid = await env.session(name="Alice")
    await env.send(source_id, cid, content="help")
    url = env.conv_url(source_id, cid) + "/toggle_status"
    r = await env.client.post(url)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == CONVERSATION_KEYS
    assert (body["id"], body["status"]) == (cid, "resolved")
    # the "resolved by" activity message is never shown to the customer
    assert [m["content"] for m in body["messages"]] == ["help"]
    again = await env.client.post(url)
    assert again.status_code == 200
    assert again.json()["status"] == "resolved"
    assert again.json()["messages"] == body["messages"]
    shown = (await env.client.get(env.conv_url(source_id, cid))).json()
    assert shown["status"] == "resolved"


async def test_resolve_without_csat_creates_no_survey(env: Env) -> None:
    source_id, cid = await env.session()
    await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
    assert await env.messages(source_id, cid) == []


async def test_resolve_with_csat_sends_survey_once(make_env: EnvFactory) -> None:
    async with make_env(inbox={"csat_survey_enabled": True}) as env:
        source_id, cid = await env.session()
        await env.send(source_id, cid, content="help")
        r = await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
        assert r.status_code == 200
        survey = r.json()["messages"][-1]
        assert survey == {
            "id": survey["id"],
            "content": "Please rate the conversation",
            "message_type": 3,
            "content_type": "input_csat",
            "content_attributes": {"display_type": "emoji"},
            "created_at": int(T0),
            "conversation_id": cid,
        }
        # reopen by a new message, resolve again: still one survey per conversation
        await env.send(source_id, cid, content="again")
        await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
        listed = await env.messages(source_id, cid)
        assert [m["content_type"] for m in listed] == ["text", "input_csat", "text"]


async def test_csat_survey_uses_inbox_config(make_env: EnvFactory) -> None:
    inbox = {"csat_survey_enabled": True, "csat_message": "Rate us", "csat_display_type": "star"}
    async with make_env(inbox=inbox) as env:
        source_id, cid = await env.session()
        body = (await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")).json()
        survey = body["messages"][-1]
        assert (survey["content"], survey["content_attributes"]) == (
            "Rate us",
            {"display_type": "star"},
        )


async def test_csat_not_sent_outside_reply_window(make_env: EnvFactory) -> None:
    inbox = {"csat_survey_enabled": True, "reply_time_window_hours": 1}
    async with make_env(inbox=inbox) as env:
        source_id, cid = await env.session()
        await env.send(source_id, cid, content="hi")
        env.clock.advance(2 * 3600)
        await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
        # only an (invisible) activity message was created
        assert [m["content"] for m in await env.messages(source_id, cid)] == ["hi"]
        r = await env.client.get(
            f"/public/api/v1/csat_survey/{(await _list(env, source_id))[0]['uuid']}"
        )
        assert r.status_code == 404


async def test_new_message_reopens(env: Env) -> None:
    source_id, cid = await env.session()
    await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
    await env.send(source_id, cid, content="one more thing")
    shown = (await env.client.get(env.conv_url(source_id, cid))).json()
    assert shown["status"] == "open"


# -- 3.9 toggle_typing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"typing_status": "on"}},
        {"json": {"typing_status": "off"}},
        {"json": {"typing_status": "sideways"}},
        {"params": {"typing_status": "on"}},
        {"data": {"typing_status": "off"}},
        {},
    ],
)
async def test_toggle_typing_is_empty_200(env: Env, kwargs: dict[str, Any]) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(env.conv_url(source_id, cid) + "/toggle_typing", **kwargs)
    assert r.status_code == 200
    assert r.content == b""


async def test_toggle_typing_unknown_session_is_404(env: Env) -> None:
    r = await env.client.post(env.conv_url("ghost", 1) + "/toggle_typing")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


# -- 3.10 update_last_seen --------------------------------------------------------------------


async def test_update_last_seen(env: Env) -> None:
    source_id, cid = await env.session()
    env.clock.advance(30)
    r = await env.client.post(env.conv_url(source_id, cid) + "/update_last_seen")
    assert r.status_code == 200
    assert r.content == b""
    shown = (await env.client.get(env.conv_url(source_id, cid))).json()
    assert shown["contact_last_seen_at"] == int(T0) + 30
    assert shown["agent_last_seen_at"] == 0


# -- events -----------------------------------------------------------------------------------


async def test_events_flow_to_on_events(env: Env) -> None:
    source_id, cid = await env.session()
    assert "conversation.created" in {e.name for e in env.events}
    env.events.clear()
    message = await env.send(source_id, cid, content="hello", echo_id="e-1")
    names = [e.name for e in env.events]
    assert names and set(names) == {"message.created"}
    assert all(e.payload and str(message["id"]).encode() in e.payload for e in env.events)
    assert any(b'"echo_id":"e-1"' in e.payload for e in env.events)
    env.events.clear()
    await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
    assert "conversation.status_changed" in {e.name for e in env.events}
