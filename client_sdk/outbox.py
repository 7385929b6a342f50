"""Sends that survive: a local queue of outgoing messages, in SQLite.

Every message a session sends goes through the outbox first, with an ``echo_id`` chosen once.
Delivery walks the queue in order and stops at the first transport failure, so messages
written while the gateway is unreachable go out in order when it comes back; a retry reuses the
entry's ``echo_id``, which the gateway stores once. An entry moves ``queued`` -> ``sent`` (the
HTTP answer came: the message is stored) and is deleted when the ``message.created`` carrying
its ``echo_id`` arrives (the send is confirmed). ``failed`` entries were refused for good
(a 404 or 422) and are kept for the application to inspect.

With a path, the queue is a file and survives the process (a kiosk that reboots keeps its
unsent messages); without, it lives in memory. One file may serve several sessions: entries
belong to a contact session's ``source_id``.

:class:`Outbox` is what the sync client calls. The async client calls :class:`AsyncOutbox`,
the same queue with every call (opening the file included) run in a worker thread: a commit
with ``synchronous=FULL`` waits for the disk, and that must never stall an event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import msgspec

from .http_core import AttachmentFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id TEXT NOT NULL,
    conversation_id INTEGER NOT NULL,
    echo_id TEXT NOT NULL UNIQUE,
    content TEXT,
    attachments BLOB,
    status TEXT NOT NULL DEFAULT 'queued',
    message_id INTEGER,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_session ON outbox (source_id, status, seq);
"""

P = ParamSpec("P")
T = TypeVar("T")

_files = msgspec.msgpack.Encoder()
_files_decoder = msgspec.msgpack.Decoder(list[tuple[str, bytes, str]])


@dataclass(frozen=True)
class OutboxEntry:
    """One outgoing message. ``status`` is ``queued``, ``sent`` or ``failed``; ``message_id``
    is set once sent; ``error`` says why a ``failed`` entry was refused."""

    seq: int
    source_id: str
    conversation_id: int
    echo_id: str
    content: str | None
    attachments: tuple[AttachmentFile, ...]
    status: str
    message_id: int | None
    error: str | None
    created_at: float


def new_echo_id() -> str:
    return str(uuid.uuid4())


class Outbox:
    """The queue. Thread-safe; every method is one short SQLite transaction."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = str(self.path) if self.path is not None else ":memory:"
        # One connection shared under a lock: the sync shell calls from whichever thread sends,
        # the async shell from worker threads (AsyncOutbox).
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(
        self,
        source_id: str,
        conversation_id: int,
        content: str | None,
        attachments: Sequence[AttachmentFile] = (),
        echo_id: str | None = None,
    ) -> OutboxEntry:
        """Queue a message; returns the entry (with its ``echo_id``). An ``echo_id`` already
        in the outbox returns that entry unchanged: adding is idempotent."""
        echo = echo_id or new_echo_id()
        blob = _files.encode([(a.filename, a.content, a.content_type) for a in attachments])
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO outbox (source_id, conversation_id, echo_id, content,"
                " attachments, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (source_id, int(conversation_id), echo, content, blob, time.time()),
            )
        entry = self.get(echo)
        assert entry is not None
        return entry

    def get(self, echo_id: str) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM outbox WHERE echo_id = ?", (echo_id,)).fetchone()
        return _entry(row) if row is not None else None

    def entries(self, source_id: str, status: str | None = None) -> list[OutboxEntry]:
        """A session's entries in send order, all or those with ``status``."""
        sql = "SELECT * FROM outbox WHERE source_id = ?"
        args: tuple[object, ...] = (source_id,)
        if status is not None:
            sql, args = sql + " AND status = ?", (*args, status)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [_entry(row) for row in rows]

    def queued(self, source_id: str) -> list[OutboxEntry]:
        """What still has to be delivered, oldest first."""
        return self.entries(source_id, "queued")

    def mark_sent(self, echo_id: str, message_id: int) -> None:
        self._set(echo_id, "sent", message_id=message_id)

    def mark_failed(self, echo_id: str, error: str) -> None:
        self._set(echo_id, "failed", error=error)

    def _set(self, echo_id: str, status: str, **values: object) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET status = ?, message_id = COALESCE(?, message_id),"
                " error = COALESCE(?, error) WHERE echo_id = ? AND status != 'failed'",
                (status, values.get("message_id"), values.get("error"), echo_id),
            )

    def confirm(self, echo_id: str) -> bool:
        """The ``message.created`` with ``echo_id`` arrived: forget the entry. True if it was
        one of ours."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE echo_id = ? AND status != 'failed'", (echo_id,)
            )
        return cursor.rowcount > 0

    def settle(self, source_id: str, echo_id: str | None, message_id: int) -> bool:
        """A ``message.created`` arrived: forget the entry it confirms, by ``echo_id``, or
        (a message recovered over HTTP carries none) the session's sent entry with its
        ``message_id``. True if it was one of ours."""
        if echo_id is not None:
            return self.confirm(echo_id)
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE source_id = ? AND status = 'sent' AND message_id = ?",
                (source_id, message_id),
            )
        return cursor.rowcount > 0

    def discard(self, echo_id: str) -> None:
        """Drop an entry whatever its state (a ``failed`` one the application has handled)."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE echo_id = ?", (echo_id,))


