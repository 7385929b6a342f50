"""Customers' messages batched in SQLite's writer (``gateway.domain.incoming_batch``): the
calls of one batch run as one operation, and give exactly what each call run alone, one
after the other, gives: the same outcomes, the same rows, the same event payloads; and what
the batch remembers from one batch to the next never makes a later one differ, whatever ran
in between.

Each example starts two stores from copies of the same database file (so that even the random
parts, uuids, tokens and stream epochs, are the same) and runs the same rounds in both: a
round queues calls behind a held batch (one batch), or runs another operation (a conversation
resolved, an agent's read, a contact blocked, a webhook receiver added); one store runs the
calls batched, the other one by one."""

from __future__ import annotations

import asyncio
import gc
import queue
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.domain import conversations, incoming, incoming_batch, messages, webhooks
from gateway.domain import provisioning as prov
from gateway.domain.errors import Flooded, NotFound
from gateway.services.conversations import reached_incoming
from gateway.store import SQLiteStore, Store
from gateway.store import sqlite as sqlite_store_module
from gateway.store.records import ContactInbox, Conversation
from gateway.store.sql import Op, Rows, execute, rows
from tests.store_contract import (
    T0,
    link,
    make_inbox,
    make_session,
    new_conversation,
    set_blocked,
)
from tests.test_store_sqlite_batch import Call

pytestmark = pytest.mark.anyio


class Gate:
    """The writer's queue, held once armed: the writer takes the first job, then waits
    until every call is queued, so that they all form one batch, with no other operation
    run before them (one would empty what the batch remembers)."""

    def __init__(self, jobs: queue.SimpleQueue[Any]) -> None:
        self.jobs = jobs
        self.armed = False
        self.open = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        job = self.jobs.get(block, timeout)  # a wait before a commit times out as it would
        if self.armed:
            self.armed = False
            self.open.wait(30)
        return job

    def get_nowait(self) -> Any:
        return self.jobs.get_nowait()

    def put(self, job: Any) -> None:
        self.jobs.put(job)


def gated(store: SQLiteStore) -> SQLiteStore:
    """``store`` (not started) with its writer's queue behind a :class:`Gate`."""
    store._jobs = Gate(store._jobs)  # type: ignore[assignment]
    return store


async def one_batch(store: SQLiteStore, calls: list[Call]) -> list[Any]:
    """Run ``calls`` as ONE batch of the writer of a :func:`gated` store (asserted)."""
    gate: Gate = store._jobs  # type: ignore[assignment]
    gate.armed, batches = True, store.batches
    gate.open.clear()
    pending = [asyncio.ensure_future(store.write(op, *args)) for op, args in calls]
    while gate.armed or gate.jobs.qsize() < len(calls) - 1:  # the first taken, the rest queued
        await asyncio.sleep(0.001)
    gate.open.set()
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert store.batches == batches + 1
    return outcomes


class Target(msgspec.Struct):
    """A conversation a call may write to, as both of its addresses."""

    conversation: Conversation
    session: ContactInbox


async def build(store: Store) -> list[Target]:
    """Conversations of every kind the batch must tell apart: two of one contact, another
    contact's, a resolved one (reopened by a message), one in an account with a webhook
    receiver, one of a verified session (its contact's streams)."""
    account = await store.write(prov.create_account, "Acme", T0)
    inbox = await make_inbox(store, account.id)
    hooked_account = await store.write(prov.create_account, "Hooked", T0)
    hooked_inbox = await make_inbox(store, hooked_account.id, name="Hooked")
    changes = webhooks.Changes(url="https://hooks.test/in")
    await store.write(webhooks.create_webhook, hooked_account.id, changes, T0)
    first, _ = await make_session(store, inbox, "device-1", name="Alice")
    second, _ = await make_session(store, inbox, "device-2", name="Bob")
    hooked, _ = await make_session(store, hooked_inbox, "device-3", name="Carol")
    verified, _ = await make_session(store, inbox, "device-4", proved="dave", name="Dave")
    sessions = [first, first, second, second, hooked, verified]
    targets = []
    for session in sessions:
        created = await new_conversation(store, inbox if session is not hooked else hooked_inbox,
                                          session)  # fmt: skip
        targets.append(Target(created.conversation, session))
    resolved = await store.write(conversations.resolve, targets[3].conversation.id, link, T0)
    targets[3] = Target(resolved.conversation, targets[3].session)
    return targets


