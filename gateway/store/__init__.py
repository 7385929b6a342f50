"""Storage engines: the ``Store`` interface and its implementations (SQLite, PostgreSQL),
which run the sans-I/O operations of ``gateway.domain`` and ``gateway.views``."""

from __future__ import annotations

from ..settings import Settings, SettingsError
from .base import Conflict, Store, StoreError, StoreUnavailable, UniqueViolation
from .sqlite import SQLiteStore

__all__ = [
    "Conflict",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UniqueViolation",
    "open_store",
]


def open_store(settings: Settings) -> Store:
    """The Store the database URL names (not started yet)."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return SQLiteStore(settings.sqlite_path, synchronous=settings.sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # asyncpg is loaded only by those who use it

        return PostgresStore(url, pool_size=settings.database_pool_size)
    raise SettingsError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")
