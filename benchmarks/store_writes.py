"""Store write path: group commit vs one commit per write, in one run.

Runs the real ``create_incoming`` message operation (insert, event log append, conversation
update) through three drivers on the same machine, same file system, same run:

* ``inline``   - sqlite3 on the event loop, one commit per write (what a naive handler does);
* ``per-op``   - one writer thread, one commit per write (what aiosqlite-style wrappers do);
* ``group``    - inboxgate's SQLiteStore: one writer thread, group commit with savepoints;
* ``postgresql`` (only when named in ``--drivers``) - inboxgate's PostgresStore on a fresh
  database of the test server (``tests.postgres_helpers``: ``INBOXGATE_TEST_POSTGRES_URL``),
  its batches in the node's turn: at concurrency 1 each message alone (as its operation: a
  read and a write), above it batches, each after the first written from what the node
  remembers of the conversation (one statement).

For each: writes/s, ack latency p50/p99, the worst event-loop stall seen by a 1 ms ticker
(the loop must never wait on disk), and the process's CPU time per write (every thread:
steadier than writes/s on a shared machine). Figures are reported as ratios to ``per-op``.

    python -m benchmarks.store_writes [--writes 4000] [--concurrency 1,16,64] [--sync full]
        [--drivers per-op,inline,group,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gateway.domain import contacts, conversations, incoming, provisioning
from gateway.server import settle_garbage_collector
from gateway.store import SQLiteStore
from gateway.store.base import Store
from gateway.store.sql import Op
from gateway.store.sqlite import _run_op


class PerOpStore(SQLiteStore):
    """Baseline: every write is its own transaction and commit (optionally on the loop)."""

    def __init__(self, path: str, synchronous: str, inline: bool) -> None:
        super().__init__(path, synchronous=synchronous)
        self.inline = inline
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await super().start()
        self._conn = self._connect(readonly=False)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        await super().close()

    def _one(self, op: Callable[..., Op[Any]], args: tuple[Any, ...]) -> Any:
        assert self._conn is not None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            value = _run_op(self._conn, op(*args))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return value

    async def write(self, op: Callable[..., Op[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.inline:
            return self._one(op, args)
        async with self._lock:  # one connection, one writer
            return await asyncio.to_thread(self._one, op, args)


def link(_: object) -> str:
    return ""


async def run_driver(name: str, store: Store, writes: int, concurrency: int) -> dict[str, float]:
    await store.start()
    now = time.time()
    account = await store.write(provisioning.create_account, "bench", now)
    inbox = await store.write(
        provisioning.create_inbox, provisioning.NewInbox(account_id=account.id, name="b"), now
    )
    fields = contacts.ContactFields(name="bench")
    session, contact, _ = await store.write(
        contacts.create_session, inbox.id, account.id, None, fields, None, now
    )
    conv = await store.write(conversations.create, inbox, session, {}, link, now)

    lateness: list[float] = []
    running = [True]

    latencies: list[float] = []
    queue = iter(range(writes))

    async def worker() -> None:
        for i in queue:
            t0 = time.perf_counter()
            await store.write(
                incoming.create_incoming, conv.conversation.id, contact.id, f"message {i}",
                f"echo-{i}", [], 0, link, time.time(),
            )  # fmt: skip
            latencies.append(time.perf_counter() - t0)

    tick = asyncio.create_task(_tick(lateness, lambda: running[0]))
    t0, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu
    running[0] = False
    await tick
    await store.close()
    latencies.sort()
    return {
        "writes_per_s": writes / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        **_stalls(lateness),
        "cpu_us": cpu / writes * 1e6,
    }


async def _tick(lateness: list[float], going: Callable[[], bool]) -> None:
    """A 1 ms ticker on the loop: how late each beat came, into ``lateness``."""
    last = time.perf_counter()
    while going():
        await asyncio.sleep(0.001)
        t = time.perf_counter()
        lateness.append(t - last - 0.001)
        last = t


def _stalls(lateness: list[float]) -> dict[str, float]:
    """The ticker's worst lateness and its p99 (ms)."""
    lateness.sort()
    if not lateness:
        return {"max_loop_stall_ms": 0.0, "loop_late_p99_ms": 0.0}
    return {
        "max_loop_stall_ms": lateness[-1] * 1000,
        "loop_late_p99_ms": lateness[max(0, int(len(lateness) * 0.99) - 1)] * 1000,
    }


