"""In-process harness for the public API route tests: a gateway app on a fresh SQLite file,
driven through ``httpx.ASGITransport``, with a controllable clock.

Its fixtures ``env`` and ``make_env`` are registered for every module by ``pytest_plugins`` in
conftest.py; route test modules import only the helpers they call.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import identity
from gateway.app import create_app
from gateway.domain import provisioning as prov
from gateway.settings import Settings
from gateway.store.records import Inbox, LoggedEvent
from tests.postgres_helpers import fresh_database

# 2026-01-10T12:00:00Z: a fixed, mid-day start so calendar-day arithmetic is predictable.
T0 = 1_768_046_400.0
PUBLIC = "/public/api/v1"
NOT_FOUND = {"status": 404, "error": "Not Found"}
CONTACT_KEYS = {"source_id", "pubsub_token", "id", "name", "email", "phone_number"}
CONTACT_RECORD_KEYS = {
    "id", "name", "email", "phone_number", "account_id", "created_at", "updated_at",
    "additional_attributes", "identifier", "custom_attributes", "last_activity_at",
    "contact_type", "middle_name", "last_name", "location", "country_code", "blocked",
    "company_id",
}  # fmt: skip
CONVERSATION_KEYS = {
    "id", "uuid", "inbox_id", "contact_last_seen_at", "status", "agent_last_seen_at",
    "messages", "contact",
}  # fmt: skip
MESSAGE_KEYS = {
    "id", "content", "message_type", "content_type", "content_attributes", "created_at",
    "conversation_id",
}  # fmt: skip
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Clock:
    """A mutable clock for ``create_app(clock=...)``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    app: Any
    client: httpx.AsyncClient
    settings: Settings
    clock: Clock
    account_id: int
    inbox: Inbox
    events: list[LoggedEvent] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.app.state.ctx.store

    @property
    def base(self) -> str:
        return inbox_url(self.inbox)

    async def new_inbox(self, **kw: Any) -> Inbox:
        new = prov.NewInbox(account_id=self.account_id, name=kw.pop("name", "Support API"), **kw)
        inbox: Inbox = await self.store.write(prov.create_inbox, new, self.clock())
        return inbox

    def hash(self, identifier: str, inbox: Inbox | None = None) -> str:
        return identity.identifier_hash((inbox or self.inbox).hmac_token, identifier)

    async def contact(self, inbox: Inbox | None = None, **body: Any) -> dict[str, Any]:
        r = await self.client.post(inbox_url(inbox or self.inbox) + "/contacts", json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def contact_url(self, source_id: str, inbox: Inbox | None = None) -> str:
        return f"{inbox_url(inbox or self.inbox)}/contacts/{source_id}"

    def conv_url(
        self, source_id: str, conversation_id: int | str, inbox: Inbox | None = None
    ) -> str:
        return f"{self.contact_url(source_id, inbox)}/conversations/{conversation_id}"

    async def conversation(
        self, source_id: str, inbox: Inbox | None = None, **body: Any
    ) -> dict[str, Any]:
        url = self.contact_url(source_id, inbox) + "/conversations"
        r = await self.client.post(url, json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def session(self, inbox: Inbox | None = None, **body: Any) -> tuple[str, int]:
        """A new contact session with one conversation: ``(source_id, display_id)``."""
        contact = await self.contact(inbox, **body)
        conversation = await self.conversation(contact["source_id"], inbox)
        return contact["source_id"], conversation["id"]

    async def send(self, source_id: str, conversation_id: int, **body: Any) -> dict[str, Any]:
        r = await self.client.post(
            self.conv_url(source_id, conversation_id) + "/messages", json=body
        )
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def messages(
        self, source_id: str, conversation_id: int, **params: Any
    ) -> list[dict[str, Any]]:
        url = self.conv_url(source_id, conversation_id) + "/messages"
        r = await self.client.get(url, params=params)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()
        return data


def inbox_url(inbox: Inbox) -> str:
    return f"{PUBLIC}/inboxes/{inbox.identifier}"


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        database_url=f"sqlite:///{tmp_path}/t.db",
        data_dir=tmp_path,
        secret_key="test-secret",
        sqlite_synchronous="normal",
    )
    return base.with_(**overrides)


EnvFactory = Callable[..., contextlib.AbstractAsyncContextManager[Env]]


@pytest.fixture(name="make_env")
def make_env_fixture(tmp_path: Path, store_engine: str) -> EnvFactory:
    """``async with make_env(max_body_bytes=100, inbox={"csat_survey_enabled": True}) as env``:
    an app with these Settings overrides and one inbox built from ``inbox`` kwargs, on the
    engine of ``store_engine`` (``pytest --store=postgresql|both``)."""
    counter = 0

    @contextlib.asynccontextmanager
    async def factory(
        *, inbox: dict[str, Any] | None = None, clock: Clock | None = None, **overrides: Any
    ) -> AsyncIterator[Env]:
        nonlocal counter
        counter += 1
        root = tmp_path / f"env{counter}"
        root.mkdir()
        async with contextlib.AsyncExitStack() as stack:
            # On PostgreSQL, a fresh database each (CI re-runs these route tests there, to hold
            # every operation to both engines' SQL).
            if store_engine == "postgresql" and "database_url" not in overrides:
                overrides["database_url"] = await stack.enter_async_context(fresh_database())
            async with _app_env(root, inbox, clock, overrides) as env:
                yield env

    return factory


@contextlib.asynccontextmanager
async def _app_env(
    root: Path, inbox: dict[str, Any] | None, clock: Clock | None, overrides: dict[str, Any]
) -> AsyncIterator[Env]:
    settings = settings_for(root, **overrides)
    events: list[LoggedEvent] = []
    clk = clock or Clock()
    app = create_app(settings, clock=clk, on_events=events.extend)
    async with app.router.lifespan_context(app):
        store = app.state.ctx.store
        account = await store.write(prov.create_account, "Acme", clk())
        new = prov.NewInbox(account_id=account.id, name="Support API", **(inbox or {}))
        created = await store.write(prov.create_inbox, new, clk())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Env(app, c, settings, clk, account.id, created, events)


@pytest.fixture(name="env")
async def env_fixture(make_env: EnvFactory) -> AsyncIterator[Env]:
    async with make_env() as e:
        yield e


def attachment_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "attachments"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
