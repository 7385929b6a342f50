"""Answers of the hot public reads, kept while the database has not changed.

A widget polls its contact and its conversation far more often than anyone writes them, and
each such read cost a statement or two on the loop plus the records, the rendering and the
encoding (about twice an inbox GET). The cache answers them from memory, and is kept true by
the database itself rather than by events: every lookup first asks the store for its data
version (``Store.data_version``, SQLite's ``PRAGMA data_version``: a few microseconds), which
changes with every commit of any connection or process, and a changed version empties the
cache. So a cached answer is exactly what a read at that moment would give, whoever wrote
(this process, the CLI, anything sharing the file), and no write path has to remember it.
The version is read once per turn of the event loop (:meth:`ViewCache.lookup` says why that
is still exact for every client).

An engine that cannot tell cheaply (PostgreSQL, where the nodes share the database and a
version would cost a round trip) answers None, and the cache stays empty there.

The price: any commit empties the whole cache, so under a write load it mostly misses (and
costs the version check). The reads it serves are the ones repeated between writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from ..store import Store

# Answers held at the most, and bytes of encoded answers (a conversation of 20 long messages
# is megabytes): bounds on memory, not tuning knobs. Past either, the cache starts again
# empty, as the inbox caches do.
MAX_VIEWS = 10_000
MAX_VIEW_BYTES = 64 * 1024 * 1024


class ViewCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._version: object | None = None
        self._views: dict[Hashable, Any] = {}
        self._bytes = 0
        self._checked = False  # the version was read in this turn of the loop

    def _forget_check(self) -> None:
        self._checked = False

    def lookup(self, key: Hashable) -> tuple[object | None, Any]:
        """``(version, answer)``: the answer held for ``key`` (None if none), and the version
        to hand to :meth:`keep` with an answer read from now on (None: do not keep it).

        The version is read once per turn of the event loop: the callback that forgets it is
        queued at once, so it runs before anything queued after the read, in particular the
        wake-up that acknowledges a write committed after it (and the push of its events).
        So a client never sees an answer older than a write it has heard of; the requests
        served from one read were all received before it, concurrent with any later commit."""
        if self._checked:
            version = self._version
        else:
            version = self.store.data_version()
            if version is not None:
                self._checked = True
                asyncio.get_running_loop().call_soon(self._forget_check)
        if version is None:
            return None, None
        if version != self._version:
            self._clear()
            self._version = version
            return version, None
        return version, self._views.get(key)

    def keep(self, version: object | None, key: Hashable, answer: Any, size: int = 0) -> None:
        """Hold ``answer`` (``size``: its encoded bytes, if it is held encoded), read after the
        :meth:`lookup` that gave ``version``. Held only if no later lookup saw a newer
        version: an answer read before a commit must not land in the cache of the state after
        it (a read that awaited may have lost that race)."""
        if version is None or version != self._version or size > MAX_VIEW_BYTES:
            return
        if len(self._views) >= MAX_VIEWS or self._bytes + size > MAX_VIEW_BYTES:
            self._clear()
        self._views[key] = answer
        self._bytes += size

    def _clear(self) -> None:
        self._views.clear()
        self._bytes = 0