# One call: (target index (len(targets): a conversation that does not exist), echo_id,
# flood limit, with an attachment, through the session's reach, seconds after T0).
step = st.tuples(
    st.integers(0, 6),
    st.sampled_from([None, "e1", "e2", "e3"]),
    st.sampled_from([1000, 0, 2]),
    st.sampled_from([False, False, False, True]),
    st.booleans(),
    st.integers(0, 40),
)


def attachment() -> messages.NewAttachment:
    return messages.NewAttachment(
        file_type="file", extension="txt", file_name="a.txt", content_type="text/plain",
        file_size=3, storage_key="k/a.txt",
    )  # fmt: skip


def to_call(targets: list[Target], plan: tuple[Any, ...], i: int) -> Call:
    index, echo, limit, with_file, by_reach, seconds = plan
    files = [attachment()] if with_file else []
    now = T0 + 100 + seconds
    if index >= len(targets):
        conversation_id, contact_id, display_id = 999_999, targets[0].session.contact_id, 999
        session = targets[0].session
    else:
        target = targets[index]
        conversation_id, contact_id = target.conversation.id, target.session.contact_id
        display_id, session = target.conversation.display_id, target.session
    tail = (f"message {i}", echo, files, limit, link, now)
    if by_reach:
        inbox_id = session.inbox_id
        account_id = targets[4 if index == 4 else 0].conversation.account_id
        return reached_incoming, (inbox_id, account_id, session.source_id, display_id, *tail)
    return incoming.create_incoming, (conversation_id, contact_id, *tail)


def dump() -> Op[dict[str, Rows]]:
    return {
        "messages": (yield from rows("SELECT * FROM messages ORDER BY id")),
        "attachments": (yield from rows("SELECT * FROM attachments ORDER BY id")),
        "events": (yield from rows("SELECT * FROM events ORDER BY id")),
        "entries": (yield from rows("SELECT * FROM stream_entries ORDER BY stream, stream_offset")),
        "streams": (yield from rows("SELECT * FROM streams ORDER BY name")),
        "conversations": (yield from rows("SELECT * FROM conversations ORDER BY id")),
        "contacts": (yield from rows("SELECT * FROM contacts ORDER BY id")),
        "deliveries": (yield from rows("SELECT id, webhook_id, event FROM webhook_deliveries")),
    }


def shape(outcome: Any) -> Any:
    if isinstance(outcome, messages.MessageResult):
        return msgspec.to_builtins(outcome)
    if isinstance(outcome, Flooded):
        return ("flooded", outcome.retry_after)
    return (type(outcome).__name__, str(outcome))


def agent_read(conversation_id: int, at: float) -> Op[None]:
    yield from execute(
        "UPDATE conversations SET agent_last_seen_at = ? WHERE id = ?", at, conversation_id
    )


def other_call(targets: list[Target], kind: str, index: int, n: int) -> Call:
    """An operation that is not a customer's message, between two batches."""
    target = targets[index % len(targets)]
    if kind == "resolve":
        return conversations.resolve, (target.conversation.id, link, T0 + 50)
    if kind == "read":
        return agent_read, (target.conversation.id, T0 + 120)
    if kind == "block":
        return set_blocked, (target.session.contact_id, True)
    changes = webhooks.Changes(url=f"https://hooks.test/{n}")
    return webhooks.create_webhook, (target.conversation.account_id, changes, T0)


# A round: ("batch", calls) or ("op", kind, target index).
round_ = st.one_of(
    st.tuples(st.just("batch"), st.lists(step, min_size=1, max_size=16)),
    st.tuples(
        st.just("op"), st.sampled_from(["resolve", "read", "block", "hook"]), st.integers(0, 5)
    ),
)


