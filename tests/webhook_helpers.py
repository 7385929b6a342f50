"""Shared by the webhook outbox and worker tests: a store, a Context and a world with an API
inbox whose ``webhook_url`` is set, plus a recording mock receiver."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk import protocol as p
from gateway.attachments import FileStore
from gateway.domain import outbox, webhooks
from gateway.services.context import Context
from gateway.store import SQLiteStore, Store
from gateway.store.postgres import PostgresStore
from gateway.store.records import LoggedEvent, Message
from gateway.store.sql import Op, one
from gateway.webhooks.worker import WebhookWorker
from tests.postgres_helpers import fresh_database
from tests.routes_helpers import Clock, settings_for
from tests.store_contract import T0, World, make_world

ACCOUNT_HOOK = "http://receiver.test/account"
INBOX_HOOK = "http://receiver.test/inbox"
ALL = list(p.WEBHOOK_EVENTS)
CONVERSATION_PUSH_KEYS = set(p.ConversationEventData.__struct_fields__) - {"account_id"}


@dataclass
class Hooks:
    ctx: Context
    world: World
    clock: Clock
    logged: list[LoggedEvent]
    requests: list[httpx.Request] = field(default_factory=list)
    # Status answered per request, in order; 200 once they run out.
    answers: list[int] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.ctx.store

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.answers.pop(0) if self.answers else 200
        return httpx.Response(status, text="ignored")

    def worker(self, **kw: Any) -> WebhookWorker:
        return WebhookWorker(self.ctx, transport=httpx.MockTransport(self.handler), **kw)

    async def hook(self, url: str = ACCOUNT_HOOK, **changes: Any) -> webhooks.Webhook:
        view = await self.store.write(
            webhooks.create_webhook, self.world.account.id,
            webhooks.Changes(url=url, **changes), self.clock(),
        )  # fmt: skip
        hook: webhooks.Webhook = view.webhook
        return hook

    async def deliveries(self) -> list[outbox.Delivery]:
        found: list[outbox.Delivery] = await self.store.read(outbox.list_deliveries)
        return found


@pytest.fixture(name="hooks")
async def hooks_fixture(tmp_path: Path, store_engine: str) -> AsyncIterator[Hooks]:
    settings = settings_for(
        tmp_path, webhook_allow_private=True, webhook_max_attempts=3, webhook_backoff_base=10.0,
        webhook_backoff_max=100.0,
    )  # fmt: skip
    clock = Clock(T0)
    async with contextlib.AsyncExitStack() as stack:
        store: Store = SQLiteStore(tmp_path / "w.db", synchronous="normal", clock=clock)
        if store_engine == "postgresql":  # as the route tests
            store = PostgresStore(await stack.enter_async_context(fresh_database()), clock=clock)
        await stack.enter_async_context(store)
        files = FileStore(tmp_path / "files", "key", 3600, 10**6)
        logged: list[LoggedEvent] = []
        ctx = Context(
            store=store, settings=settings, files=files, clock=clock, event_sinks=[logged.extend]
        )
        world = await make_world(store, webhook_url=INBOX_HOOK)
        yield Hooks(ctx=ctx, world=world, clock=clock, logged=logged)


def body(delivery: outbox.Delivery) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(delivery.body)
    return data


async def inbox_secret(hooks: Hooks) -> p.InboxWebhookSecret:
    world = hooks.world
    result: p.InboxWebhookSecret = await hooks.store.write(
        webhooks.inbox_secret, world.account.id, world.inbox.id, T0
    )
    return result


def prov_set_webhook_url(inbox_id: int, url: str | None) -> Op[None]:
    yield from one("UPDATE inboxes SET webhook_url = ? WHERE id = ? RETURNING id", url, inbox_id)


def get_message(message_id: int) -> Op[Message]:
    row = yield from one(f"SELECT {Message.COLUMNS} FROM messages WHERE id = ?", message_id)
    assert row is not None
    return Message.from_row(row)