class AsyncOutbox:
    """The :class:`Outbox` for the async client: the same methods, awaited, each run in a
    worker thread (the connection is shared under the outbox's lock, so any thread may use
    it). The file is opened on first use, also in a thread. Methods raise as
    :class:`Outbox`'s do (``sqlite3.Error``); after :meth:`close`, ``sqlite3.ProgrammingError``.
    """

    def __init__(self, outbox: Outbox | str | Path | None = None) -> None:
        self._box = outbox if isinstance(outbox, Outbox) else None
        self._path = None if isinstance(outbox, Outbox) else outbox
        self._opening = asyncio.Lock()
        self._closed = False

    async def _opened(self) -> Outbox:
        if self._closed:
            raise sqlite3.ProgrammingError("the outbox is closed")
        if self._box is None:
            async with self._opening:
                if self._box is None:
                    self._box = await asyncio.to_thread(Outbox, self._path)
        return self._box

    async def run(
        self, method: Callable[Concatenate[Outbox, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``method(outbox, *args, **kwargs)`` in a worker thread (how a session flow's
        :class:`~client_sdk.flows.OutboxCall` runs on the async shell)."""
        box = await self._opened()
        return await asyncio.to_thread(method, box, *args, **kwargs)

    async def close(self) -> None:
        """Close the file (waiting for a call in progress); unused, nothing is opened."""
        self._closed = True
        async with self._opening:
            box, self._box = self._box, None
        if box is not None:
            await asyncio.to_thread(box.close)

    async def add(
        self,
        source_id: str,
        conversation_id: int,
        content: str | None,
        attachments: Sequence[AttachmentFile] = (),
        echo_id: str | None = None,
    ) -> OutboxEntry:
        """See :meth:`Outbox.add`."""
        return await self.run(Outbox.add, source_id, conversation_id, content, attachments, echo_id)

    async def get(self, echo_id: str) -> OutboxEntry | None:
        return await self.run(Outbox.get, echo_id)

    async def entries(self, source_id: str, status: str | None = None) -> list[OutboxEntry]:
        """See :meth:`Outbox.entries`."""
        return await self.run(Outbox.entries, source_id, status)

    async def queued(self, source_id: str) -> list[OutboxEntry]:
        return await self.run(Outbox.queued, source_id)

    async def mark_sent(self, echo_id: str, message_id: int) -> None:
        await self.run(Outbox.mark_sent, echo_id, message_id)

    async def mark_failed(self, echo_id: str, error: str) -> None:
        await self.run(Outbox.mark_failed, echo_id, error)

    async def confirm(self, echo_id: str) -> bool:
        return await self.run(Outbox.confirm, echo_id)

    async def settle(self, source_id: str, echo_id: str | None, message_id: int) -> bool:
        """See :meth:`Outbox.settle`."""
        return await self.run(Outbox.settle, source_id, echo_id, message_id)

    async def discard(self, echo_id: str) -> None:
        await self.run(Outbox.discard, echo_id)


def _entry(row: tuple[object, ...]) -> OutboxEntry:
    seq, source_id, conv, echo, content, blob, status, message_id, error, created = row
    files = _files_decoder.decode(blob) if isinstance(blob, bytes) and blob else []
    return OutboxEntry(
        seq=int(seq),  # type: ignore[call-overload]
        source_id=str(source_id),
        conversation_id=int(conv),  # type: ignore[call-overload]
        echo_id=str(echo),
        content=None if content is None else str(content),
        attachments=tuple(AttachmentFile(n, c, t) for n, c, t in files),
        status=str(status),
        message_id=None if message_id is None else int(message_id),  # type: ignore[call-overload]
        error=None if error is None else str(error),
        created_at=float(created),  # type: ignore[arg-type]
    )
