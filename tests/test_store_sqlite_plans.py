"""The statements of the periodic work and of the lookups made per socket or per request,
as SQLite plans them: searches by an index, never a scan of a table that grows.

SQLite keeps no statistics here (no ANALYZE), so its planner guesses; twice it guessed a walk
over a whole table where an index answered (the streams appended lately: 776 ms a round over
a million log entries instead of 0.9 ms; the pending webhook deliveries: 19.4 ms over 500,000
instead of 0.1), and where no index served, the hourly prune, the minute's reopening of
snoozed conversations and an administrator's inboxes scanned. Each operation here runs on a
small world with every statement it runs traced, then planned again with EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.domain import events, outbox
from gateway.domain import provisioning as prov
from gateway.domain.agent_conversation_changes import reopen_snoozed
from gateway.store import SQLiteStore
from gateway.store.sql import Op
from gateway.store.sqlite import _run_op
from tests.store_contract import T0, link, make_world

pytestmark = pytest.mark.anyio

# What a SCAN may walk: a VALUES list or a subquery's rows, and the partial index of the
# pending deliveries (it holds only those).
ALLOWED = re.compile(
    r"^SCAN (CONSTANT ROWS?|v|unread|recent|webhook_deliveries USING INDEX "
    r"webhook_deliveries_due)\b"
)

World = dict[str, int]
OPS: dict[str, Callable[[World], Op[Any]]] = {
    "streams appended lately (the hub's reconcile)": lambda w: events.streams_appended_since(T0),
    "stream heads (the hub's full reconcile)": lambda w: events.stream_heads(["a", "b"]),
    "the event log's prune (hourly)": lambda w: events.prune(T0 + 10),
    "pending deliveries (the webhook worker, every 10 s)": lambda w: outbox.pending_count(),
    "next delivery due (the webhook worker)": lambda w: outbox.next_due(),
    "snoozed conversations due (every minute)": lambda w: reopen_snoozed(link, T0 + 10),
    "an administrator's inboxes (each agent socket)": (
        lambda w: prov.agent_inbox_ids(w["account"], w["user"])
    ),
    "a user's accounts (profile)": lambda w: prov.user_accounts(w["user"]),
}


@pytest.fixture
async def world(tmp_path: Path) -> tuple[Path, World]:
    path = tmp_path / "plans.db"
    async with SQLiteStore(path) as store:
        made = await make_world(store)
        user = await store.write(
            prov.create_user, made.account.id, "Ada", "ada@example.com", "administrator",
            "token", T0,
        )  # fmt: skip
        await store.write(events.append, "x", {"n": 1}, ["a", "b"], T0)
    return path, {"account": made.account.id, "user": user.id}


@pytest.mark.parametrize("name", list(OPS))
async def test_each_statement_searches_an_index(world: tuple[Path, World], name: str) -> None:
    path, ids = world
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    conn.execute("BEGIN")
    _run_op(conn, OPS[name](ids))
    conn.execute("ROLLBACK")
    conn.set_trace_callback(None)
    scans = {}
    for sql in statements:
        if sql in ("BEGIN", "ROLLBACK") or not sql.strip():
            continue
        details = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        bad = [d for d in details if d.startswith("SCAN") and not ALLOWED.match(d)]
        if bad:
            scans[sql] = bad
    conn.close()
    assert statements
    assert scans == {}
