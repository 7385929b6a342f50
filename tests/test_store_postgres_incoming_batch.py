"""Customers' messages batched on PostgreSQL (``gateway.domain.incoming_batch`` run in the
batch's turn by ``PostgresStore._group``): the calls that queued behind a running one are read
in one statement and written in one more, and give exactly what each call run alone, one after
the other, gives: the same outcomes, rows and event payloads; a conversation changed by another
node meanwhile, or an ``echo_id`` seen before, makes the batch write nothing and the calls run
one by one.

Each example copies one template database twice (``CREATE DATABASE ... TEMPLATE``, so that
tokens, uuids and stream epochs are the same) and runs the same calls in both: batched, and
one by one (each under its own savepoint, as before batches). The ids the sequences hand out
differ (a batch takes its messages' ids ahead), so messages and events are compared by their
order, which must be the same."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import anyio
import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk import protocol as p
from gateway.domain import (
    agent_conversation_changes,
    events,
    incoming,
    incoming_batch,
    message_reads,
    webhooks,
)
from gateway.domain.errors import NotFound
from gateway.store import postgres as postgres_module
from gateway.store.postgres import PostgresStore
from gateway.store.sql import Op, Rows, execute, one_at_a_time, rows
from tests.postgres_helpers import (
    ADMIN_URL,
    create_database,
    drop_database,
    fresh_database,
    fresh_database_sync,
    with_database,
)
from tests.store_contract import (
    T0,
    get_conversation_row,
    link,
    make_session,
    make_world,
    new_conversation,
    send,
)
from tests.store_hot_path import fresh_message_data
from tests.test_store_sqlite_incoming_batch import Target, build, shape, step, to_call

pytestmark = pytest.mark.anyio
_WRITE = "WITH v AS (SELECT * FROM unnest("  # how the batch's one write begins

Call = tuple[Any, tuple[Any, ...]]


@one_at_a_time(lambda *args, **kwargs: incoming_batch.create_incoming_batch)
def hold(seconds: float, started: asyncio.Event) -> Op[None]:
    """A write in the batch's turn that takes its time: the messages sent meanwhile queue."""
    started.set()
    yield from rows("SELECT pg_sleep(?)", seconds)


def spy_groups(store: PostgresStore) -> list[int]:
    """The sizes of the groups ``store`` runs from now on (until ``del store._group``)."""
    groups: list[int] = []
    group = store._group

    async def spied(pool: Any, waiting: list[Any]) -> None:
        groups.append(len(waiting))
        await group(pool, waiting)

    setattr(store, "_group", spied)  # noqa: B010 (an instance attribute, for this test)
    return groups


async def one_group(store: PostgresStore, calls: list[Call]) -> list[Any]:
    """``calls`` queued behind :func:`hold`, so that they run as ONE group (asserted)."""
    groups = spy_groups(store)
    started = asyncio.Event()
    holding = asyncio.create_task(store.write(hold, 0.2, started))
    await started.wait()
    pending = [asyncio.ensure_future(store.write(op, *args)) for op, args in calls]
    await holding
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    delattr(store, "_group")
    assert groups == ([len(calls)] if len(calls) > 1 else [])
    return outcomes


def dump() -> Op[dict[str, Rows]]:
    return {
        "messages": (yield from rows("SELECT * FROM messages ORDER BY id")),
        "events": (yield from rows("SELECT id, name, payload, created_at FROM events ORDER BY id")),
        "entries": (yield from rows("SELECT * FROM stream_entries ORDER BY stream, stream_offset")),
        "streams": (yield from rows("SELECT * FROM streams ORDER BY name")),
        "conversations": (yield from rows("SELECT * FROM conversations ORDER BY id")),
        "contacts": (yield from rows("SELECT * FROM contacts ORDER BY id")),
        "deliveries": (yield from rows("SELECT webhook_id, event FROM webhook_deliveries")),
    }


