"""What a contact session remembers, and the bookkeeping of its flows (no I/O).

:class:`SessionState` is everything needed to pick a session up in another process: the
contact's ``source_id`` (its credential) and ``pubsub_token`` (its realtime key), the
conversations it knows, the last message seen in each, and the last stream positions. Save it
after handling events and restore it on the next run: the subscription then resumes where it
stopped, with nothing missed and nothing repeated.

:class:`SessionCore` (no I/O) decides which events reach the application (a message is handed
over once, whichever way it came: live, replayed from history, or fetched after a reconnect),
and plans the HTTP catch-up. The session flows (:mod:`~client_sdk.session_flows`) do the
outbox work it decides on; the sync shell runs it on the :class:`~client_sdk.outbox.Outbox`
directly, the async one in a worker thread (:class:`~client_sdk.outbox.AsyncOutbox`), so a
disk write never stalls an event loop.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from . import cable_protocol as cp
from . import errors
from . import protocol as p
from .cable_core import CableCore
from .events import ConversationCreated, Event, MessageCreated

# Message ids remembered for de-duplication; far more than one reconnect can overlap.
SEEN_LIMIT = 10_000


class SessionState(msgspec.Struct, kw_only=True):
    """A contact session, as saved between runs. Treat the file as a secret: ``source_id``
    is the credential of the session's conversations."""

    base_url: str
    inbox_identifier: str
    source_id: str
    pubsub_token: str
    contact_id: int | None = None
    conversations: list[int] = []
    last_message_ids: dict[int, int] = {}
    positions: dict[str, cp.StreamPosition] = {}
    history_since: float | None = None
    version: int = 1

    def save(self, path: str | Path) -> None:
        """Write the state to ``path`` atomically (a crash leaves the old file or the new)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(msgspec.json.format(msgspec.json.encode(self)))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> SessionState:
        """Read a saved state. Raises ``OSError`` if unreadable, and
        :class:`~client_sdk.errors.ProtocolError` if it is not a saved session."""
        try:
            return msgspec.json.decode(Path(path).read_bytes(), type=cls)
        except msgspec.DecodeError as exc:
            raise errors.ProtocolError(f"{path}: not a saved session: {exc}") from None


class SessionCore:
    """Event filtering, outbox decisions and catch-up planning for one session."""

    def __init__(self, state: SessionState, *, resumed: bool) -> None:
        self.state = state
        self.resumed = resumed
        self._seen: dict[tuple[int, int], None] = {}

    def cable(self, protocols: Sequence[str], stale_after: float) -> CableCore:
        return CableCore(
            self.state.pubsub_token,
            protocols=protocols,
            positions=self.state.positions,
            since=self.state.history_since,
            stale_after=stale_after,
            resumed=self.resumed,
        )

    def track(self, conversation_id: int) -> None:
        if conversation_id not in self.state.conversations:
            self.state.conversations.append(conversation_id)

    def accept(self, event: Event) -> bool:
        """Whether ``event`` goes to the application: False for a message already handed over.
        For an accepted :class:`MessageCreated` the shell then settles its outbox entry
        (:meth:`Outbox.settle <client_sdk.outbox.Outbox.settle>`)."""
        if isinstance(event, ConversationCreated):
            self.track(event.conversation_id)
        if not isinstance(event, MessageCreated):
            return True
        message = event.message
        key = (message.conversation_id, message.id)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]
        self.track(message.conversation_id)
        last = self.state.last_message_ids.get(message.conversation_id, 0)
        self.state.last_message_ids[message.conversation_id] = max(last, message.id)
        return True

    def catch_up_plan(self, listed: Iterable[p.PublicConversation]) -> list[tuple[int, int]]:
        """``(conversation id, last message id seen)`` for every conversation to re-read:
        those known, and any new one the server lists."""
        for conversation in listed:
            self.track(conversation.id)
        return [(c, self.state.last_message_ids.get(c, 0)) for c in self.state.conversations]

    @staticmethod
    def recovered(messages: Iterable[p.PublicMessage], after: int) -> list[MessageCreated]:
        """Messages fetched over HTTP, newer than ``after``, as events in order."""
        fresh = sorted((m for m in messages if m.id > after), key=lambda m: m.id)
        return [MessageCreated(m, recovered=True) for m in fresh]

    def remember_since(self, cable: CableCore) -> None:
        self.state.history_since = cable.since

    # -- outbox delivery ----------------------------------------------------------------------

    @staticmethod
    def retry_later(exc: errors.InboxError) -> bool:
        """A delivery failed: True to stop the walk and retry later (the gateway is away or
        busy); False when the gateway refused this message for good (the shell marks it
        failed and goes on)."""
        return isinstance(exc, errors.TransportError | errors.ServerError | errors.RateLimited)