async def run(template: Path, root: Path, rounds: list[Any], targets: list[Target],
              batched: bool) -> Any:  # fmt: skip
    root.mkdir()
    for part in template.parent.iterdir():
        shutil.copy(part, root / part.name)
    store = gated(SQLiteStore(root / template.name))
    found: list[Any] = []
    with pytest.MonkeyPatch.context() as patch:
        if not batched:
            patch.setattr(sqlite_store_module, "batch_of", lambda op: None)
        async with store:
            i = 0
            for r in rounds:
                if r[0] == "batch":
                    calls = [to_call(targets, p, i + k) for k, p in enumerate(r[1])]
                    i += len(calls)
                    found += [shape(o) for o in await one_batch(store, calls)]
                else:
                    op, args = other_call(targets, r[1], r[2], i)
                    i += 1
                    await store.write(op, *args)  # (its answer holds a random secret)
            return found, await store.read(dump)


@pytest.mark.parametrize("remembered", [incoming_batch.MAX_REMEMBERED, 1])
def test_batches_of_messages_are_each_message_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remembered: int
) -> None:
    """Also when the batch may remember one conversation only (the oldest forgotten)."""
    monkeypatch.setattr(incoming_batch, "MAX_REMEMBERED", remembered)
    template = tmp_path / "template" / "db.sqlite"

    async def make() -> list[Target]:
        async with SQLiteStore(template) as store:
            return await build(store)

    targets = anyio.run(make)
    runs = iter(range(1_000_000))

    @settings(
        max_examples=100, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )  # fmt: skip
    @given(rounds=st.lists(round_, min_size=1, max_size=6))
    def same(rounds: list[Any]) -> None:
        n = next(runs)
        alone = anyio.run(run, template, tmp_path / f"alone{n}", rounds, targets, False)
        together = anyio.run(run, template, tmp_path / f"together{n}", rounds, targets, True)
        assert together[0] == alone[0]
        assert together[1] == alone[1]

    same()


@pytest.mark.parametrize("kind", ["resolve", "read", "hook"])
def test_what_a_batch_remembers_yields_to_any_other_write(tmp_path: Path, kind: str) -> None:
    """A conversation remembered from one batch, then changed by another operation: the next
    batch sees the change (a reopening, the unread count, a blocked contact, a webhook)."""
    template = tmp_path / "template" / "db.sqlite"

    async def make() -> list[Target]:
        async with SQLiteStore(template) as store:
            return await build(store)

    targets = anyio.run(make)
    index = 0
    message = (index, "e1", 1000, False, True, 5)
    later = (index, "e2", 1000, False, False, 30)
    rounds = [("batch", [message]), ("op", kind, index), ("batch", [later, later])]
    alone = anyio.run(run, template, tmp_path / "alone", rounds, targets, False)
    together = anyio.run(run, template, tmp_path / "together", rounds, targets, True)
    assert together == alone


def traced_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements the writer's connections of stores started from now on run, in order."""
    statements: list[str] = []
    connect = SQLiteStore._connect

    def traced(self: SQLiteStore, *, readonly: bool, busy_timeout: int = 5000) -> Any:
        conn: sqlite3.Connection = connect(self, readonly=readonly, busy_timeout=busy_timeout)
        if not readonly:
            conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(SQLiteStore, "_connect", traced)
    return statements


