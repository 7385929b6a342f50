"""Fixtures shared by the whole suite. The Store contract and its helpers live in
``store_contract``; store fixtures here stay generic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.store_contract", "tests.broker_contract")

from gateway.store import SQLiteStore  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A started SQLiteStore on a fresh file, closed after the test."""
    async with SQLiteStore(tmp_path / "inboxgate.db") as store:
        yield store
