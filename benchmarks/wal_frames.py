"""What a durable message costs SQLite in pages: WAL frames per commit, by the table or index
that owns each page.

A commit appends every page it changed to the WAL, one frame each (a 24-byte header and the
page: two ``pwrite`` calls on the writer thread, which shares the server's core with the event
loop), then syncs once. So the writer's I/O, and a good part of its CPU, follows how many
pages a batch of messages dirties; and which B-trees they belong to says what a schema change
could save. An index keyed by conversation (or by stream) dirties one leaf per conversation a
commit touches: posting to 40 conversations in turn and posting to 1,000 do not cost the same.

For each number of conversations, this runs the POST load of :mod:`benchmarks.http_load`
against ``inboxgate serve`` (SQLite, ``synchronous=full``) and meanwhile copies the WAL a few
times with the server stopped (``SIGSTOP``: no frame is half written while it is read). A
copy's frames are those carrying its header's salts (the current generation: a checkpoint
restarts the WAL), up to its last commit frame; copies of one generation are counted once.
Each frame's page is named by SQLite's ``dbstat`` table over a copy of the database taken at
the end. Messages per commit come from the server's batch-size histogram over the same load.

    python -m benchmarks.wal_frames [--seconds 4] [--conversations 40,1000]
    python -m benchmarks --only wal
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import sqlite3
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server_helpers import GatewayProcess

from . import cross_node, http_load, procs

WAL_MAGIC = (0x377F0682, 0x377F0683)  # the two checksum byte orders
WAL_HEADER = 32
FRAME_HEADER = 24
FREE = "(free list)"  # a page dbstat does not list: on the free list by the end


@dataclass
class Generation:
    """The committed frames of one WAL generation: the page each frame holds, in order."""

    salt: bytes
    page_size: int
    pages: list[int] = field(default_factory=list)
    commits: int = 0


def read_wal(data: bytes) -> Generation | None:
    """The frames of the generation ``data``'s header starts (None: no header yet)."""
    if len(data) < WAL_HEADER:
        return None
    magic, _version, page_size = struct.unpack(">III", data[:12])
    if magic not in WAL_MAGIC:
        raise ValueError("not a SQLite WAL file (bad magic number)")
    salt = data[16:24]
    found = Generation(salt, page_size)
    pages: list[int] = []
    offset = WAL_HEADER
    while offset + FRAME_HEADER + page_size <= len(data):
        page, size_after_commit = struct.unpack(">II", data[offset : offset + 8])
        if data[offset + 8 : offset + 16] != salt:  # a frame of an earlier generation
            break
        pages.append(page)
        if size_after_commit:  # a commit's last frame
            found.pages += pages
            found.commits += 1
            pages = []
        offset += FRAME_HEADER + page_size
    return found


def merge(generations: list[Generation]) -> list[Generation]:
    """One per salt: a later copy of a generation holds all an earlier one did, and more."""
    longest: dict[bytes, Generation] = {}
    for g in generations:
        if g.salt not in longest or len(g.pages) > len(longest[g.salt].pages):
            longest[g.salt] = g
    return list(longest.values())


@contextlib.contextmanager
def copied(database: bytes, wal: bytes) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of a database file and its WAL (SQLite rebuilds the WAL index
    of the copy when it opens it)."""
    with tempfile.TemporaryDirectory(prefix="inboxgate-wal-") as tmp:
        copy = Path(tmp) / "copy.db"
        copy.write_bytes(database)
        Path(f"{copy}-wal").write_bytes(wal)
        conn = sqlite3.connect(copy)
        try:
            yield conn
        finally:
            conn.close()


def owners(conn: sqlite3.Connection) -> dict[int, str]:
    """Page number -> the table or index it belongs to."""
    try:
        rows = conn.execute("SELECT pageno, name FROM dbstat").fetchall()
    except sqlite3.OperationalError as exc:
        raise procs.BenchError(
            f"this SQLite ({sqlite3.sqlite_version}) has no dbstat table to name pages by "
            f"(SQLITE_ENABLE_DBSTAT_VTAB): {exc}"
        ) from exc
    return {int(page): str(name) for page, name in rows}


def by_owner(generations: list[Generation], named: dict[int, str]) -> dict[str, int]:
    """Frames per owning table or index, most first."""
    counted = collections.Counter(named.get(p, FREE) for g in generations for p in g.pages)
    return dict(counted.most_common())


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process frozen (every thread) while the block runs."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def store_counts(gateway: GatewayProcess) -> dict[str, float]:
    """The gateway's write operations and commits so far (:func:`cross_node.store_counts`)."""

    async def counted() -> dict[str, float]:
        async with httpx.AsyncClient(timeout=5) as client:
            return await cross_node.store_counts(client, gateway)

    return asyncio.run(counted())


