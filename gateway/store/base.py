"""The Store interface. Every implementation runs the same sans-I/O operations (those of
``gateway.domain`` and ``gateway.views``) and passes the same contract suite
(``tests/store_contract.py``).

StoreError
├── StoreUnavailable   the engine cannot be reached or is shutting down
├── UniqueViolation    a write broke a unique constraint (another writer got there first)
└── Conflict           what an operation read changed before it wrote; it is run again
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .sql import Op

T = TypeVar("T")


class StoreError(Exception):
    """Root of store failures that are not the caller's fault."""


class StoreUnavailable(StoreError):
    """The database cannot take the request now (closed, unreachable, overloaded)."""


class UniqueViolation(StoreError):
    """An operation inserted or updated a row that a unique constraint already holds. Both
    engines raise this one type (not ``sqlite3.IntegrityError`` or asyncpg's
    ``UniqueViolationError``), so callers catch a lost insert race the same way on either;
    the engine's own exception is its ``__cause__``."""


class Conflict(StoreError):
    """Raised by an operation whose write found its premise changed (an optimistic check in
    its WHERE matched nothing, so it wrote nothing): the store runs it again from the start,
    as it does after a serialization failure. Callers see it only if that keeps happening."""


class Store(abc.ABC):
    """Runs operations. ``write`` runs one in a transaction and returns only after commit, so
    an acknowledged result is durable; ``read`` runs one on a consistent snapshot."""

    clock: Callable[[], float] = time.time
    # The SQL dialect the engine speaks ("sqlite", "postgresql"): what ``sql.dialect()`` answers.
    dialect: str = ""

    @abc.abstractmethod
    async def start(self) -> None:
        """Open connections and apply pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish queued writes, then release every connection."""

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""

    @abc.abstractmethod
    async def write(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``op(*args, **kwargs)`` in its own transaction (savepoint in a group commit)."""

    async def write_on_commit(
        self, on_commit: Callable[[T], None], op: Callable[..., Op[T]], *args: Any, **kwargs: Any
    ) -> T:
        """``write``, and ``on_commit(result)`` called on the event loop as soon as the commit
        is known, before the caller gets the result; if it raises, the caller gets its error.
        What a commit must set off (its events published) then does not wait for the caller's
        turn of the loop: an engine that learns of the commit in a callback (SQLite's writer
        thread) calls it there, even for a caller that was cancelled meanwhile; this default
        calls it where the caller resumes."""
        result = await self.write(op, *args, **kwargs)
        on_commit(result)
        return result

    @abc.abstractmethod
    async def read(self, op: Callable[..., Op[T]], *args: Any, **kwargs: Any) -> T:
        """Run a read-only ``op`` on a snapshot of committed data."""

    def data_version(self) -> object | None:
        """A token that compares equal between two calls only if no commit (by any process)
        came between them, read on the calling (loop) thread; None when the engine cannot
        tell cheaply, and then nothing may be cached on it (``services.view_cache``)."""
        return None

    async def __aenter__(self) -> Store:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