async def ticker_alone(seconds: float) -> dict[str, float]:
    """The same 1 ms ticker with nothing else to do, in the server's runtime: the machine's
    own share of a loop stall (a shared VM's host takes the core now and then; seen here:
    0.5-3.5 ms worst in 3 s of an idle ticker), the floor the drivers' stalls stand on."""
    lateness: list[float] = []
    with server_runtime():
        end = time.perf_counter() + seconds
        await _tick(lateness, lambda: time.perf_counter() < end)
    return _stalls(lateness)


DRIVERS = ("per-op", "inline", "group")
OPTIONAL = ("postgresql",)  # run only when named


@contextlib.contextmanager
def server_runtime() -> Iterator[None]:
    """The interpreter as ``inboxgate serve`` runs it (``settle_garbage_collector``: the GIL
    handed over within 0.5 ms, fewer young collections), then as it was: the store is
    measured in the runtime it serves in, and what runs after it in this process (the other
    suites' clients) is not changed."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    settle_garbage_collector()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


async def compare(
    writes: int, concurrency: int, sync: str, drivers: tuple[str, ...] = DRIVERS
) -> dict[str, dict[str, float]]:
    """The drivers, each on a fresh database, in the server's runtime: driver name ->
    figures."""
    results: dict[str, dict[str, float]] = {}
    for name in drivers:
        if name == "postgresql":
            results[name] = await _postgresql(writes, concurrency)
            continue
        with tempfile.TemporaryDirectory() as tmp, server_runtime():
            path = str(Path(tmp) / "bench.db")
            store: Store
            if name == "group":
                store = SQLiteStore(path, synchronous=sync)
            else:
                store = PerOpStore(path, sync, inline=(name == "inline"))
            results[name] = await run_driver(name, store, writes, concurrency)
    return results


async def _postgresql(writes: int, concurrency: int) -> dict[str, float]:
    from gateway.store.postgres import PostgresStore
    from tests.postgres_helpers import ADMIN_URL, create_database, drop_database, with_database

    database = await create_database()
    try:
        with server_runtime():
            store = PostgresStore(with_database(ADMIN_URL, database), pool_size=4)
            return await run_driver("postgresql", store, writes, concurrency)
    finally:
        await drop_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writes", type=int, default=4000)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--sync", default="full", choices=["full", "normal"])
    # Only the drivers named (comma-separated); ratios are to per-op when it ran, else none.
    parser.add_argument("--drivers", default=",".join(DRIVERS))
    args = parser.parse_args()
    drivers = tuple(d for d in args.drivers.split(",") if d)
    unknown = set(drivers) - set(DRIVERS) - set(OPTIONAL)
    if unknown:
        parser.error(f"unknown drivers: {', '.join(sorted(unknown))}")
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"store write benchmark: {args.writes} message writes per run, synchronous={args.sync}")
    print(
        f"{'driver':10} {'conc':>4} {'writes/s':>10} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max loop stall ms':>18} {'CPU us/write':>12}"
    )
    for conc in levels:
        results = await compare(args.writes, conc, args.sync, drivers)
        base = results["per-op"]["writes_per_s"] if "per-op" in results else float("nan")
        for name, r in results.items():
            print(
                f"{name:10} {conc:>4} {r['writes_per_s']:>10.0f} {r['writes_per_s'] / base:>6.2f} "
                f"{r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['max_loop_stall_ms']:>18.2f} "
                f"{r['cpu_us']:>12.0f}"
            )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
