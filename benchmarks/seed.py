"""Provisioning for a benchmark, straight through the store before the server starts.

Ten thousand contacts through the public API would take longer than the benchmark; the same
store operations the API runs (one transaction per contact: the session, its contact, one
conversation) take a few seconds with the store's group commit. Agents are users of the account
who answer the inbox, as ``inboxgate user create --inbox`` makes them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.domain import contacts, conversations, provisioning
from gateway.settings import Settings
from gateway.store import open_store
from gateway.store.records import ContactInbox, Conversation, Inbox
from gateway.store.sql import Op

WRITERS = 64  # concurrent writes: the store commits them in groups
SEP = (",", ":")  # identifiers as compact as a browser client sends them


@dataclass(frozen=True)
class Customer:
    source_id: str
    pubsub_token: str
    conversation: int  # display id

    def identifier(self) -> str:
        return json.dumps(
            {"channel": "RoomChannel", "pubsub_token": self.pubsub_token}, separators=SEP
        )


@dataclass(frozen=True)
class Agent:
    user_id: int
    account_id: int
    pubsub_token: str

    def identifier(self) -> str:
        params = {"channel": "RoomChannel", "pubsub_token": self.pubsub_token}
        return json.dumps(
            params | {"account_id": self.account_id, "user_id": self.user_id}, separators=SEP
        )


@dataclass
class Seed:
    inbox: str  # the public identifier
    account_id: int
    customers: list[Customer] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)

    def api(self, path: str = "") -> str:
        return f"/public/api/v1/inboxes/{self.inbox}{path}"

    def contact_path(self, c: Customer) -> str:
        return self.api(f"/contacts/{c.source_id}")

    def conversation_path(self, c: Customer) -> str:
        return self.api(f"/contacts/{c.source_id}/conversations/{c.conversation}")


def _link(_: object) -> str:
    return ""


def _customer(inbox: Inbox, name: str, now: float) -> Op[tuple[ContactInbox, Conversation]]:
    """A contact session and one conversation in one transaction, as the API makes them."""
    fields = contacts.ContactFields(name=name)
    session, _contact, _ = yield from contacts.create_session(
        inbox.id, inbox.account_id, None, fields, None, now
    )
    created = yield from conversations.create(inbox, session, {}, _link, now)
    return session, created.conversation


async def _seed(settings: Settings, customers: int, agents: int) -> Seed:
    store = open_store(settings)
    await store.start()
    try:
        now = store.clock()
        account = await store.write(provisioning.create_account, "Bench", now)
        new = provisioning.NewInbox(account_id=account.id, name="Bench inbox")
        inbox = await store.write(provisioning.create_inbox, new, now)
        seed = Seed(inbox=inbox.identifier, account_id=account.id)
        for i in range(agents):
            user = await store.write(
                provisioning.create_user, account.id, f"Agent {i}", f"agent-{i}@bench.local",
                "agent", secrets.token_urlsafe(24), now,
            )  # fmt: skip
            await store.write(provisioning.add_inbox_member, inbox.id, user.id, now)
            seed.agents.append(Agent(user.id, account.id, user.pubsub_token))
        made: list[Customer | None] = [None] * customers
        queue = iter(range(customers))

        async def writer() -> None:
            for i in queue:
                session, conv = await store.write(_customer, inbox, f"Customer {i}", now)
                made[i] = Customer(session.source_id, session.pubsub_token, conv.display_id)

        await asyncio.gather(*(writer() for _ in range(min(WRITERS, max(1, customers)))))
        seed.customers = [c for c in made if c is not None]
        return seed
    finally:
        await store.close()


def seed(env: Mapping[str, str], *, customers: int, agents: int = 0) -> Seed:
    """Provision an account, an inbox, ``agents`` agents and ``customers`` contacts with one
    conversation each, in the database ``env`` names (``INBOXGATE_*``, as the server gets)."""
    settings = Settings.from_env(dict(env))
    return asyncio.run(_seed(settings, customers, agents))


def as_json(s: Seed) -> dict[str, Any]:
    return {
        "inbox": s.inbox,
        "account_id": s.account_id,
        "customers": [[c.source_id, c.pubsub_token, c.conversation] for c in s.customers],
        "agents": [[a.user_id, a.account_id, a.pubsub_token] for a in s.agents],
    }


def from_json(data: dict[str, Any]) -> Seed:
    return Seed(
        inbox=data["inbox"],
        account_id=data["account_id"],
        customers=[Customer(*c) for c in data["customers"]],
        agents=[Agent(*a) for a in data["agents"]],
    )