def measure(
    conversations: int, seconds: int, copies: int, root: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """The POST load over ``conversations`` conversations; the WAL copied ``copies`` times."""
    server_cpus, load_cpus = procs.cores()
    gateway, s = http_load.start_gateway(root, server_cpus, conversations + 1)
    targets = http_load.Targets.of(s)
    driver = http_load.Driver(http_load.Config(), targets, root, load_cpus)
    database = root / "db" / "inboxgate.db"
    wal = Path(f"{database}-wal")
    seen: list[Generation] = []
    with procs.started(gateway):
        http_load.warm_up(gateway.port, targets)
        counts_before = store_counts(gateway)
        figures: dict[str, Any] = {}
        failures: list[BaseException] = []

        def load() -> None:
            try:
                figures.update(driver.run(gateway.port, "POST message", 32, seconds))
            except BaseException as exc:  # raised again below, in the caller's thread
                failures.append(exc)

        loader = threading.Thread(target=load, name="wal-frames-load")
        loader.start()
        try:
            for _ in range(copies):
                time.sleep(seconds / (copies + 1))
                with stopped(gateway.pid):
                    found = read_wal(wal.read_bytes())
                if found is not None:
                    seen.append(found)
        finally:
            loader.join()
        if failures:
            raise failures[0]
        counts_after = store_counts(gateway)
        with stopped(gateway.pid):  # a consistent copy: nothing writes meanwhile
            files = database.read_bytes(), wal.read_bytes()
    with copied(*files) as conn:  # the pages' owners as the load left them
        named = owners(conn)
        [(messages,)] = conn.execute("SELECT COUNT(*) FROM messages").fetchall()
    generations = merge(seen)
    commits = sum(g.commits for g in generations)
    frames = sum(len(g.pages) for g in generations)
    per_commit = cross_node.per_commit(counts_before, counts_after)
    shares = by_owner(generations, named)
    result = {
        "conversations": conversations,
        "rps": figures.get("rps", 0.0),
        "commits_seen": commits,
        "messages_per_commit": per_commit,
        "frames_per_commit": frames / commits if commits else 0.0,
        "frames_per_message": frames / commits / per_commit if commits and per_commit else 0.0,
        "page_size": generations[0].page_size if generations else 0,
        # How long the conversations had grown by the end (an index leaf holds a few hundred
        # of one conversation's entries).
        "messages_per_conversation": messages / conversations,
        "by_owner": {name: n / commits for name, n in shares.items()} if commits else {},
    }
    log(
        f"  [wal] {conversations} conversations: {result['rps']:.0f} POST/s, {commits} commits "
        f"seen, {per_commit:.1f} messages per commit ({messages / conversations:,.0f} per "
        f"conversation by the end), {result['frames_per_commit']:.1f} frames "
        f"per commit, {result['frames_per_message']:.1f} per message"
    )
    return result


def run(
    conversation_counts: list[int],
    seconds: int,
    copies: int,
    root: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    runs = [measure(n, seconds, copies, root / f"c{n}", log) for n in conversation_counts]
    return {"seconds": seconds, "connections": 32, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="POST load per point")
    parser.add_argument("--copies", type=int, default=6, help="WAL copies per point")
    parser.add_argument(
        "--conversations", default="40,1000", help="comma-separated conversation counts"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.conversations.split(",") if n.strip()]
    with tempfile.TemporaryDirectory(prefix="inboxgate-wal-") as tmp:
        r = run(counts, args.seconds, args.copies, Path(tmp), print)
    for point in r["runs"]:
        print(f"\n{point['conversations']} conversations, frames per commit by B-tree:")
        for name, per in point["by_owner"].items():
            print(f"  {per:7.1f}  {name}")


if __name__ == "__main__":
    main()
