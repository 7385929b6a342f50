"""SQL statements and store calls per public API request, on SQLite or PostgreSQL.

Drives the real app in process (httpx over ASGI) and wraps every ``Store.read`` /
``Store.write`` so each operation's queries are counted as they are yielded. For each request
it prints the store calls (a short read runs on the loop on SQLite and without a transaction on
PostgreSQL; another read is a hop to a reader thread) and the statements they ran; on
PostgreSQL a transaction adds BEGIN and COMMIT, two more round trips per call (a lazy write
runs without one unless it asks for one).

    python -m benchmarks.statements [--engine sqlite|postgresql] [--webhook]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from gateway.app import create_app
from gateway.domain import provisioning as prov
from gateway.domain import webhooks
from gateway.settings import Settings
from gateway.store.base import Store
from gateway.store.sql import (
    ATOMIC,
    Op,
    Query,
    Rows,
    for_the_engine,
    is_lazy_transaction,
    is_short_read,
)

Call = tuple[str, str, list[str]]  # (short|read|write, operation, statements)


class Counter:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def wrap(self, kind: str, op: Callable[..., Op[Any]]) -> Callable[..., Op[Any]]:
        statements: list[str] = []
        self.calls.append((kind, getattr(op, "__qualname__", repr(op)), statements))

        def counted(*args: Any, **kwargs: Any) -> Op[Any]:
            statements.clear()  # a retried operation counts once
            gen = op(*args, **kwargs)
            try:
                query: Query = next(gen)
                while True:
                    if not for_the_engine(query):
                        statements.append(query.sql)
                    elif query is ATOMIC:
                        statements.append("BEGIN")  # a lazy write asked for a transaction
                    result: Rows = yield query
                    query = gen.send(result)
            except StopIteration as stop:
                return stop.value

        return functools.wraps(op)(counted)  # keeps the short_read mark

    @contextlib.contextmanager
    def on(self, store: Store) -> Iterator[None]:
        read, write, write_on_commit = store.read, store.write, store.write_on_commit

        async def counted_read(op: Callable[..., Op[Any]], *a: Any, **k: Any) -> Any:
            kind = "short" if is_short_read(op) else "read"
            return await read(self.wrap(kind, op), *a, **k)

        def kind_of(op: Callable[..., Op[Any]]) -> str:
            return "lazy" if is_lazy_transaction(op) else "write"

        async def counted_write(op: Callable[..., Op[Any]], *a: Any, **k: Any) -> Any:
            return await write(self.wrap(kind_of(op), op), *a, **k)

        async def counted_write_on_commit(
            then: Callable[[Any], None], op: Callable[..., Op[Any]], *a: Any, **k: Any
        ) -> Any:
            return await write_on_commit(then, self.wrap(kind_of(op), op), *a, **k)

        store.read, store.write = counted_read, counted_write  # type: ignore[method-assign]
        store.write_on_commit = counted_write_on_commit  # type: ignore[method-assign]
        try:
            yield
        finally:
            store.read, store.write = read, write  # type: ignore[method-assign]
            store.write_on_commit = write_on_commit  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def database(engine: str) -> AsyncIterator[str | None]:
    if engine == "sqlite":
        yield None
        return
    from tests.postgres_helpers import fresh_database

    async with fresh_database() as url:
        yield url


async def run(engine: str, webhook: bool, verbose: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with database(engine) as url:
            settings = Settings(
                database_url=url or f"sqlite:///{tmp}/s.db", data_dir=Path(tmp),
                secret_key="bench", rate_limit_per_ip=0,
            )  # fmt: skip
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                await measure(app, webhook, verbose)


async def measure(app: Any, webhook: bool, verbose: bool) -> None:
    store: Store = app.state.ctx.store
    now = time.time()
    account = await store.write(prov.create_account, "Bench", now)
    new_inbox = prov.NewInbox(account_id=account.id, name="B")
    inbox = await store.write(prov.create_inbox, new_inbox, now)
    if webhook:
        changes = webhooks.Changes(url="http://127.0.0.1:9/hook")
        await store.write(webhooks.create_webhook, account.id, changes, now)
    transport = httpx.ASGITransport(app=app)
    counter = Counter()
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        api = f"/public/api/v1/inboxes/{inbox.identifier}"
        contact = (await client.post(f"{api}/contacts", json={"name": "B"})).json()
        conv_api = f"{api}/contacts/{contact['source_id']}/conversations"
        conv = (await client.post(conv_api)).json()
        messages = f"{conv_api}/{conv['id']}/messages"
        await client.post(messages, json={"content": "warm", "echo_id": "warm"})
        requests = [
            ("POST message", "POST", messages, {"content": "hi", "echo_id": "e1"}),
            ("POST message (echo_id again)", "POST", messages, {"content": "hi", "echo_id": "e1"}),
            ("GET messages", "GET", messages, None),
            ("GET contact", "GET", f"{api}/contacts/{contact['source_id']}", None),
            ("GET conversations", "GET", conv_api, None),
        ]
        print(
            f"{'request':30} {'short reads':>11} {'other reads':>11} {'writes':>6} "
            f"{'statements':>10} {'PG trips':>8}"
        )
        for label, method, path, body in requests:
            counter.calls.clear()
            with counter.on(store):
                r = await client.request(method, path, json=body)
            assert r.status_code == 200, r.text
            kinds = [kind for kind, _, _ in counter.calls]
            short, reads, writes = (kinds.count(k) for k in ("short", "read", "write"))
            # A lazy write that asked for a transaction counted BEGIN among its statements.
            began = sum(1 for k, _, s in counter.calls if k == "lazy" and "BEGIN" in s)
            writes += kinds.count("lazy")
            statements = sum(len(s) for _, _, s in counter.calls) - began
            trips = statements + 2 * (reads + writes - kinds.count("lazy") + began)
            print(f"{label:30} {short:>11} {reads:>11} {writes:>6} {statements:>10} {trips:>8}")
            if verbose:
                for kind, name, sqls in counter.calls:
                    print(f"    {kind} {name}: {len(sqls)}")
                    for sql in sqls:
                        print(f"        {sql[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--webhook", action="store_true", help="with one account webhook")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every statement")
    args = parser.parse_args()
    asyncio.run(run(args.engine, args.webhook, args.verbose))


if __name__ == "__main__":
    main()
