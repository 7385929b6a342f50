"""Fixtures shared by the whole suite. The Store contract and its helpers live in
``store_contract``; store fixtures here stay generic.

The fixture modules below are registered once, here (``pytest_plugins``): a test module uses
their fixtures by name and imports from them only the helpers it calls."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.store_contract", "tests.broker_contract")

pytest_plugins = [
    "tests.postgres_helpers",  # two_nodes: two PostgresStores on one fresh database
    "tests.routes_helpers",  # env, make_env: the app in process, on the store under test
    "tests.redis_helpers",  # redis_url, prefix, client, own_redis
    "tests.webhook_helpers",  # hooks: the webhook worker in process
    "tests.cable_socket_helpers",  # tenant, http: for a module's own ``server`` fixture
    "tests.browser_fixtures",  # browser, page fixtures of the browser suites
]

from gateway.store import SQLiteStore  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _docs_state() -> dict[str, str]:
    return {
        str(path.relative_to(DOCS)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(DOCS.rglob("*"))
        if path.is_file()
    }


STORES = ("sqlite", "postgresql")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=(*STORES, "both"),
        default=os.environ.get("INBOXGATE_TEST_STORE", "sqlite"),
        help="the engine under the in-process route, agent API and webhook tests (the "
        "``store_engine`` fixture); 'both' runs each of them on SQLite and on a fresh "
        "PostgreSQL database. Default: $INBOXGATE_TEST_STORE, else sqlite.",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Only 'both' parametrises: with one engine the test ids stay as they are.
    if "store_engine" in metafunc.fixturenames and metafunc.config.getoption("store") == "both":
        metafunc.parametrize("store_engine", STORES)


@pytest.fixture
def store_engine(request: pytest.FixtureRequest) -> str:
    """The engine the route suites run on: ``--store`` (or INBOXGATE_TEST_STORE) when it
    names one; with ``--store=both``, each of them in turn (``pytest_generate_tests``)."""
    engine: str = request.config.getoption("store")
    return engine


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
