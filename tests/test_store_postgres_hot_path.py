"""PostgreSQL's one-statement message (``ops.incoming``): written outside a transaction only
while the conversation is what was read; otherwise run again, in a transaction, and the
payloads still say exactly what was committed, in commit order, across nodes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from client_sdk import protocol as p
from gateway.domain import conversations, events, incoming, message_reads, notify
from gateway.domain.errors import NotFound
from gateway.services.conversations import reached_incoming
from gateway.store.postgres import PostgresStore
from gateway.store.sql import ATOMIC, Op, Query, Rows
from tests.store_contract import (
    T0,
    agent_session,
    get_conversation_row,
    link,
    make_session,
    make_world,
    new_conversation,
    send,
)
from tests.store_hot_path import counting

pytestmark = pytest.mark.anyio


def meddling(op: Callable[..., Op[Any]], conversation_id: int) -> Callable[..., Op[Any]]:
    """``op``, with an agent's change to the conversation committed (outside any
    transaction, as the one-statement write runs) just before its first one-statement write."""
    meddled = False

    def run(*args: Any, **kwargs: Any) -> Op[Any]:
        nonlocal meddled
        gen = op(*args, **kwargs)
        try:
            query: Query = next(gen)
            while True:
                if not meddled and query.sql.startswith("WITH conversation AS (UPDATE"):
                    meddled = True
                    yield Query(
                        "UPDATE conversations SET assignee_id = NULL, updated_at = updated_at + 1 "
                        "WHERE id = ?",
                        (conversation_id,),
                    )
                result: Rows = yield query
                query = gen.send(result)
        except StopIteration as stop:
            return stop.value

    return functools.wraps(op)(run)


async def test_a_conversation_changed_since_read_runs_the_message_again(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    retries = store.retries
    result = await store.write(
        meddling(incoming.create_incoming, conv.id),
        conv.id, world.contact.id, "hello", "echo-1", [], 1000, link, T0 + 5,
    )  # fmt: skip
    assert result.created
    assert store.retries == retries + 1  # the guarded write wrote nothing, the re-run did
    assert len(await store.read(message_reads.visible_messages, conv.id)) == 1
    # What the event says is what was committed, the meddler's change included.
    conversation = await store.read(get_conversation_row, conv.id)
    assert conversation is not None and conversation.updated_at == T0 + 5
    [hydrated] = await store.read(message_reads.hydrate, [result.message])
    fresh = await store.read(notify.message_data, hydrated, conversation, link)
    assert {e.payload for e in result.events} == {
        p.encode(p.Event(event="message.created", data=fresh))
    }


async def test_concurrent_messages_of_a_conversation_read_in_log_order(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two nodes post 40 messages to one conversation at once: in the log's order, each
    message.created shows the unread count and activity time of its own commit."""
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    results = await asyncio.gather(*[
        send(a if i % 2 else b, conv, world.contact.id, f"m{i}", now=T0 + 1 + i % 7)
        for i in range(40)
    ])  # fmt: skip
    assert all(r.created for r in results)
    log = await a.read(events.read_stream, events.inbox_stream(world.inbox.id))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert len(created) == 40
    unread = [data["conversation"]["unread_count"] for data in created]
    assert unread == [min(n, notify.UNREAD_CAP) for n in range(1, 41)]
    activity = [data["conversation"]["last_activity_at"] for data in created]
    assert activity == sorted(activity)  # only ever forward, whatever order the clocks gave


async def test_one_nodes_messages_to_a_conversation_take_turns(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Messages posted together to one conversation on one node are written one after
    another (``one_at_a_time``): none loses the race for the conversation's row and runs
    again, and they commit in the order they were posted."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    retries = store.retries
    results = await asyncio.gather(*[
        send(store, conv, world.contact.id, f"m{i}", now=T0 + 1 + i) for i in range(20)
    ])  # fmt: skip
    assert all(r.created for r in results)
    assert store.retries == retries
    assert [r.message.id for r in results] == sorted(r.message.id for r in results)
    log = await store.read(events.read_stream, events.inbox_stream(world.inbox.id))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert [d["content"] for d in created] == [f"m{i}" for i in range(20)]
    unread = [data["conversation"]["unread_count"] for data in created]
    assert unread == [min(n, notify.UNREAD_CAP) for n in range(1, 21)]
    assert not store._turns  # a conversation is held only while its writes run or wait


async def test_a_widgets_messages_take_turns_through_the_public_write(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """The public route's write (``reached_incoming``: the session's reach, then the message)
    takes the same turns: its POSTs to one conversation run again none of them."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    retries = store.retries
    results = await asyncio.gather(*[
        store.write(
            reached_incoming, world.inbox.id, world.inbox.account_id, world.session.source_id,
            conv.display_id, f"m{i}", f"echo-{i}", [], 0, link, T0 + 1 + i,
        )
        for i in range(20)
    ])  # fmt: skip
    assert all(r.created for r in results)
    assert store.retries == retries
    assert not store._turns


async def test_the_public_write_reads_the_sessions_reach_with_the_message(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """A widget's message (``reached_incoming``) costs what ``create_incoming`` costs by ids:
    one read (the session's reach folded into it) and one write, outside a transaction; and it
    answers as ``reached_ids`` does for every session: 404 "contact" for no session, 404
    "conversation" for one it does not reach (an unverified session sees only its own; a
    verified one its contact's), the message in the conversation otherwise."""
    store, _ = two_nodes
    world = await make_world(store)
    mine, contact = await make_session(store, world.inbox, "v1", proved="u", identifier="u")
    await make_session(store, world.inbox, "v2", proved="u", identifier="u")
    await agent_session(store, world.inbox, contact, "by-agent")
    conv = (await new_conversation(store, world.inbox, mine)).conversation
    plain = (await new_conversation(store, world.inbox, world.session)).conversation
    statements: list[str] = []
    outcomes: list[str] = []
    cases = [
        (source, display)
        for source in ("v1", "v2", "by-agent", "device-1", "nobody")
        for display in (conv.display_id, plain.display_id, 999)
    ]
    for i, (source, display) in enumerate(cases):
        reach = (world.inbox.id, world.inbox.account_id, source, display)
        try:
            expected: Any = await store.read(conversations.reached_ids, *reach)
        except NotFound as exc:
            expected = exc.what
        try:
            result = await store.write(
                counting(reached_incoming, statements), *reach, f"m{i}", f"echo-{i}", [], 0,
                link, T0 + 1 + i,
            )  # fmt: skip
        except NotFound as exc:
            assert exc.what == expected, (source, display)
            outcomes.append(exc.what)
            continue
        assert (result.conversation.id, result.message.sender_id) == (
            expected.conversation_id, expected.contact_id,
        ), (source, display)  # fmt: skip
        assert result.created and result.message.content == f"m{i}"
        assert len(statements) == 2 and ATOMIC.sql not in statements, statements
        outcomes.append(f"{source} wrote")
    # v1 and v2 (verified, one contact) reach conv; device-1 its own; the rest hear 404.
    assert sorted(outcomes) == sorted(
        ["v1 wrote", "v2 wrote", "device-1 wrote", *["contact"] * 3, *["conversation"] * 9]
    )
