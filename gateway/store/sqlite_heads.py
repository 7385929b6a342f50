"""The heads of SQLite's event log streams (``streams``: epoch and last offset), kept by the
writer thread.

Every append advanced its streams' heads with an upsert that returned them: a statement and a
temporary table per message, though one thread writes and could know them. The writer keeps
them instead: an append asks (``sql.NEXT_OFFSETS``) and is answered from memory, and the
advanced heads are written back once per batch, before its COMMIT, one UPDATE per stream
however many messages the batch appended to it.

The copy is the truth only while nothing else writes: it is dropped whenever the transaction
it describes is undone (a batch run again, a failed commit, an operation rolled back to its
savepoint) and when another connection committed since the last batch (``PRAGMA
data_version``: an admin command run in another process, say). What batched operations keep
between batches (``sql.batched``'s memory) is true on the same terms, and is dropped with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from .sql import Memory, Rows

# Beyond this many streams the copy starts again from the table (a batch reads back the heads
# it needs): memory stays bounded whatever the number of sessions.
MAX_KNOWN = 100_000

# A stream met for the first time: offset 0 of a new random epoch (SQLite's own generator:
# ``secrets`` would cost a system call), advanced to 1 by its first append.
_CREATE = "INSERT INTO streams (name, epoch, last_offset) VALUES {marks} RETURNING name, epoch"
_NEW = "(?, lower(hex(randomblob(6))), 0)"
# What a connection without a copy does (readers never append; a one-off writer may).
_UPSERT = (
    "INSERT INTO streams (name, epoch, last_offset) VALUES {marks} "
    "ON CONFLICT (name) DO UPDATE SET last_offset = streams.last_offset + 1 "
    "RETURNING name, epoch, last_offset"
)
_UPSERT_ONE = "(?, lower(hex(randomblob(6))), 1)"


def upsert(conn: sqlite3.Connection | sqlite3.Cursor, streams: Sequence[str]) -> Rows:
    """``NEXT_OFFSETS`` answered by the table alone."""
    sql = _UPSERT.format(marks=", ".join([_UPSERT_ONE] * len(streams)))
    return conn.execute(sql, tuple(streams)).fetchall()


class StreamHeads:
    """The writer's copy of the heads: ``next`` answers ``NEXT_OFFSETS``, ``flush`` writes the
    heads advanced since the last flush, ``forget`` drops the copy."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, int]] = {}  # name -> (epoch, last offset)
        self._dirty: dict[str, int] = {}  # name -> last offset not yet written
        self._version: int | None = None
        self.advances = 0  # grows with every answer: an operation that asked has written
        # Each batch's memory (``sql.batched``): dropped with the copy, and by the writer
        # before any other operation runs.
        self.batches: dict[Any, Memory] = {}

    def next(self, conn: sqlite3.Connection | sqlite3.Cursor, streams: Sequence[str]) -> Rows:
        known = self._known
        missing = [s for s in streams if s not in known]
        if missing:
            marks = ", ".join("?" * len(missing))
            for name, epoch, last in conn.execute(
                f"SELECT name, epoch, last_offset FROM streams WHERE name IN ({marks})", missing
            ):
                known[name] = (epoch, last)
            new = [s for s in missing if s not in known]
            if new:
                created = conn.execute(
                    _CREATE.format(marks=", ".join([_NEW] * len(new))), new
                ).fetchall()
                for name, epoch in created:
                    known[name] = (epoch, 0)
        answer: Rows = []
        for name in streams:
            epoch, last = known[name]
            last += 1
            known[name] = (epoch, last)
            self._dirty[name] = last
            answer.append((name, epoch, last))
        self.advances += 1
        return answer

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the advanced heads (in the open transaction, before it commits)."""
        if self._dirty:
            conn.executemany(
                "UPDATE streams SET last_offset = ? WHERE name = ?",
                [(last, name) for name, last in self._dirty.items()],
            )
            self._dirty.clear()
        if len(self._known) > MAX_KNOWN:
            self._known.clear()

    def forget(self) -> None:
        """The transaction the copy described was undone: the table is the truth again."""
        self._known.clear()
        self._dirty.clear()
        self.batches.clear()

    def check(self, conn: sqlite3.Connection) -> None:
        """At the start of a batch (holding the write lock): drop the copy if another
        connection committed since the last batch."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._version = version
            self.forget()
