"""What every service shares: the store, settings, files, the clock, and the inbox cache."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..attachments import FileStore
from ..domain import provisioning
from ..domain.errors import NotFound
from ..settings import Settings
from ..store import Store
from ..store.records import Inbox, LoggedEvent

# Called with the events a committed change appended; the realtime layer publishes them.
EventSink = Callable[[list[LoggedEvent]], None]
# Relays a typing change: (key, on, streams, typing_on payload, typing_off payload).
TypingSink = Callable[[Hashable, bool, Sequence[str], bytes, bytes], Awaitable[None]]

INBOX_CACHE_SECONDS = 2.0


class Logged(Protocol):
    """A write's result that carries the events its commit appended."""

    @property
    def events(self) -> list[LoggedEvent]: ...


@dataclass
class Context:
    store: Store
    settings: Settings
    files: FileStore
    clock: Callable[[], float] = time.time
    # Each is called, in order, with the events of every commit (wired in ``create_app``).
    event_sinks: list[EventSink] = field(default_factory=list)
    typing: TypingSink | None = None
    _inboxes: dict[str, tuple[float, Inbox]] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock()

    def emitted(self, events: list[LoggedEvent]) -> None:
        if events:
            for sink in self.event_sinks:
                sink(events)

    # For ``store.write_on_commit``: a write's events published as soon as its commit is known,
    # not when its caller resumes a turn of the loop later (the sockets would wait for it).
    def emit_result(self, result: Logged) -> None:
        self.emitted(result.events)

    def emit_first(self, result: tuple[Logged, Any]) -> None:
        """For an operation that answers (result, view)."""
        self.emitted(result[0].events)

    async def inbox(self, identifier: str) -> Inbox:
        """The API inbox with this identifier (404 otherwise). Every public request starts
        here, so lookups are cached for a moment; settings changes show within 2 s."""
        found = await self.find_inbox(identifier)
        if found is None:
            raise NotFound("inbox")
        return found

    async def find_inbox(self, identifier: str) -> Inbox | None:
        now = time.monotonic()
        cached = self._inboxes.get(identifier)
        if cached is not None and now - cached[0] < INBOX_CACHE_SECONDS:
            return cached[1]
        inbox = await self.store.read(provisioning.get_inbox_by_identifier, identifier)
        if inbox is not None:  # misses are not cached: a scan of random ids must not fill it
            if len(self._inboxes) > 10_000:
                self._inboxes.clear()
            self._inboxes[identifier] = (now, inbox)
        return inbox

    def invalidate_inbox(self, identifier: str) -> None:
        """Forget a cached inbox after its settings changed: this process shows them at once
        (other processes within the cache time)."""
        self._inboxes.pop(identifier, None)

    async def inbox_origins(self, identifier: str) -> list[str] | None:
        inbox = await self.find_inbox(identifier)
        return inbox.allowed_origins if inbox else None