async def test_the_common_case_costs_one_insert_for_the_whole_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty messages to three conversations in one batch: one INSERT of messages, one of
    events, one of stream entries, one UPDATE of the conversations and one of the contacts;
    then twenty more to the same conversations: no context read again."""
    statements = traced_writes(monkeypatch)

    def count(prefix: str) -> int:
        return sum(s.lstrip().startswith(prefix) for s in statements)

    def batch(echo: str) -> list[Call]:
        calls: list[Call] = []
        for i in range(20):
            target = targets[i % 3]
            calls.append((
                incoming.create_incoming,
                (target.conversation.id, target.session.contact_id, f"m{i}", f"{echo}{i}", [],
                 1000, link, T0 + 100 + i),
            ))  # fmt: skip
        return calls

    async with gated(SQLiteStore(tmp_path / "db.sqlite")) as store:
        targets = await build(store)
        statements.clear()
        outcomes = await one_batch(store, batch("x"))
        assert all(isinstance(o, messages.MessageResult) and o.created for o in outcomes)
        assert [o.message.id for o in outcomes] == sorted(o.message.id for o in outcomes)
        assert count("INSERT INTO messages") == 1
        assert count("INSERT INTO events") == 1
        assert count("INSERT INTO stream_entries") == 1
        assert count("UPDATE conversations") == 1
        assert count("UPDATE contacts") == 1
        # Each conversation's context read once; each later echo_id looked up by its index.
        assert count("SELECT c.id") == 3
        assert count("SELECT id FROM messages WHERE conversation_id") == 17
        statements.clear()
        outcomes = await one_batch(store, batch("y"))
        assert all(isinstance(o, messages.MessageResult) and o.created for o in outcomes)
        assert count("SELECT c.id") == 0  # remembered
        # Their echo_ids asked at once, before anything is written.
        assert count("SELECT id FROM messages WHERE conversation_id") == 0
        assert count("SELECT m.conversation_id, m.echo_id") == 1
        assert count("UPDATE conversations") == 1
        # A retry among them (one batch's echo_id again) is answered the original message.
        statements.clear()
        again = await one_batch(store, [*batch("z")[:3], batch("y")[4], *batch("z")[5:8]])
        assert [o.created for o in again] == [True] * 3 + [False] + [True] * 3
        assert again[3].message.id == outcomes[4].message.id
        assert count("SELECT m.conversation_id, m.echo_id") == 1


def tracked_within(value: Any, path: str = "") -> list[str]:
    """The paths of the objects the cycle collector watches in ``value``, looked for through
    structs' fields and containers' items (an untracked struct shows the collector nothing)."""
    found = [path or "."] if gc.is_tracked(value) else []
    if isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found += tracked_within(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            found += tracked_within(item, f"{path}[]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += tracked_within(item, f"{path}[{key!r}]")
    return found


async def test_what_the_writer_remembers_is_out_of_the_collectors_reach(tmp_path: Path) -> None:
    """Between batches the writer keeps a state per conversation (thousands): its records and
    counts, the last message's payload. None of it is watched by the cycle collector but two
    lists (the conversation's labels, the contact's streams), so young collections in the
    writer thread do not visit what it keeps; and a state keeps no set of echo_ids."""
    async with gated(SQLiteStore(tmp_path / "db.sqlite")) as store:
        targets = await build(store)
        calls = [to_call(targets, (i, f"e{i}", 1000, False, i % 2 == 0, 5), i) for i in range(6)]
        outcomes = await one_batch(store, calls)
        assert all(isinstance(o, messages.MessageResult) for o in outcomes)
        (memory,) = store._heads.batches.values()
        states = memory["states"]
        assert states  # the batch wrote messages and remembers their conversations
        for state in states.values():
            assert state.context.known.last_message is not None
            assert state.echoes is None
            tracked = {path for path in tracked_within(state) if not path.endswith("labels")}
            assert tracked == {".context.known.contact_streams"}, tracked


async def test_one_conversation_is_updated_by_its_key_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose messages all go to one conversation of one contact (a message alone in
    its commit, as most are in a chat) updates both rows by key: no VALUES list, which SQLite
    fills into a temporary table per statement. Two conversations take the lists again."""
    statements = traced_writes(monkeypatch)

    def updates() -> list[str]:
        found = [s for s in statements if s.startswith(("UPDATE conversations", "UPDATE contacts"))]
        statements.clear()
        return found

    async with gated(SQLiteStore(tmp_path / "db.sqlite")) as store:
        targets = await build(store)
        statements.clear()
        one = [to_call(targets, (0, f"a{i}", 1000, False, False, i), i) for i in (1, 2)]
        outcomes = await one_batch(store, one)
        assert all(isinstance(o, messages.MessageResult) and o.created for o in outcomes)
        alone = updates()
        assert len(alone) == 2 and not [s for s in alone if "FROM (VALUES" in s], alone
        two = [to_call(targets, (index, f"b{index}", 1000, False, False, 3), 3) for index in (0, 2)]
        await one_batch(store, two)
        together = updates()
        assert len(together) == 2 and all("FROM (VALUES" in s for s in together), together
        activity = await store.read(
            rows, "SELECT last_activity_at FROM conversations WHERE id = ?",
            targets[0].conversation.id,
        )  # fmt: skip
    assert activity == [(T0 + 100 + 3,)]  # the second batch's message


