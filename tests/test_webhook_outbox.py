"""The webhook outbox: deliveries written in the event's own transaction, with §9.2 payloads,
to the receivers §9.1 names."""

from __future__ import annotations

import pytest

from client_sdk import protocol as p
from gateway.domain import contacts, conversations, events, messages, notify, webhooks
from gateway.domain import provisioning as prov
from gateway.domain.errors import InvalidAttribute
from gateway.store.sql import Op
from tests.store_contract import T0, link, make_session, new_conversation, send
from tests.webhook_helpers import ACCOUNT_HOOK, ALL, CONVERSATION_PUSH_KEYS, INBOX_HOOK, Hooks, body

pytestmark = pytest.mark.anyio


async def test_a_conversation_flow_enqueues_each_subscribed_event(hooks: Hooks) -> None:
    subscribed = ["conversation_created", "message_created", "conversation_status_changed"]
    hook = await hooks.hook(subscriptions=subscribed)
    world = hooks.world
    conv = (await new_conversation(hooks.store, world.inbox, world.session)).conversation
    message = (await send(hooks.store, conv, world.contact.id, "Hello")).message
    await hooks.store.write(conversations.resolve, conv.id, link, T0 + 5)

    found = await hooks.deliveries()
    by_receiver = {
        kind: [d.event for d in found if d.receiver == kind] for kind in ("account", "inbox")
    }
    # The resolve's activity message is not a webhook event (§9.2).
    assert by_receiver["account"] == subscribed
    assert by_receiver["inbox"] == subscribed
    assert all(d.status == "pending" and d.attempts == 0 for d in found)
    assert len({d.uuid for d in found}) == len(found)
    account = [d for d in found if d.receiver == "account"]
    assert {d.secret for d in account} == {hook.secret}
    assert {d.url for d in account} == {ACCOUNT_HOOK}
    inbox_secret = {d.secret for d in found if d.receiver == "inbox"}
    assert len(inbox_secret) == 1 and inbox_secret != {world.inbox.hmac_token}

    created = body(account[0])
    assert created["event"] == "conversation_created"
    assert set(created) == CONVERSATION_PUSH_KEYS | {"event"}
    assert created["id"] == conv.display_id and created["status"] == "open"
    assert "changed_attributes" not in created

    sent = body(account[1])
    assert set(sent) == {
        "event", "id", "content", "content_type", "content_attributes", "message_type",
        "private", "source_id", "created_at", "additional_attributes", "account", "inbox",
        "conversation", "sender",
    }  # fmt: skip
    assert (sent["id"], sent["content"], sent["message_type"]) == (message.id, "Hello", "incoming")
    assert sent["created_at"] == "2026-01-01T12:00:00.000Z"
    assert sent["account"] == {"id": world.account.id, "name": "Acme"}
    assert sent["inbox"] == {"id": world.inbox.id, "name": world.inbox.name}
    assert set(sent["conversation"]) == CONVERSATION_PUSH_KEYS
    assert sent["sender"]["id"] == world.contact.id and sent["sender"]["name"] == "Alice"
    assert sent["sender"]["account"] == {"id": world.account.id, "name": "Acme"}
    assert "type" not in sent["sender"] and "avatar" in sent["sender"]
    assert account[1].message_id == message.id

    changed = body(account[2])
    assert changed["event"] == "conversation_status_changed"
    assert changed["status"] == "resolved" and changed["changed_attributes"] is None


async def test_a_failed_write_enqueues_nothing(hooks: Hooks) -> None:
    await hooks.hook(subscriptions=ALL)
    world = hooks.world

    def create_then_fail() -> Op[None]:
        yield from conversations.create(world.inbox, world.session, {}, link, T0)
        raise InvalidAttribute("deliberate", ["base"])

    with pytest.raises(InvalidAttribute):
        await hooks.store.write(create_then_fail)
    assert await hooks.deliveries() == []


