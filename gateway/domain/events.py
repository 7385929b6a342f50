"""The durable event log: every change someone must hear about, per stream, with offsets.

Stream names (internal; the realtime layer shows clients only opaque ids):
``inbox:<id>`` for the agents of an inbox, ``session:<contact_inbox id>`` for one contact
session (what its pubsub_token subscribes to), ``account:<id>`` for account-wide events,
``user:<id>`` for one agent.

An event's payload is encoded once and stored once; ``stream_entries`` gives it an offset in
each target stream. Offsets grow by one per stream with no gaps, so a reader that holds
offset N and sees N+2 knows it missed one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from client_sdk import protocol as p

from ..store.records import ContactInbox, Conversation, LoggedEvent
from ..store.sql import Op, dialect, execute, last_rowid, next_offsets, one, rows, scalar
from . import webhooks


def inbox_stream(inbox_id: int) -> str:
    return f"inbox:{inbox_id}"


def session_stream(contact_inbox_id: int) -> str:
    return f"session:{contact_inbox_id}"


def account_stream(account_id: int) -> str:
    return f"account:{account_id}"


def user_stream(user_id: int) -> str:
    """One agent's own stream: presence now, notifications later."""
    return f"user:{user_id}"


def contact_streams(
    conversation: Conversation, session: ContactInbox | None = None
) -> Op[list[str]]:
    """Chatwoot's *contact tokens*: every HMAC-verified session of the contact when the
    conversation's own session is verified (multi-device sync), else just that session.
    ``session``: the conversation's session when the caller already read it."""
    if session is not None and session.id == conversation.contact_inbox_id:
        verified = session.hmac_verified
    else:
        verified = yield from scalar(
            "SELECT hmac_verified FROM contact_inboxes WHERE id = ?",
            conversation.contact_inbox_id,
        )
    if not verified:
        return [session_stream(conversation.contact_inbox_id)]
    result = yield from rows(
        "SELECT id FROM contact_inboxes WHERE contact_id = ? AND hmac_verified = ? ORDER BY id",
        conversation.contact_id, True,
    )  # fmt: skip
    return [session_stream(r[0]) for r in result]


def verified_streams(session: ContactInbox, verified: str | None) -> list[str]:
    """:func:`contact_streams` of the conversation whose session is ``session``, from
    ``verified``: the ids of the conversation's contact's verified sessions, a comma-separated
    list in any order ('' for none; NULL, so None, when ``session`` is not verified), read in
    the same statement as ``session``."""
    if not session.hmac_verified or verified is None:
        return [session_stream(session.id)]
    return [session_stream(i) for i in sorted(int(v) for v in verified.split(",") if v)]


def append(name: str, data: object, streams: Iterable[str], now: float) -> Op[list[LoggedEvent]]:
    """Append one event to every stream in ``streams`` (deduplicated, order kept). A
    ``contact.*`` event also enqueues its account webhooks (message and conversation events
    get theirs from ``notify``, which holds the records their payloads need).

    SQLite: two statements however many streams, the event and every entry (one multi-row
    insert); the streams' next offsets come from the writer's own copy of the heads
    (:data:`~gateway.store.sql.NEXT_OFFSETS`). PostgreSQL: one statement."""
    payload = p.encode(p.Event(event=name, data=data))
    targets = list(dict.fromkeys(streams))
    if targets and (yield from dialect()) == "postgresql":
        heads = yield from rows(
            "WITH event AS (INSERT INTO events (name, payload, created_at) VALUES (?, ?, ?) "
            "RETURNING id), heads AS (" + _UPSERT_HEADS.format(marks=_heads(len(targets))) + "), "
            "entries AS (INSERT INTO stream_entries (stream, stream_offset, event_id, created_at) "
            "SELECT heads.name, heads.last_offset, event.id, CAST(? AS DOUBLE PRECISION) "
            "FROM heads, event) SELECT name, epoch, last_offset FROM heads",
            name, payload, now, *new_heads(targets), now,
        )  # fmt: skip
        at = {r[0]: (r[1], r[2]) for r in heads}
        return (yield from _logged(name, data, payload, targets, at, now))
    yield from execute(
        "INSERT INTO events (name, payload, created_at) VALUES (?, ?, ?)", name, payload, now
    )
    position: dict[str, tuple[str, int]] = {}
    if targets:
        heads = yield from next_offsets(targets)
        position = {r[0]: (r[1], r[2]) for r in heads}
        yield from execute(
            _SQLITE_ENTRIES + ", ".join([_SQLITE_ENTRY] * len(targets)),
            *[v for s in targets for v in (s, position[s][1], now)],
        )
    return (yield from _logged(name, data, payload, targets, position, now))


class Appended(NamedTuple):
    """One event for :func:`append_all`: its payload already encoded, its streams unique."""

    name: str
    payload: bytes
    streams: list[str]
    now: float


# Bound parameters per statement, well under SQLite's limit (32,766) whatever the batch.
_MAX_PARAMS = 8_000


