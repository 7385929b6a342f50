"""The hot path's budget, part of every Store's contract: what a customer's message costs in
SQL statements, and that the payloads it renders from what it read once are exactly what a
fresh read renders (its events, its webhooks, the reopening it causes).

Mixed into each engine's ``Test...Store`` class next to :class:`StoreContract`, whose
``store`` fixture it uses."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from client_sdk import protocol as p
from gateway.domain import incoming, message_reads, notify, outbox, webhooks
from gateway.domain.errors import NotFound
from gateway.services.conversations import reached_incoming
from gateway.store import Store
from gateway.store.records import Conversation, Message
from gateway.store.sql import ATOMIC, Op, Query, Rows, for_the_engine
from gateway.views import messages as message_views
from tests.store_contract import (
    T0,
    get_conversation_row,
    link,
    make_session,
    make_world,
    new_conversation,
    send,
    set_blocked,
)

pytestmark = pytest.mark.anyio


def counting(op: Callable[..., Op[Any]], statements: list[str]) -> Callable[..., Op[Any]]:
    """``op``, recording the SQL of every query it yields (a re-run records afresh), and
    ``ATOMIC.sql`` where it asks for a transaction."""

    def counted(*args: Any, **kwargs: Any) -> Op[Any]:
        statements.clear()
        gen = op(*args, **kwargs)
        try:
            query: Query = next(gen)
            while True:
                if not for_the_engine(query) or query is ATOMIC:
                    statements.append(query.sql)
                result: Rows = yield query
                query = gen.send(result)
        except StopIteration as stop:
            return stop.value

    return functools.wraps(op)(counted)  # keeps the marks engines go by


async def counted_send(
    store: Store, conversation: Conversation, contact_id: int, now: float
) -> tuple[list[str], bool]:
    """The statements of one message, and whether it asked for a transaction."""
    statements: list[str] = []
    await store.write(
        counting(incoming.create_incoming, statements),
        conversation.id, contact_id, "hello", None, [], 1000, link, now,
    )  # fmt: skip
    return [s for s in statements if s != ATOMIC.sql], ATOMIC.sql in statements


def fresh_message_data(message: Message, conversation: Conversation) -> Op[p.MessageEventData]:
    [hydrated] = yield from message_reads.hydrate([message])
    return (yield from notify.message_data(hydrated, conversation, link))


# What a customer's message costs: plain, from a verified session, with one webhook. SQLite:
# one read, one statement per row (message, conversation, contact's activity), two for the
# event log (event, both entries; the streams' offsets come from the writer's copy of their
# heads, written back once per batch); a verified session's other sessions come with the
# read; a webhook adds its receivers and its delivery. PostgreSQL: one read and one statement
# for everything, outside a transaction; with a webhook, a transaction that locks the
# conversation and reads it again, then one statement for the rows and one for the log.
STATEMENTS = {"sqlite": (6, 6, 8), "postgresql": (2, 2, 7)}


class HotPathContract:
    async def test_what_a_customer_message_costs(self, store: Store) -> None:
        world = await make_world(store)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        plain, verified_session, with_webhook = STATEMENTS[store.dialect]
        postgres = store.dialect == "postgresql"
        sql, atomic = await counted_send(store, conv, world.contact.id, T0 + 1)
        assert len(sql) == plain
        # PostgreSQL writes it all in one statement: no transaction, no BEGIN and COMMIT.
        assert not atomic
        # A verified session: the contact's other verified sessions come with the read.
        verified, contact = await make_session(store, world.inbox, "dev-2", proved="alice")
        conv2 = (await new_conversation(store, world.inbox, verified)).conversation
        sql, atomic = await counted_send(store, conv2, contact.id, T0 + 2)
        assert len(sql) == verified_session and not atomic
        # One webhook: its receivers, and one insert for every delivery, in a transaction.
        changes = webhooks.Changes(url="https://hooks.test/a", subscriptions=["message_created"])
        await store.write(webhooks.create_webhook, world.account.id, changes, T0)
        sql, atomic = await counted_send(store, conv, world.contact.id, T0 + 3)
        assert len(sql) == with_webhook and atomic is postgres
        assert sql[-1].startswith("INSERT INTO webhook_deliveries")

    async def test_the_public_route_reads_its_reach_with_the_context(self, store: Store) -> None:
        """The widget's message addresses its conversation by session and display id: on both
        engines the reach comes in the context's one read, so it costs what a message by ids
        costs; a session that reaches nothing still hears its 404."""
        world = await make_world(store)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        statements: list[str] = []
        ids = (world.inbox.id, world.account.id, world.session.source_id)
        result = await store.write(
            counting(reached_incoming, statements), *ids, conv.display_id, "hello", None, [],
            1000, link, T0 + 1,
        )  # fmt: skip
        assert result.created and result.message.conversation_id == conv.id
        assert len([s for s in statements if s != ATOMIC.sql]) == STATEMENTS[store.dialect][0]
        assert ATOMIC.sql not in statements
        with pytest.raises(NotFound, match="conversation"):
            await store.write(
                reached_incoming, *ids, conv.display_id + 1, "hello", None, [], 1000, link, T0
            )
        with pytest.raises(NotFound, match="contact"):
            await store.write(
                reached_incoming, world.inbox.id, world.account.id, "nobody", conv.display_id,
                "hello", None, [], 1000, link, T0,
            )  # fmt: skip

    async def test_the_conversation_a_message_returns_is_the_row(self, store: Store) -> None:
        """The conversation a message reports is the row as written, whether it came back from
        the UPDATE or was computed from the row as read: a first message (the wait starts), a
        later one, one stamped earlier than the last activity, one that reopens a resolved
        conversation and one that ends a snooze."""
        world = await make_world(store)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation

        async def check(now: float) -> None:
            sent = await send(store, conv, world.contact.id, "hi", now=now)
            assert sent.conversation == await store.read(get_conversation_row, conv.id)

        await check(T0 + 10)
        await check(T0 + 20)
        await check(T0 + 15)
        await store.write(mark_resolved, conv.id)
        await check(T0 + 30)
        await store.write(mark_snoozed, conv.id, T0 + 3600)
        await check(T0 + 40)

    async def test_payloads_rendered_once_are_what_a_fresh_read_renders(self, store: Store) -> None:
        world = await make_world(store)
        names = ["message_created", "conversation_status_changed"]
        changes = webhooks.Changes(url="https://hooks.test/a", subscriptions=names)
        await store.write(webhooks.create_webhook, world.account.id, changes, T0)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await send(store, conv, world.contact.id, "first", now=T0 + 1)
        await store.write(mark_resolved, conv.id)  # the next message reopens it
        result = await send(store, conv, world.contact.id, "again", echo_id="e-1", now=T0 + 3)
        assert result.created and result.conversation.status == "open"
        assert all(e.deliveries for e in result.events)  # the delivery worker is woken
        assert [e.name for e in result.events] == ["message.created"] * 2 + [
            "conversation.status_changed"
        ] * 2

        data = await store.read(fresh_message_data, result.message, result.conversation)
        created = [e for e in result.events if e.name == "message.created"]
        assert {e.payload for e in created} == {
            p.encode(p.Event(event="message.created", data=data))
        }
        assert data.conversation.unread_count == 2
        conversation = await store.read(get_conversation_row, conv.id)
        assert conversation is not None
        fresh = await store.read(notify.conversation_data, conversation, link)
        changed = [e for e in result.events if e.name == "conversation.status_changed"]
        assert {e.payload for e in changed} == {
            p.encode(p.Event(event="conversation.status_changed", data=fresh))
        }

        deliveries = await store.read(outbox.list_deliveries, world.account.id)
        bodies = {d.event: d.body for d in deliveries if d.message_id == result.message.id}
        [hydrated] = await store.read(message_reads.hydrate, [result.message])
        webhook = await store.read(
            notify.message_webhook_payload, "message_created", hydrated, conversation, link
        )
        assert bodies["message_created"] == p.encode(webhook)
        status = [d for d in deliveries if d.event == "conversation_status_changed"][-1]
        # The push shape without account_id, plus the event's name (no changed attributes).
        fields = {**msgspec.structs.asdict(fresh), "account_id": msgspec.UNSET}
        shape = p.WebhookConversation(**fields, event="conversation_status_changed")
        shape.changed_attributes = None
        assert status.body == p.encode(shape)
        # The public view answered to the sender is the one a read renders.
        [view] = await store.read(
            message_views.render_public, [hydrated], conversation.display_id, link
        )
        assert result.view == view

    async def test_a_blocked_contact_does_not_reopen(self, store: Store) -> None:
        world = await make_world(store)
        conv = (await new_conversation(store, world.inbox, world.session)).conversation
        await store.write(mark_resolved, conv.id)
        await store.write(set_blocked, world.contact.id, True)
        result = await send(store, conv, world.contact.id, now=T0 + 2)
        assert result.conversation.status == "resolved"
        assert {e.name for e in result.events} == {"message.created"}
        assert not any(e.deliveries for e in result.events)  # no webhook: nothing to wake


def mark_snoozed(conversation_id: int, until: float) -> Op[None]:
    """Snooze a conversation without side effects (a test fixture)."""
    yield Query(
        "UPDATE conversations SET status = 'snoozed', snoozed_until = ? WHERE id = ?",
        (until, conversation_id),
    )


def mark_resolved(conversation_id: int) -> Op[None]:
    """Resolve a conversation without side effects (a test fixture, not the resolve action)."""
    yield Query("UPDATE conversations SET status = 'resolved' WHERE id = ?", (conversation_id,))