async def test_subscriptions_inbox_filter_notes_and_activity(hooks: Hooks) -> None:
    world = hooks.world
    other = await hooks.store.write(
        prov.create_inbox, prov.NewInbox(account_id=world.account.id, name="Other"), T0
    )
    await hooks.hook("http://receiver.test/only-other", subscriptions=ALL, inbox_id=other.id)
    await hooks.hook("http://receiver.test/only-this", subscriptions=ALL, inbox_id=world.inbox.id)
    await hooks.hook("http://receiver.test/contacts", subscriptions=["contact_created"])
    conv = (await new_conversation(hooks.store, world.inbox, world.session)).conversation
    note = await hooks.store.write(
        messages.insert_message, conv, content="internal", message_type=1, private=True, now=T0
    )
    await hooks.store.write(notify.emit_message, "message.created", note, conv, link, T0)
    activity = await hooks.store.write(
        messages.insert_message, conv, content="assigned", message_type=2, now=T0
    )
    await hooks.store.write(notify.emit_message, "message.created", activity, conv, link, T0)

    found = await hooks.deliveries()
    assert {d.url for d in found} == {"http://receiver.test/only-this", INBOX_HOOK}
    for url in ("http://receiver.test/only-this", INBOX_HOOK):
        assert [d.event for d in found if d.url == url] == [
            "conversation_created", "message_created",
        ]  # fmt: skip
    notes = [body(d) for d in found if d.event == "message_created"]
    assert {(n["content"], n["private"], n["message_type"]) for n in notes} == {
        ("internal", True, "outgoing")
    }


async def test_contact_events_reach_account_webhooks_only(hooks: Hooks) -> None:
    await hooks.hook(subscriptions=["contact_created", "contact_updated"])
    contact = hooks.world.contact
    for name in ("contact.created", "contact.updated"):
        data = p.ContactEventData(id=contact.id, name=contact.name, account_id=contact.account_id)
        await hooks.store.write(
            events.append, name, data, [events.account_stream(contact.account_id)], T0
        )
    found = await hooks.deliveries()
    assert [(d.receiver, d.event) for d in found] == [
        ("account", "contact_created"), ("account", "contact_updated"),
    ]  # fmt: skip
    created, updated = (body(d) for d in found)
    assert created["event"] == "contact_created" and created["id"] == contact.id
    assert created["account"] == {"id": contact.account_id, "name": "Acme"}
    assert "changed_attributes" not in created
    assert updated["changed_attributes"] is None


async def test_public_api_contacts_fire_contact_webhooks(hooks: Hooks) -> None:
    await hooks.hook(subscriptions=["contact_created", "contact_updated"])
    session, contact = await make_session(hooks.store, hooks.world.inbox, "d2", name="Bea")
    await make_session(hooks.store, hooks.world.inbox, "d3", email="x@y.test")
    await make_session(hooks.store, hooks.world.inbox, "d2")  # known session: nothing new
    fields = contacts.ContactFields(name="Bea", email="bea@example.test")
    for _ in range(2):  # the second update changes nothing: no webhook
        await hooks.store.write(contacts.update_contact, session.id, fields, None, T0 + 1)
    found = await hooks.deliveries()
    assert [d.event for d in found] == ["contact_created", "contact_created", "contact_updated"]
    created, _, updated = (body(d) for d in found)
    assert (created["id"], created["name"]) == (contact.id, "Bea")
    assert updated["email"] == "bea@example.test"
    assert updated["changed_attributes"] == [
        {"email": {"previous_value": None, "current_value": "bea@example.test"}},
        {"contact_type": {"previous_value": "visitor", "current_value": "lead"}},
    ]


async def test_deleting_or_moving_a_webhook_takes_its_pending_deliveries(hooks: Hooks) -> None:
    moved = await hooks.hook(subscriptions=["conversation_created"])
    gone = await hooks.hook("http://receiver.test/gone", subscriptions=["conversation_created"])
    world = hooks.world
    await new_conversation(hooks.store, world.inbox, world.session)
    await hooks.store.write(
        webhooks.update_webhook, world.account.id, moved.id,
        webhooks.Changes(url="http://receiver.test/new"), T0,
    )  # fmt: skip
    await hooks.store.write(webhooks.delete_webhook, world.account.id, gone.id, T0)
    found = {d.webhook_id: d for d in await hooks.deliveries() if d.receiver == "account"}
    assert found[moved.id].url == "http://receiver.test/new"
    assert found[moved.id].status == "pending"
    assert (found[gone.id].status, found[gone.id].last_error) == ("dead", "webhook deleted")
