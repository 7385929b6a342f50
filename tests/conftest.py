"""Fixtures shared by the whole suite. The Store contract and its helpers live in
``store_contract``; store fixtures here stay generic."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.store_contract", "tests.broker_contract")

from gateway.store import SQLiteStore  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _docs_state() -> dict[str, str]:
    return {
        str(path.relative_to(DOCS)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(DOCS.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="session", autouse=True)
def docs_stay_untouched() -> Iterator[None]:
    """Tests write to temporary directories only: docs/ (the README's screenshots) changes only
    through ``python -m tests.screenshots``. Fails the run when any test wrote there."""
    before = _docs_state()
    yield
    assert _docs_state() == before, "a test changed docs/: write to tmp_path instead"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """A started SQLiteStore on a fresh file, closed after the test."""
    async with SQLiteStore(tmp_path / "inboxgate.db") as store:
        yield store