def normalised(found: Any, state: dict[str, Rows]) -> Any:
    """Outcomes and rows with each message's and event's id replaced by its rank (ids are
    compared by order only); payloads decoded."""
    message_ids = {r[0]: f"message#{n}" for n, r in enumerate(state["messages"])}
    event_ids = {r[0]: f"event#{n}" for n, r in enumerate(state["events"])}

    def swap(value: Any, key: str = "") -> Any:
        if key == "payload" and isinstance(value, str):  # (bytes, as msgspec gives them)
            value = base64.b64decode(value)
        if isinstance(value, bytes):
            return swap(msgspec.json.decode(value))
        if isinstance(value, dict):
            out = {k: swap(v, k) for k, v in value.items()}
            if "message_type" in value and "content" in value:  # a message, as any view shows it
                out["id"] = message_ids.get(value.get("id"), value.get("id"))
            return out
        if isinstance(value, list | tuple):
            return [swap(v, key) for v in value]
        if key == "message_id":  # (an attachment's)
            return message_ids.get(value, value)
        return value

    tables = {
        "messages": [[message_ids[r[0]], *r[1:]] for r in state["messages"]],
        "events": [[event_ids[r[0]], r[1], swap(r[2]), r[3]] for r in state["events"]],
        "entries": [[*r[:2], event_ids[r[2]], *r[3:]] for r in state["entries"]],
        **{k: v for k, v in state.items() if k not in ("messages", "events", "entries")},
    }
    return ranked_attachments((swap(found), tables))


_ATTACHMENT = {"id", "message_id", "file_type"}  # an attachment, as its record or a view


def ranked_attachments(value: Any) -> Any:
    """Each attachment's id (in its view and in the URLs that carry it) replaced by its rank.
    Attachment ids come from a sequence, which no rollback gives back: when a batch's group
    is run again (an operation failed after writing), the ids its first run drew are gone,
    and those of the second run are higher than alone. Compared by order only, as the
    messages' ids are."""
    seen: set[int] = set()

    def collect(v: Any) -> None:
        if isinstance(v, dict):
            if v.keys() >= _ATTACHMENT and isinstance(v.get("id"), int):
                seen.add(v["id"])
            for item in v.values():
                collect(item)
        elif isinstance(v, list | tuple):
            for item in v:
                collect(item)

    collect(value)
    rank = {old: n for n, old in enumerate(sorted(seen))}

    def rename(v: Any) -> Any:
        if isinstance(v, dict):
            out = {k: rename(item) for k, item in v.items()}
            if v.keys() >= _ATTACHMENT and v.get("id") in rank:
                old, new = v["id"], f"attachment#{rank[v['id']]}"
                out = {k: item.replace(f"/{old}/", f"/{new}/") if isinstance(item, str) else item
                       for k, item in out.items()}  # fmt: skip
                out["id"] = new
            return out
        if isinstance(v, list | tuple):
            return [rename(item) for item in v]
        return v

    return rename(value)


async def run(template: str, plans: list[Any], targets: list[Target], batched: bool) -> Any:
    name = await create_database(template)
    try:
        with pytest.MonkeyPatch.context() as patch:
            if not batched:  # each call under a savepoint of its own, as before batches
                patch.setattr(postgres_module, "batch_of", lambda op: None)
            store = PostgresStore(with_database(ADMIN_URL, name), pool_size=4)
            async with store:
                calls = [to_call(targets, plan, i) for i, plan in enumerate(plans)]
                found = [shape(o) for o in await one_group(store, calls)]
                return normalised(found, await store.read(dump))
    finally:
        await drop_database(name)


@pytest.fixture
def template() -> Iterator[tuple[str, list[Target]]]:
    """A database with conversations of every kind the batch tells apart (as SQLite's
    batch test builds them), its store closed so that it can be copied."""
    with fresh_database_sync() as url:

        async def make() -> list[Target]:
            async with PostgresStore(url, pool_size=2) as store:
                return await build(store)

        yield url.rsplit("/", 1)[1], anyio.run(make)