def append_all(appended: Sequence[Appended]) -> Op[list[list[LoggedEvent]]]:
    """SQLite's writer: :func:`append` of several events, in order, as :func:`append` would
    append them one after the other: one statement for the events and one for the entries of
    them all (per ``_MAX_PARAMS`` parameters). For events that enqueue no webhook of their own
    (not ``contact.*``)."""
    if not appended:
        return []
    marks = ", ".join(["(?, ?, ?)"] * len(appended))
    yield from execute(
        f"INSERT INTO events (name, payload, created_at) VALUES {marks}",
        *[v for a in appended for v in (a.name, a.payload, a.now)],
    )  # fmt: skip
    # One statement inserts its rows in the order given, each taking the next id (AUTOINCREMENT,
    # one writer): the last one's and those before it. Not RETURNING, which SQLite keeps in a
    # temporary table until the statement ends.
    last = yield from last_rowid()
    event_ids = range(last - len(appended) + 1, last + 1)
    logged: list[list[LoggedEvent]] = []
    entries: list[Any] = []
    for a, event_id in zip(appended, event_ids, strict=True):
        heads = yield from next_offsets(a.streams)
        at = {r[0]: (r[1], r[2]) for r in heads}
        for stream in a.streams:
            entries += (stream, at[stream][1], event_id, a.now)
        logged.append([
            LoggedEvent(
                stream=stream, epoch=at[stream][0], offset=at[stream][1], name=a.name,
                payload=a.payload, created_at=a.now,
            )
            for stream in a.streams
        ])  # fmt: skip
    per = _MAX_PARAMS // 4 * 4
    for start in range(0, len(entries), per):
        chunk = entries[start : start + per]
        yield from execute(
            _SQLITE_ENTRIES + ", ".join(["(?, ?, ?, ?)"] * (len(chunk) // 4)), *chunk
        )
    return logged


# Every stream's next offset, in one statement. A stream met for the first time starts at
# offset 1 of a new random epoch. RETURNING promises no order: heads are matched by name.
_UPSERT_HEADS = (
    "INSERT INTO streams (name, epoch, last_offset) VALUES {marks} "
    "ON CONFLICT (name) DO UPDATE SET last_offset = streams.last_offset + 1 "
    "RETURNING name, epoch, last_offset"
)


# SQLite: the entries point at the event just inserted, the newest (one writer; ids only grow),
# found in the table rather than returned by the insert: RETURNING costs SQLite a temporary
# table per statement, and nothing else needs the id.
_SQLITE_ENTRIES = "INSERT INTO stream_entries (stream, stream_offset, event_id, created_at) VALUES "
_SQLITE_ENTRY = "(?, ?, (SELECT MAX(id) FROM events), ?)"


def _heads(n: int) -> str:
    return ", ".join(["(?, ?, 1)"] * n)


def new_heads(targets: list[str]) -> list[str]:
    """``(name, epoch)`` values for :data:`_UPSERT_HEADS`: a fresh epoch for a new stream."""
    return [v for stream in targets for v in (stream, secrets.token_hex(6))]


def _logged(
    name: str,
    data: object,
    payload: bytes,
    targets: list[str],
    position: dict[str, tuple[str, int]],
    now: float,
) -> Op[list[LoggedEvent]]:
    logged = [
        LoggedEvent(
            stream=stream, epoch=position[stream][0], offset=position[stream][1], name=name,
            payload=payload, created_at=now,
        )
        for stream in targets
    ]  # fmt: skip
    if name in webhooks.CONTACT_EVENTS:
        contact_id = getattr(data, "id", None)
        if isinstance(contact_id, int):
            enqueued = yield from webhooks.contact_event(name, contact_id, now)
            mark_deliveries(logged, enqueued)
    return logged


def mark_deliveries(logged: list[LoggedEvent], enqueued: list[str]) -> None:
    """Tell the delivery worker (through the logged entries) that deliveries were enqueued."""
    if enqueued:
        for entry in logged:
            entry.deliveries = True


def stream_position(stream: str) -> Op[tuple[str, int] | None]:
    """``(epoch, last offset)`` of a stream, or None if nothing was ever appended."""
    row = yield from one("SELECT epoch, last_offset FROM streams WHERE name = ?", stream)
    return (row[0], row[1]) if row else None


def stream_heads(streams: Sequence[str]) -> Op[dict[str, tuple[str, int, float | None]]]:
    """``(epoch, last offset, its created_at)`` of each of ``streams`` that has events, in one
    query (``created_at`` None when the head entry was pruned)."""
    if not streams:
        return {}
    marks = ", ".join("?" * len(streams))
    found = yield from rows(
        "SELECT s.name, s.epoch, s.last_offset, se.created_at FROM streams s "
        "LEFT JOIN stream_entries se ON se.stream = s.name AND se.stream_offset = s.last_offset "
        f"WHERE s.name IN ({marks})",
        *streams,
    )
    return {r[0]: (r[1], r[2], r[3]) for r in found}


_APPENDED_SINCE = "SELECT DISTINCT stream FROM stream_entries{using} WHERE created_at >= ?"
# SQLite, without statistics, answers DISTINCT by walking the primary key (stream, offset),
# which comes in stream order, over the WHOLE log: 776 ms a round with a million entries kept,
# for the 479 streams of the last ten seconds, which the time index finds in 0.9 ms. The hub
# asks every five seconds. (PostgreSQL plans it from its statistics: the time index.)
APPENDED_SINCE_SQLITE = _APPENDED_SINCE.format(using=" INDEXED BY stream_entries_time")


def streams_appended_since(since: float) -> Op[list[str]]:
    """The streams with an entry stamped at or after ``since`` (epoch seconds): what may have
    moved since then, read from the ``created_at`` index (nothing at all when the log is quiet),
    at a cost that follows the entries since then, not the log's length."""
    if (yield from dialect()) == "sqlite":
        found = yield from rows(APPENDED_SINCE_SQLITE, since)
    else:
        found = yield from rows(_APPENDED_SINCE.format(using=""), since)
    return [r[0] for r in found]


def read_stream(stream: str, after: int = 0, limit: int = 1000) -> Op[list[LoggedEvent]]:
    """Events of ``stream`` with offset > ``after``, in offset order."""
    result = yield from rows(
        "SELECT se.stream, s.epoch, se.stream_offset, e.name, e.payload, se.created_at "
        "FROM stream_entries se JOIN streams s ON s.name = se.stream "
        "JOIN events e ON e.id = se.event_id "
        "WHERE se.stream = ? AND se.stream_offset > ? ORDER BY se.stream_offset LIMIT ?",
        stream, after, limit,
    )  # fmt: skip
    return [
        LoggedEvent(
            stream=r[0], epoch=r[1], offset=r[2], name=r[3], payload=bytes(r[4]), created_at=r[5]
        )
        for r in result
    ]


def read_stream_since(stream: str, since: float, limit: int = 1000) -> Op[list[LoggedEvent]]:
    """Events of ``stream`` appended at or after ``since`` (epoch seconds)."""
    result = yield from rows(
        "SELECT se.stream, s.epoch, se.stream_offset, e.name, e.payload, se.created_at "
        "FROM stream_entries se JOIN streams s ON s.name = se.stream "
        "JOIN events e ON e.id = se.event_id "
        "WHERE se.stream = ? AND se.created_at >= ? ORDER BY se.stream_offset LIMIT ?",
        stream, since, limit,
    )  # fmt: skip
    return [
        LoggedEvent(
            stream=r[0], epoch=r[1], offset=r[2], name=r[3], payload=bytes(r[4]), created_at=r[5]
        )
        for r in result
    ]


# The events below the oldest one an entry still points at: none of them has an entry left.
# (It was "id NOT IN (SELECT event_id FROM stream_entries)": a list of every entry of the log,
# each hour.) An event appended to no stream waits until the entries older than it are gone.
_PRUNE_EVENTS = (
    "DELETE FROM events WHERE created_at < ? AND id < COALESCE("
    "(SELECT MIN(event_id) FROM stream_entries), (SELECT MAX(id) + 1 FROM events))"
)


def prune(before: float) -> Op[int]:
    """Drop log entries older than ``before`` (the retention setting), and the events they
    leave without an entry. Offsets never reuse. Its cost follows what it drops: entries by
    the time index, events by id, each event's foreign key checked by the event index."""
    deleted = yield from rows(
        "DELETE FROM stream_entries WHERE created_at < ? RETURNING event_id", before
    )
    yield from execute(_PRUNE_EVENTS, before)
    return len(deleted)


# A client that missed more than this on one stream is told to re-fetch (reject_history) rather
# than be sent an unbounded replay; the messages list API pages through anything older.
HISTORY_LIMIT = 5000


def replay_after(stream: str, epoch: str, offset: int) -> Op[list[LoggedEvent] | None]:
    """History by position (reference §5.3): every event of ``stream`` after ``offset``, or
    None when that cannot be served exactly: unknown stream, another epoch, an offset beyond the
    latest, a gap (entries after ``offset`` pruned), or more than ``HISTORY_LIMIT`` events."""
    position = yield from stream_position(stream)
    if position is None or position[0] != epoch or offset < 0 or offset > position[1]:
        return None
    if offset == position[1]:
        return []
    lowest = yield from scalar(
        "SELECT MIN(stream_offset) FROM stream_entries WHERE stream = ?", stream
    )
    if lowest is None or lowest > offset + 1:
        return None
    if position[1] - offset > HISTORY_LIMIT:
        return None
    return (yield from read_stream(stream, offset, HISTORY_LIMIT))


def replay_since(stream: str, since: float) -> Op[list[LoggedEvent] | None]:
    """History by time: events appended at or after ``since`` (server clock); None when there
    are more than ``HISTORY_LIMIT``."""
    found = yield from read_stream_since(stream, since, HISTORY_LIMIT + 1)
    return None if len(found) > HISTORY_LIMIT else found
