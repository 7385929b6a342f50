"""Shared pieces of the in-process agent API tests (conversations and messages): the staff of
an :class:`~tests.routes_helpers.Env` account and a small client for ``/api/v1/accounts/{id}``.

* ``admin``: an administrator (sees every inbox);
* ``agent``: an agent who is a member of ``env.inbox``;
* ``outsider``: an agent of the same account without access to ``env.inbox``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from gateway.domain import provisioning as prov
from gateway.store.records import Inbox, LoggedEvent, User
from tests.routes_helpers import Env

ADMIN_TOKEN = "admin-token-0123456789abcdef"
AGENT_TOKEN = "agent-token-0123456789abcdef"
OUTSIDER_TOKEN = "outsider-token-0123456789ab"

NOT_FOUND = {"error": "Resource could not be found"}
NOT_AUTHORIZED = {"error": "You are not authorized to do this action"}


@dataclass
class Api:
    """Requests to ``/api/v1/accounts/{account_id}`` with one user's token."""

    env: Env
    token: str
    account_id: int

    def url(self, path: str) -> str:
        return f"/api/v1/accounts/{self.account_id}{path}"

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"api_access_token": self.token, **kw.pop("headers", {})}
        return await self.env.client.request(method, self.url(path), headers=headers, **kw)

    async def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.request(method, path, **kw)
        assert r.status_code == 200, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.ok("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Any:
        return await self.ok("POST", path, **kw)


@dataclass
class Staff:
    env: Env
    admin: User
    agent: User
    outsider: User

    @property
    def admin_api(self) -> Api:
        return Api(self.env, ADMIN_TOKEN, self.env.account_id)

    @property
    def agent_api(self) -> Api:
        return Api(self.env, AGENT_TOKEN, self.env.account_id)

    @property
    def outsider_api(self) -> Api:
        return Api(self.env, OUTSIDER_TOKEN, self.env.account_id)


async def make_staff(env: Env) -> Staff:
    def create(name: str, role: str, token: str) -> Any:
        return env.store.write(
            prov.create_user, env.account_id, name, f"{name.lower()}@acme.test", role, token,
            env.clock(),
        )  # fmt: skip

    admin = await create("Ada", "administrator", ADMIN_TOKEN)
    agent = await create("Bob", "agent", AGENT_TOKEN)
    outsider = await create("Olga", "agent", OUTSIDER_TOKEN)
    await env.store.write(prov.add_inbox_member, env.inbox.id, agent.id, env.clock())
    return Staff(env, admin, agent, outsider)


async def customer_conversation(
    env: Env, inbox: Inbox | None = None, **contact: Any
) -> tuple[dict[str, Any], int]:
    """A contact (public API) with one conversation: ``(contact, display_id)``."""
    created = await env.contact(inbox, **contact)
    conversation = await env.conversation(created["source_id"], inbox)
    return created, int(conversation["id"])


def streams_of(events: list[LoggedEvent], name: str) -> list[str]:
    return [e.stream for e in events if e.name == name]


def names(events: list[LoggedEvent]) -> list[str]:
    return [e.name for e in events if e.stream.startswith("inbox:")]