def test_batches_of_messages_are_each_message_alone(template: tuple[str, list[Target]]) -> None:
    name, targets = template

    @settings(
        max_examples=20, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip
    @given(plans=st.lists(step, min_size=2, max_size=14))
    def same(plans: list[Any]) -> None:
        alone = anyio.run(run, name, plans, targets, False)
        together = anyio.run(run, name, plans, targets, True)
        assert together == alone

    same()


def traced(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """The statements every connection is sent from now on: those that fetch rows, and
    those executed (BEGIN, COMMIT, savepoints)."""
    statements: list[str] = []
    executed: list[str] = []
    fetch = asyncpg.connection.Connection.fetch
    execute_ = asyncpg.connection.Connection.execute

    async def traced_fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await fetch(self, query, *args, **kwargs)

    async def traced_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        executed.append(query)
        return await execute_(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "fetch", traced_fetch)
    monkeypatch.setattr(asyncpg.connection.Connection, "execute", traced_execute)
    return statements, executed


async def test_a_batch_reads_once_and_writes_once(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve messages to three conversations in one batch: one read (the contexts and the
    ids), one write, no statement per message, no transaction; none runs again."""
    store, _ = two_nodes
    world = await make_world(store)
    convs = [(await new_conversation(store, world.inbox, world.session)).conversation
             for _ in range(3)]  # fmt: skip
    statements, executed = traced(monkeypatch)
    calls: list[Call] = [
        (incoming.create_incoming,
         (convs[i % 3].id, world.contact.id, f"m{i}", f"e{i}", [], 1000, link, T0 + 1 + i))
        for i in range(12)
    ]  # fmt: skip
    retries = store.retries
    results = await one_group(store, calls)
    assert all(r.created for r in results)
    assert store.retries == retries
    assert len(statements) == 3, statements  # the hold, the read ahead, the write
    assert statements[1].startswith("WITH ids AS")
    assert statements[2].startswith(_WRITE)
    assert executed == ["BEGIN;", "COMMIT;"]  # the hold's: the batch runs in no transaction
    for conv in convs:  # each conversation's messages in the order they were posted
        mine = [r.message for r in results if r.message.conversation_id == conv.id]
        assert [m.id for m in mine] == sorted(m.id for m in mine)


def meddled(batch: Any, meddle: asyncio.Event, changed: asyncio.Event) -> Any:
    """``batch``, which before its write sets ``meddle`` and waits (its connection polling, the
    loop free meanwhile, at most 5 s) until another node has set ``changed``: it changed a
    conversation of the batch meanwhile."""

    def run(calls: Any, memory: Any) -> Op[Any]:
        gen = batch(calls, memory)
        try:
            query = next(gen)
            while True:
                if query.sql.startswith(_WRITE):
                    meddle.set()
                    for _ in range(500):
                        if changed.is_set():
                            break
                        yield from rows("SELECT pg_sleep(0.01)")
                result = yield query
                query = gen.send(result)
        except StopIteration as stop:
            return stop.value

    return run


async def test_a_conversation_changed_meanwhile_runs_the_batch_again_locked(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another node changes a conversation between the batch's read and its write: the write
    writes nothing, and the batch runs again, in a transaction that locks the conversations
    before it reads them again, seeing the change; no message is lost or written twice, and
    the log stays in the order of the conversation's messages."""
    a, b = two_nodes
    world = await make_world(a)
    convs = [(await new_conversation(a, world.inbox, world.session)).conversation
             for _ in range(2)]  # fmt: skip
    meddle, changed = asyncio.Event(), asyncio.Event()
    batch = meddled(incoming_batch.create_incoming_batch, meddle, changed)
    monkeypatch.setattr(incoming.create_incoming, "_inboxgate_batched", batch)  # its batch
    monkeypatch.setattr(incoming_batch, "create_incoming_batch", batch)  # (the hold's turn)

    async def other_node() -> None:
        await meddle.wait()
        await b.write(execute, "UPDATE conversations SET status = 'pending' WHERE id = ?",
                      convs[1].id)  # fmt: skip
        changed.set()

    meddler = asyncio.create_task(other_node())
    calls: list[Call] = [
        (incoming.create_incoming,
         (convs[i % 2].id, world.contact.id, f"m{i}", f"e{i}", [], 1000, link, T0 + 1 + i))
        for i in range(8)
    ]  # fmt: skip
    retries = a.retries
    results = await one_group(a, calls)
    await meddler
    assert all(r.created for r in results)
    assert a.retries == retries + 1  # the batch wrote nothing, then ran once more
    assert [r.conversation.status for r in results[1::2]] == ["pending"] * 4
    log = await a.read(rows, "SELECT content FROM messages ORDER BY id")
    assert [r[0] for r in log] == [f"m{i}" for i in range(8)]


async def test_an_echo_id_seen_before_runs_the_calls_one_by_one(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """A client's retry of a message written by an earlier batch (the batch does not ask
    about echo_ids it has not met): the unique index fails the batch's write, and each call
    runs alone: the retry answers the original, the others are created once."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    first = await send(store, conv, world.contact.id, "first", echo_id="retry", now=T0 + 1)
    calls: list[Call] = [
        (incoming.create_incoming,
         (conv.id, world.contact.id, content, echo, [], 1000, link, T0 + 3 + i))
        for i, (content, echo) in enumerate(
            [("a", "x1"), ("b", None), ("first", "retry"), ("c", "x2")]
        )
    ]  # fmt: skip
    results = await one_group(store, calls)
    assert [r.created for r in results] == [True, True, False, True]
    assert results[2].message.id == first.message.id
    found = await store.read(rows, "SELECT content FROM messages ORDER BY id")
    assert [r[0] for r in found] == ["first", "a", "b", "c"]


async def test_messages_sent_together_to_an_idle_node_go_as_one_batch(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Messages whose requests arrive in one turn of the loop (a burst read in one wake-up)
    do not wait behind the first of them run alone: they all go as one batch; and one of them
    cancelled while they gather gives its turn up without stopping the others."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    groups = spy_groups(store)
    sends = [
        asyncio.ensure_future(send(store, conv, world.contact.id, f"m{i}", now=T0 + 1 + i))
        for i in range(6)
    ]
    results = await asyncio.gather(*sends)
    assert groups == [6]
    assert [r.message.content for r in results] == [f"m{i}" for i in range(6)]
    first = asyncio.ensure_future(send(store, conv, world.contact.id, "cancelled", now=T0 + 9))
    others = [
        asyncio.ensure_future(send(store, conv, world.contact.id, f"n{i}", now=T0 + 10 + i))
        for i in range(3)
    ]
    await asyncio.sleep(0)  # the first is in its one turn's wait, the others queue behind it
    first.cancel()
    assert all(r.created for r in await asyncio.gather(*others))
    assert not store._turns
    found = await store.read(rows, "SELECT content FROM messages ORDER BY id")
    assert [r[0] for r in found][6:] == ["n0", "n1", "n2"]


async def test_two_nodes_batching_into_the_same_conversations_lose_nothing(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two nodes write batches into the same four conversations at once (their batches lose
    races to each other and run again, locked): every message is written once, the inbox's
    log has no gap, and in each conversation the log's order is the messages' order."""
    a, b = two_nodes
    world = await make_world(a)
    convs = []
    for i in range(4):
        session, contact = await make_session(a, world.inbox, f"device-{i}")
        convs.append(((await new_conversation(a, world.inbox, session)).conversation, contact.id))
    gates = {a: asyncio.Semaphore(16), b: asyncio.Semaphore(16)}
    alone: list[int] = []
    for store in (a, b):
        again = store._again

        async def counted(pool: Any, writes: list[Any], again: Any = again) -> None:
            alone.append(len(writes))
            await again(pool, writes)

        setattr(store, "_again", counted)  # noqa: B010 (an instance attribute, for this test)

    async def post(store: PostgresStore, i: int) -> Any:
        async with gates[store]:
            conv, contact_id = convs[i % 4]
            echo = f"e{i}" if i % 3 else None
            return await send(store, conv, contact_id, f"m{i}", echo_id=echo, now=T0 + i / 100)

    results = await asyncio.gather(*(post(a if i % 3 else b, i) for i in range(600)))
    assert all(r.created for r in results)
    log = await a.read(events.read_stream, events.inbox_stream(world.inbox.id), 0, 5000)
    assert [e.offset for e in log] == list(range(1, len(log) + 1))
    created = [msgspec.json.decode(e.payload)["data"] for e in log if e.name == "message.created"]
    assert sorted(d["content"] for d in created) == sorted(f"m{i}" for i in range(600))
    for conv, _ in convs:
        ids = [d["id"] for d in created if d["conversation_id"] == conv.id]
        assert ids == sorted(ids)
    # A batch that lost a race ran again locked, instead of its calls one by one (without the
    # lock, a quarter to two fifths of them ran alone).
    assert sum(alone) <= 60


async def test_the_read_ahead_is_planned_once_not_for_each_batch() -> None:
    """PostgreSQL keeps a generic plan of the batch's read after its first runs (a custom
    plan for each batch cost about 2 ms of its CPU). Each round writes to a conversation
    the node does not remember yet, so that every batch reads."""
    async with fresh_database() as url:
        store = PostgresStore(url, pool_size=1)  # one connection: its prepared statements
        async with store:
            world = await make_world(store)
            for round_ in range(8):
                conv = (await new_conversation(store, world.inbox, world.session)).conversation
                await asyncio.gather(*[
                    send(store, conv, world.contact.id, f"m{round_}-{i}", now=T0 + round_ + i / 10)
                    for i in range(4)
                ])  # fmt: skip
            plans = await store.read(
                rows,
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                "WHERE statement LIKE 'WITH ids AS%'",
            )
    assert len(plans) == 1
    generic, custom = plans[0]
    assert custom <= 5 and generic >= 2, plans


async def rendered_afresh(store: PostgresStore, result: Any) -> set[bytes]:
    """The message.created payload a fresh read of what was committed renders."""
    conversation = await store.read(get_conversation_row, result.conversation.id)
    data = await store.read(fresh_message_data, result.message, conversation)
    return {p.encode(p.Event(event="message.created", data=data))}


async def together(
    store: PostgresStore, conv: Any, contact_id: int, tag: str, now: float, n: int = 2
) -> list[Any]:
    """``n`` messages whose requests reach an idle node in one turn of the loop: one batch."""
    return list(await asyncio.gather(*[
        send(store, conv, contact_id, f"{tag}.{i}", echo_id=f"{tag}.{i}", now=now + i / 100)
        for i in range(n)
    ]))  # fmt: skip


def unread_counts(results: list[Any]) -> list[int]:
    return [msgspec.json.decode(r.events[0].payload)["data"]["conversation"]["unread_count"]
            for r in results]  # fmt: skip


async def test_a_remembered_conversation_costs_one_statement_a_batch(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's messages in batches one after another on one node: the first batch reads
    the context and writes; each after it is ONE statement (the write, guarded by the versions
    remembered, its ids from the pool the writes top up), in no transaction; each payload is
    what a fresh read renders, and the ids follow the messages' order."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    statements, executed = traced(monkeypatch)
    results = await together(store, conv, world.contact.id, "m0", T0 + 1)
    assert [s.split(" (")[0] for s in statements] == ["WITH ids AS", "WITH v AS"]
    for i in range(1, incoming_batch.POOL + 3):  # the pool runs out and is topped up
        statements.clear()
        results += await together(store, conv, world.contact.id, f"m{i}", T0 + 1 + i)
        assert len(statements) == 1 and statements[0].startswith(_WRITE), statements
    assert executed == []
    assert all(r.created for r in results)
    ids = [r.message.id for r in results]
    assert ids == sorted(ids)
    assert unread_counts(results) == [
        min(n, message_reads.UNREAD_CAP) for n in range(1, len(results) + 1)
    ]
    monkeypatch.undo()
    assert {e.payload for e in results[-1].events} == await rendered_afresh(store, results[-1])


async def test_a_message_alone_is_one_statement_only_where_remembered(
    two_nodes: tuple[PostgresStore, PostgresStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message alone on an idle node to a conversation the node does not remember runs as
    its operation (its own read and one-statement write: less than the batch's read and
    write of one), and the node does not start remembering it; one to a remembered
    conversation runs as a batch of one: ONE statement, and the conversation stays
    remembered for the batches after it (none finds its memory stale)."""
    store, _ = two_nodes
    world = await make_world(store)
    conv = (await new_conversation(store, world.inbox, world.session)).conversation
    statements, executed = traced(monkeypatch)
    results = [await send(store, conv, world.contact.id, "cold", now=T0 + 1)]
    # its own read of the context, then its one-statement write
    assert len(statements) == 2 and statements[1].startswith("WITH conversation AS"), statements
    statements.clear()
    results += await together(store, conv, world.contact.id, "a", T0 + 2)
    assert [s.split(" (")[0] for s in statements] == ["WITH ids AS", "WITH v AS"]
    retries = store.retries
    for i in range(3):
        statements.clear()
        results.append(await send(store, conv, world.contact.id, f"warm{i}", now=T0 + 3 + i))
        assert len(statements) == 1 and statements[0].startswith(_WRITE), statements
    statements.clear()
    results += await together(store, conv, world.contact.id, "b", T0 + 9)
    assert len(statements) == 1 and statements[0].startswith(_WRITE), statements
    assert store.retries == retries and executed == []
    assert unread_counts(results) == [min(n, message_reads.UNREAD_CAP) for n in range(1, 9)]
    monkeypatch.undo()
    assert {e.payload for e in results[-1].events} == await rendered_afresh(store, results[-1])


async def _change_conversation(node: PostgresStore, world: Any, conv: Any) -> None:
    await node.write(execute, "UPDATE conversations SET status = 'pending' WHERE id = ?", conv.id)


async def _rename_contact(node: PostgresStore, world: Any, conv: Any) -> None:
    await node.write(execute, "UPDATE contacts SET name = 'Alicia' WHERE id = ?", world.contact.id)


async def _add_webhook(node: PostgresStore, world: Any, conv: Any) -> None:
    changes = webhooks.Changes(url="https://hooks.test/a", subscriptions=["message_created"])
    await node.write(webhooks.create_webhook, world.account.id, changes, T0)


async def _verify_another_session(node: PostgresStore, world: Any, conv: Any) -> None:
    """The contact proves its identity on another device: its messages go to that session
    too (``events.contact_streams``)."""
    await node.write(execute, "UPDATE contact_inboxes SET hmac_verified = TRUE WHERE id = ?",
                     world.session.id)  # fmt: skip
    other, _ = await make_session(node, world.inbox, "device-2")
    await node.write(
        execute, "UPDATE contact_inboxes SET contact_id = ?, hmac_verified = TRUE WHERE id = ?",
        world.contact.id, other.id,
    )  # fmt: skip


@pytest.mark.parametrize(
    "change", [_change_conversation, _rename_contact, _add_webhook, _verify_another_session]
)
async def test_what_another_node_changes_is_not_remembered_past_it(
    two_nodes: tuple[PostgresStore, PostgresStore], change: Any
) -> None:
    """Another node changes what a remembered context holds (the conversation, the sender,
    a webhook receiver, the contact's verified sessions): the next batch's guarded write
    writes nothing, the batch reads and writes again, and what it wrote and published is
    what a fresh read renders (the receiver gets its deliveries)."""
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    await together(a, conv, world.contact.id, "before", T0 + 1)  # read, then remembered
    await change(b, world, conv)
    retries = a.retries
    results = await together(a, conv, world.contact.id, "after", T0 + 5)
    assert all(r.created for r in results)
    assert a.retries == retries + 1
    for result in results[-1:]:
        assert {e.payload for e in result.events} == await rendered_afresh(a, result)
    streams = {e.stream for e in results[-1].events}
    found = await a.read(rows, "SELECT id FROM contact_inboxes WHERE contact_id = ? "
                               "AND hmac_verified = TRUE", world.contact.id)  # fmt: skip
    assert streams == {events.inbox_stream(world.inbox.id)} | (
        {events.session_stream(r[0]) for r in found} or {events.session_stream(world.session.id)}
    )
    deliveries = await a.read(rows, "SELECT COUNT(*) FROM webhook_deliveries")
    assert deliveries[0][0] == (2 if change is _add_webhook else 0)


async def test_two_nodes_taking_turns_on_a_conversation_keep_its_order(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """A customer whose batches reach two nodes in turn (each remembers the conversation as
    it last wrote it): the first time a node finds its memory stale (the other node wrote),
    its write writes nothing and it reads again; from then on it reads the conversation
    before each write instead of remembering it (no statement lost again). The ids and the
    unread counts follow the messages' order."""
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    results = []
    retries = a.retries + b.retries
    for i in range(12):
        node = a if i % 4 < 2 else b  # two on a, two on b: one remembered, one stale
        results += await together(node, conv, world.contact.id, f"m{i}", T0 + 1 + i)
    assert a.retries + b.retries == retries + 2  # the 5th batch on a, the 7th on b; none after
    ids = [r.message.id for r in results]
    assert ids == sorted(ids)
    assert unread_counts(results) == [min(n, message_reads.UNREAD_CAP) for n in range(1, 25)]
    log = await a.read(rows, "SELECT content FROM messages ORDER BY id")
    assert [r[0] for r in log] == [f"m{i}.{j}" for i in range(12) for j in range(2)]


async def test_a_remembered_conversation_deleted_on_another_node_answers_404(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Another node deletes a conversation this node remembers: the next batch's guarded
    write finds no row to lock and writes nothing; read again, the conversation is not found,
    and nothing of the messages is written."""
    a, b = two_nodes
    world = await make_world(a)
    conv = (await new_conversation(a, world.inbox, world.session)).conversation
    await together(a, conv, world.contact.id, "before", T0 + 1)  # read, then remembered
    await b.write(agent_conversation_changes.delete_conversation, conv.id)
    with pytest.raises(NotFound):
        await together(a, conv, world.contact.id, "after", T0 + 5)
    assert await a.read(rows, "SELECT id FROM messages") == []
