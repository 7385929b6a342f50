"""Real PostgreSQL for tests: a fresh, uniquely named database per test, dropped afterwards,
and a loopback TCP proxy that can cut or black-hole the way to the server.

The server is ``INBOXGATE_TEST_POSTGRES_URL`` (default: the CI machine's
``postgresql://postgres@127.0.0.1:5432/test``). Off CI, tests skip when it cannot be reached;
with ``CI=true`` they fail instead, so CI never silently skips the PostgreSQL suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import urllib.parse
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from gateway.store.postgres import PostgresStore

ADMIN_URL = os.environ.get(
    "INBOXGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def with_database(url: str, database: str, *, host: str | None = None) -> str:
    """``url`` pointing at another database (and, if given, another host:port)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if host is not None:
        netloc = (netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else "") + host
    return urllib.parse.urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(ADMIN_URL, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {ADMIN_URL} is required in CI: {exc!r}")
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL} ({exc!r}); set CI=true to require")


async def create_database(template: str | None = None) -> str:
    """A new database, empty or a copy of ``template`` (a database no one is connected to);
    returns its name."""
    name = f"inboxgate_t_{secrets.token_hex(6)}"
    conn = await _admin()
    try:
        await conn.execute(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        )
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await _admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a database made for this test, dropped when the block exits."""
    name = await create_database()
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        await drop_database(name)


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one fresh database: what two gateway nodes are to each other. Registered
    for every module by ``pytest_plugins`` in conftest.py."""
    async with (
        fresh_database() as url,
        PostgresStore(url, pool_size=8) as a,
        PostgresStore(url, pool_size=8) as b,
    ):
        yield a, b


@contextlib.contextmanager
def fresh_database_sync() -> Iterator[str]:
    """:func:`fresh_database` for synchronous fixtures (real-socket server tests)."""
    name = asyncio.run(create_database())
    try:
        yield with_database(ADMIN_URL, name)
    finally:
        asyncio.run(drop_database(name))


class TcpProxy:
    """127.0.0.1:<port> forwarding to PostgreSQL. ``cut()`` drops every connection and refuses
    new ones (a stopped server); ``blackhole()`` accepts and never answers (a dead network);
    ``restore()`` forwards again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "forward"
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, database_url: str) -> str:
        parts = urllib.parse.urlsplit(database_url)
        return with_database(database_url, parts.path.lstrip("/"), host=f"127.0.0.1:{self.port}")

    def cut(self) -> None:
        self.mode = "refuse"
        self._drop_all()

    def blackhole(self) -> None:
        self.mode = "blackhole"
        self._drop_all()

    def restore(self) -> None:
        self.mode = "forward"

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode == "blackhole":
            return  # held open, never answered, until the next cut/blackhole/close
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            dst.transport.abort()


class ThreadedProxy:
    """A :class:`TcpProxy` on its own event loop thread, for synchronous tests (``call("cut")``
    from any thread)."""

    def __init__(self) -> None:
        target = urllib.parse.urlsplit(ADMIN_URL)
        self.proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> TcpProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self.loop).result(10)
        return self.proxy

    def call(self, method: str) -> None:
        self.loop.call_soon_threadsafe(getattr(self.proxy, method))

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
