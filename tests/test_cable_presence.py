"""``presence.update`` on ``/cable`` over real sockets (reference/chatwoot-public-api.md §6.4,
§6.6): sent on subscribe and on the ``update_presence`` action, to the subscriber's own stream
only; agents also see the contacts online, contacts never do; never logged (no position)."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import msgspec
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import RECV_TIMEOUT, CableClient
from tests.cable_socket_helpers import Tenant, data, event_name, perform
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("cable-presence")) as started:
        yield started


async def subscribe_with_presence(cable: CableClient, identifier: str) -> cp.Broadcast:
    """Subscribe; the confirm and the ``presence.update`` sent on subscribe may come in either
    order (reference §6.8). Returns the presence frame; nothing else may arrive meanwhile."""
    await cable.subscribe(identifier)
    confirmed, found = False, None
    with anyio.fail_after(RECV_TIMEOUT):
        while not (confirmed and found):
            frame = await cable.recv()
            if isinstance(frame, cp.Ping):
                continue
            if isinstance(frame, cp.ConfirmSubscription) and frame.identifier == identifier:
                confirmed = True
            elif event_name(frame) == "presence.update" and found is None:
                assert isinstance(frame, cp.Broadcast)
                found = frame
            else:
                raise AssertionError(f"unexpected while subscribing {identifier}: {frame!r}")
    assert found is not None
    return found


async def next_strict(cable: CableClient) -> cp.ServerFrame:
    """The next frame that is not a ping (presence included)."""
    with anyio.fail_after(RECV_TIMEOUT):
        while True:
            frame = await cable.recv()
            if not isinstance(frame, cp.Ping):
                return frame


def assert_presence(frame: cp.Broadcast, identifier: str, account_id: int) -> dict[str, object]:
    assert frame.identifier == identifier
    # Transient: never logged, so no stream position even on the extended protocol.
    assert frame.stream_id is msgspec.UNSET
    assert frame.offset is msgspec.UNSET
    payload = data(frame)
    assert payload["account_id"] == account_id
    users = payload["users"]
    assert isinstance(users, dict)
    assert all(isinstance(k, str) for k in users)
    assert all(v in ("online", "busy", "offline") for v in users.values())
    return payload


async def test_presence_update(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    customer = await tenant.customer(http, name="Present")
    other = await tenant.customer(http, name="Bystander")
    other_conversation = await other.start_conversation()
    url = server.ws_url("/cable")
    async with (
        CableClient.connect(url, protocol=cp.JSON) as contact_cable,
        CableClient.connect(url, protocol=cp.JSON) as other_cable,
        CableClient.connect(url, protocol=cp.EXT_JSON) as agent_cable,
    ):
        for cable in (contact_cable, other_cable, agent_cable):
            await cable.expect(cp.Welcome)
        mine = customer.ident()
        payload = assert_presence(
            await subscribe_with_presence(contact_cable, mine), mine, tenant.account_id
        )
        assert "contacts" not in payload  # contacts never learn who else is online
        await subscribe_with_presence(other_cable, other.ident())

        await perform(contact_cable, mine, "update_presence")
        frame = await next_strict(contact_cable)
        assert event_name(frame) == "presence.update", frame
        assert isinstance(frame, cp.Broadcast)
        assert "contacts" not in assert_presence(frame, mine, tenant.account_id)

        # Presence goes to the performer's own stream only: the bystander's next frame is its
        # own message.
        sent = await other.say(other_conversation, "marker")
        frame = await next_strict(other_cable)
        assert event_name(frame) == "message.created", frame
        assert isinstance(frame, cp.Broadcast)
        assert data(frame)["id"] == sent["id"]

        # Agents also see the contacts seen within 20 s, and themselves among the users.
        admin = tenant.agent_ident(tenant.admin)
        for attempt in ("subscribe", "update_presence"):
            if attempt == "subscribe":
                frame = await subscribe_with_presence(agent_cable, admin)
            else:
                await perform(agent_cable, admin, "update_presence")
                got = await next_strict(agent_cable)
                assert event_name(got) == "presence.update", got
                assert isinstance(got, cp.Broadcast)
                frame = got
            payload = assert_presence(frame, admin, tenant.account_id)
            assert str(tenant.admin["id"]) in payload["users"]  # type: ignore[operator]
            contacts = payload["contacts"]
            assert isinstance(contacts, dict)
            assert contacts.get(str(customer.id)) == "online", contacts
            assert contacts.get(str(other.id)) == "online", contacts
