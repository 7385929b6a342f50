"""Secrets of the deployment kept in its database (migration 7), so that nodes sharing the
database share them without any other configuration."""

from __future__ import annotations

from ..store.sql import Op, execute, scalar

SECRET_KEY = "secret_key"


def get_or_create(name: str, candidate: str) -> Op[str]:
    """The secret called ``name``; ``candidate`` becomes it if there is none yet.

    Race-safe across nodes starting together: a concurrent insert of the same name waits on
    the primary key until the first one commits and then does nothing, and the SELECT (a new
    statement, so a new snapshot under PostgreSQL's READ COMMITTED) reads the winner's value."""
    yield from execute(
        "INSERT INTO instance_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        name, candidate,
    )  # fmt: skip
    value = yield from scalar("SELECT value FROM instance_secrets WHERE name = ?", name)
    assert isinstance(value, str)
    return value
