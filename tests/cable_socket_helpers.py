"""Shared pieces of the real-socket ``/cable`` tests (``test_cable_handshake``,
``test_cable_fanout``, ``test_cable_ext``).

* :class:`Tenant`: a fresh account on a running gateway with a CSAT inbox, a second inbox, an
  administrator, an agent who is a member of the first inbox and an agent who is a member of the
  second one only (the "outsider").
* :class:`Customer`: one contact session, driven over the public API with httpx.
* Frame readers that step over the background noise every connection may see at any time
  (pings, ``presence.update``) so a test can say exactly what else must arrive, in order.

"Receives nothing" is asserted with a marker rather than a sleep: after the event under test,
the test causes a second event that the negative subscriber *does* receive, and asserts that
this marker is the first thing it gets.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import RECV_TIMEOUT, CableClient, agent_identifier, contact_identifier
from tests.server_helpers import GatewayProcess, hmac_hex

PROTOCOLS: list[str | None] = [None, cp.JSON, cp.EXT_JSON, cp.MSGPACK, cp.EXT_MSGPACK]
EXTENDED = [cp.EXT_JSON, cp.EXT_MSGPACK]
# Events that may reach a connection at any moment without the test asking for them.
NOISE_EVENTS = frozenset({"presence.update"})
# Account-wide events a negative subscriber may legitimately hear (Chatwoot sends contact.* to
# every agent of the account); never part of what a test checks.
ACCOUNT_EVENTS = ("contact.",)


def proto_id(protocol: str | None) -> str:
    return protocol or "none"


# -- fixtures (each test module brings its own module-scoped ``server``) ----------------------
# Registered for every module by ``pytest_plugins`` in conftest.py.


@pytest.fixture(name="tenant")
def tenant_fixture(server: GatewayProcess) -> Tenant:
    """A fresh account per test: nothing another test did can reach its agents."""
    return Tenant.create(server)


@pytest.fixture(name="http")
async def http_fixture(server: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10.0) as client:
        yield client


# -- frames ----------------------------------------------------------------------------------


def event_name(frame: cp.ServerFrame) -> str | None:
    if isinstance(frame, cp.Broadcast) and isinstance(frame.message, dict):
        name = frame.message.get("event")
        return name if isinstance(name, str) else None
    return None


def is_noise(frame: cp.ServerFrame) -> bool:
    if isinstance(frame, cp.Ping):
        return True
    name = event_name(frame)
    return name is not None and (name in NOISE_EVENTS or name.startswith(ACCOUNT_EVENTS))


async def read(cable: CableClient, timeout: float = RECV_TIMEOUT) -> cp.ServerFrame:
    """The next frame that is not noise, within ``timeout`` overall (pings keep coming)."""
    with anyio.fail_after(timeout):
        while True:
            frame = await cable.recv(timeout)
            if not is_noise(frame):
                return frame


async def next_event(cable: CableClient, timeout: float = RECV_TIMEOUT) -> cp.Broadcast:
    """The next broadcast that is not noise; any other frame fails the test."""
    frame = await read(cable, timeout)
    assert isinstance(frame, cp.Broadcast), f"expected a broadcast, got {frame!r}"
    return frame


async def next_events(
    cable: CableClient, count: int, timeout: float = RECV_TIMEOUT
) -> list[cp.Broadcast]:
    """The next ``count`` broadcasts (noise skipped); on a timeout, says which ones came."""
    got: list[cp.Broadcast] = []
    try:
        for _ in range(count):
            got.append(await next_event(cable, timeout))
    except TimeoutError:
        raise AssertionError(
            f"expected {count} events, got {len(got)} {summary(got)}, then none for {timeout} s"
        ) from None
    return got


async def next_named(cable: CableClient, name: str, timeout: float = RECV_TIMEOUT) -> cp.Broadcast:
    """The next broadcast, which must be a ``name`` event."""
    frame = await next_event(cable, timeout)
    assert event_name(frame) == name, f"expected {name}, got {frame!r}"
    return frame


def data(frame: cp.Broadcast) -> dict[str, Any]:
    payload = frame.message["data"]
    assert isinstance(payload, dict)
    return payload


def summary(frames: list[cp.Broadcast]) -> list[tuple[str | None, Any]]:
    """``(event, data.id)`` per frame: what most assertions compare."""
    return [(event_name(f), data(f).get("id")) for f in frames]


def encoded_identifier(identifier: str, encoding: cp.Encoding) -> str | bytes:
    """How ``identifier`` appears on the wire, for byte-exact echo checks."""
    if encoding == "json":
        return json.dumps(identifier)
    return msgspec.msgpack.encode(identifier)


def assert_echoed(cable: CableClient, identifier: str) -> None:
    """The last raw frame carries ``identifier`` exactly as sent, not re-serialised."""
    raw = cable.last_raw
    assert raw is not None
    wire = encoded_identifier(identifier, cable.encoding)
    assert wire in raw, (wire, raw)  # type: ignore[operator]


def assert_frame_type(cable: CableClient) -> None:
    """Msgpack protocols speak binary frames, JSON ones text frames."""
    expected = bytes if cable.encoding == "msgpack" else str
    assert isinstance(cable.last_raw, expected), cable.last_raw


async def subscribe_ok(
    cable: CableClient, identifier: str, history: cp.HistoryRequest | None = None
) -> None:
    await cable.subscribe(identifier, history)
    frame = await read(cable)
    assert isinstance(frame, cp.ConfirmSubscription), f"expected confirm, got {frame!r}"
    assert frame.identifier == identifier
    assert_echoed(cable, identifier)


async def subscribe_rejected(cable: CableClient, identifier: str) -> None:
    await cable.subscribe(identifier)
    frame = await read(cable)
    assert isinstance(frame, cp.RejectSubscription), f"expected reject for {identifier}: {frame!r}"
    assert frame.identifier == identifier
    assert_echoed(cable, identifier)


async def perform(cable: CableClient, identifier: str, action: str) -> None:
    await cable.send(cp.Perform(identifier=identifier, data=json.dumps({"action": action})))


async def expect_disconnect(cable: CableClient, timeout: float = RECV_TIMEOUT) -> cp.Disconnect:
    frame = await read(cable, timeout)
    assert isinstance(frame, cp.Disconnect), f"expected a disconnect, got {frame!r}"
    return frame


# -- a tenant and its customers --------------------------------------------------------------


@dataclass
class Tenant:
    server: GatewayProcess
    account_id: int
    inbox: dict[str, Any]
    other_inbox: dict[str, Any]
    admin: dict[str, Any]
    agent: dict[str, Any]
    outsider: dict[str, Any]

    @classmethod
    def create(cls, server: GatewayProcess) -> Tenant:
        tag = uuid.uuid4().hex[:10]
        inbox = server.provision_inbox(account=f"Acme {tag}", name="Support", csat=True)
        account_id = int(inbox["account_id"])
        other = server.provision_inbox(name="Sales", account_id=account_id)

        def user(name: str, role: str, *inbox_ids: int) -> dict[str, Any]:
            member = [arg for i in inbox_ids for arg in ("--inbox", str(i))]
            return server.cli(
                "user", "create", "--account", str(account_id), "--email",
                f"{name}-{tag}@example.com", "--name", name.title(), "--role", role, *member,
            )  # fmt: skip

        return cls(
            server=server,
            account_id=account_id,
            inbox=inbox,
            other_inbox=other,
            admin=user("admin", "administrator"),
            agent=user("agent", "agent", int(inbox["id"])),
            outsider=user("outsider", "agent", int(other["id"])),
        )

    def agent_ident(self, user: dict[str, Any], spelling: str = "compact") -> str:
        return agent_identifier(
            user["pubsub_token"], self.account_id, int(user["id"]), spelling=spelling
        )

    async def customer(
        self,
        http: httpx.AsyncClient,
        *,
        inbox: dict[str, Any] | None = None,
        identifier: str | None = None,
        signed: bool = True,
        name: str = "Customer",
    ) -> Customer:
        """A new contact session; with ``identifier``, HMAC-verified (a valid
        ``identifier_hash``) unless ``signed`` is False."""
        inbox = inbox or self.inbox
        body: dict[str, Any] = {"name": name}
        if identifier is not None:
            body["identifier"] = identifier
            if signed:
                body["identifier_hash"] = hmac_hex(inbox["hmac_token"], identifier)
        base = f"/public/api/v1/inboxes/{inbox['identifier']}"
        created = ok(await http.post(f"{base}/contacts", json=body))
        return Customer(
            http=http,
            base=f"{base}/contacts/{created['source_id']}",
            source_id=created["source_id"],
            pubsub_token=created["pubsub_token"],
            id=int(created["id"]),
        )


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.request.url, response.status_code, response.text)
    return response.json() if response.content else None


@dataclass
class Customer:
    http: httpx.AsyncClient
    base: str  # .../contacts/{source_id}
    source_id: str
    pubsub_token: str
    id: int

    def ident(self, spelling: str = "compact") -> str:
        return contact_identifier(self.pubsub_token, spelling=spelling)

    def _conv(self, conversation_id: int) -> str:
        return f"{self.base}/conversations/{conversation_id}"

    async def start_conversation(self) -> int:
        return int(ok(await self.http.post(f"{self.base}/conversations", json={}))["id"])

    async def say(
        self, conversation_id: int, content: str, echo_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"content": content}
        if echo_id is not None:
            body["echo_id"] = echo_id
        result: dict[str, Any] = ok(
            await self.http.post(f"{self._conv(conversation_id)}/messages", json=body)
        )
        return result

    async def typing(self, conversation_id: int, status: str) -> None:
        url = f"{self._conv(conversation_id)}/toggle_typing"
        ok(await self.http.post(url, json={"typing_status": status}))

    async def resolve(self, conversation_id: int) -> dict[str, Any]:
        result: dict[str, Any] = ok(
            await self.http.post(f"{self._conv(conversation_id)}/toggle_status")
        )
        return result

    async def seen(self, conversation_id: int) -> None:
        ok(await self.http.post(f"{self._conv(conversation_id)}/update_last_seen"))

    async def rate(self, conversation_id: int, message_id: int, rating: int) -> dict[str, Any]:
        body = {"submitted_values": {"csat_survey_response": {"rating": rating}}}
        url = f"{self._conv(conversation_id)}/messages/{message_id}"
        result: dict[str, Any] = ok(await self.http.patch(url, json=body))
        return result
