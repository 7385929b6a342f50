"""The SQLite store's checkpointer: copies the WAL into the database file off the writer thread.

SQLite checkpoints on the connection that commits, inside its COMMIT, once the WAL holds
``wal_autocheckpoint`` pages (1,000 by default): for the store, that is the writer thread, while
every caller of the batch waits for its ack. Measured with 32 writers of customer messages: one
commit in ten checkpointed, and those took 5-6 ms instead of 1.3-1.8 ms; and as the hot pages
(conversations, stream heads, the indexes' upper levels) are copied again by every checkpoint,
fewer, larger checkpoints cost less: under the HTTP POST load, 15-25 CPU-us less per message
(writer and this thread together, two A/B pairs), most of it the writer's system time.

So the writer's connection checkpoints only as a backstop (:data:`BACKSTOP_PAGES`, should this
thread fall far behind), and this thread runs a PASSIVE checkpoint on a connection of its own
after commits, at most one per :data:`PAUSE_SECONDS`. A PASSIVE checkpoint takes no lock that
the writer needs: the writer goes on appending to the WAL and committing while it copies, and
SQLite releases the GIL for its whole duration. Durability is the WAL's, as before (a checkpoint
only moves committed pages into the database file and syncs it).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

# The writer's own automatic checkpoint, only reached if this thread cannot keep up (SQLite's
# default is 1,000 pages).
BACKSTOP_PAGES = 20_000
# At most one checkpoint per pause while commits keep coming: each copies every page changed
# since the last (once, however many commits changed it) and syncs the database file once.
# (0.1 s cost more CPU than SQLite's own 1,000 pages; 0.5 s, less. At 3,000 messages/s the WAL
# then holds about 5,000 pages, 20 MB, before a checkpoint.) A checkpoint's copy competes with
# the writer for the core, so its size shows in the POST load's p99 (32 connections, 10 s runs,
# interleaved): 5 s gave 22-27 ms against 14-22 at 0.5 s; 0.1 and 0.2 s no better than 0.5 s
# (15-21 ms) and fewer requests a second.
PAUSE_SECONDS = 0.5

log = logging.getLogger("inboxgate.store")


class Checkpointer:
    """One thread, woken by :meth:`committed`; :meth:`stop` joins it."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # the thread's connection is open (or failed to)
        self.checkpoints = 0  # runs so far (tests, diagnostics)

    def start(self) -> None:
        self._stopping.clear()
        self.ready.clear()
        self._thread = threading.Thread(target=self._main, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """The writer committed: pages to copy. (An Event already set costs a flag read.)"""
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join()

    def _main(self) -> None:
        try:
            conn = self._connect()
        finally:
            self.ready.set()
        try:
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    break
                self._wake.clear()
                self.checkpoint(conn)
                # Commits during the pause only set the flag: one checkpoint after it copies
                # all they wrote.
                if self._stopping.wait(PAUSE_SECONDS):
                    break
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the writer's backstop still checkpoints
            log.warning("sqlite checkpoint failed: %s", exc)
        else:
            self.checkpoints += 1


def backstop(conn: sqlite3.Connection) -> None:
    """Make ``conn`` (the writer's) checkpoint only when the WAL is far longer than usual."""
    conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