async def test_a_missing_conversation_fails_alone(tmp_path: Path) -> None:
    async with gated(SQLiteStore(tmp_path / "db.sqlite")) as store:
        await missing_fails_alone(store)


async def missing_fails_alone(sqlite_store: SQLiteStore) -> None:
    targets = await build(sqlite_store)
    good = targets[0]
    calls: list[Call] = [
        (incoming.create_incoming,
         (good.conversation.id, good.session.contact_id, "a", None, [], 1000, link, T0 + 1)),
        (incoming.create_incoming,
         (999_999, good.session.contact_id, "b", None, [], 1000, link, T0 + 2)),
        (incoming.create_incoming,
         (good.conversation.id, good.session.contact_id, "c", None, [], 1000, link, T0 + 3)),
    ]  # fmt: skip
    outcomes = await one_batch(sqlite_store, calls)
    assert isinstance(outcomes[1], NotFound)
    first, third = outcomes[0], outcomes[2]
    assert isinstance(first, messages.MessageResult) and isinstance(third, messages.MessageResult)
    assert third.message.id == first.message.id + 1
    assert third.conversation.last_activity_at == T0 + 3


async def test_another_connections_commit_is_seen_by_the_next_batch(tmp_path: Path) -> None:
    """A conversation remembered by one store's writer, resolved through another connection
    (another process, say): the next batch reopens it."""
    path = tmp_path / "shared.db"
    async with gated(SQLiteStore(path)) as first, SQLiteStore(path) as second:
        targets = await build(first)
        target = targets[0]

        def message(i: int) -> Call:
            return to_call(targets, (0, f"e{i}", 1000, False, True, i), i)

        await one_batch(first, [message(1), message(2)])
        await second.write(conversations.resolve, target.conversation.id, link, T0 + 50)
        (sent,) = await one_batch(first, [message(3)])
    assert isinstance(sent, messages.MessageResult)
    assert sent.conversation.status == "open"
    assert [e.name for e in sent.events][-1] == "conversation.status_changed"


@pytest.mark.parametrize(
    ("sql", "marks"),
    [
        (
            incoming_batch._CONVERSATIONS_UPDATE.format(rows=", ".join(["(?, ?, ?, ?, ?, ?)"] * 2)),
            12,
        ),
        (incoming_batch._CONTACTS_UPDATE.format(rows="(?, ?), (?, ?)"), 4),
        (incoming_batch._ECHOES.format(rows="(?, ?), (?, ?)"), 4),
    ],
)
async def test_the_batch_statements_search_by_key(
    sqlite_store: SQLiteStore, sql: str, marks: int
) -> None:
    """Each row of the batch's multi-row updates is found by its key, never by a scan of the
    table."""
    await build(sqlite_store)

    def plan() -> Op[Rows]:
        return (yield from rows("EXPLAIN QUERY PLAN " + sql, *([1] * marks)))

    details = [r[3] for r in await sqlite_store.read(plan)]
    assert not [d for d in details if d.startswith("SCAN") and "CONSTANT ROWS" not in d
                and d != "SCAN v"], details  # fmt: skip
    assert any(d.startswith("SEARCH") for d in details), details
