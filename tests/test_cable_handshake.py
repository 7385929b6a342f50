"""``/cable`` over a real socket: handshake and subprotocols, welcome, pings, subscribe/confirm/
reject with byte-exact identifiers, duplicate subscribe, unsubscribe, presence, malformed and
oversized frames, and the disconnect sent on shutdown. Contract: reference/chatwoot-public-api.md
§6 and reference/anycable-ext-protocol.md §1-§3, §6."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest
from websockets.exceptions import InvalidStatus

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient, agent_identifier, contact_identifier
from tests.cable_socket_helpers import (
    EXTENDED,
    PROTOCOLS,
    Tenant,
    assert_echoed,
    assert_frame_type,
    data,
    event_name,
    expect_disconnect,
    next_event,
    next_events,
    proto_id,
    subscribe_ok,
    subscribe_rejected,
)
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

SPELLINGS = ("compact", "sorted", "spaced")


@pytest.fixture(scope="module", params=["lean", "asgi"])
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[GatewayProcess]:
    """Both /cable transports (INBOXGATE_CABLE_TRANSPORT): the default, and the fallback."""
    root = tmp_path_factory.mktemp("cable-handshake")
    with gateway_server(root, INBOXGATE_CABLE_TRANSPORT=request.param) as started:
        yield started


@pytest.fixture(scope="module")
def tenant(server: GatewayProcess) -> Tenant:
    """One account for the module: these tests check what one connection sees, each with
    contacts of its own."""
    return Tenant.create(server)


# -- handshake -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=proto_id)
async def test_session_per_protocol(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str | None
) -> None:
    """Handshake, welcome, subscriptions in every spelling, rejections, and one event reaching
    every subscription: with stream positions on the extended protocols only."""
    customer = await tenant.customer(http)
    conversation = await customer.start_conversation()
    extended = protocol in EXTENDED
    async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
        assert cable.ws.subprotocol == protocol
        assert cable.ws.response is not None
        assert cable.ws.response.headers.get("Sec-WebSocket-Protocol") == protocol

        welcome = await cable.recv()
        assert isinstance(welcome, cp.Welcome), f"the first frame must be welcome: {welcome!r}"
        assert_frame_type(cable)
        assert welcome.restored in (msgspec.UNSET, False)
        if extended:
            assert isinstance(welcome.sid, str)
            assert len(welcome.sid) >= 16  # a bearer credential: >= 120 random bits

        admin = tenant.admin
        good = [tenant.agent_ident(admin, spelling) for spelling in SPELLINGS]
        good += [customer.ident("compact"), customer.ident("spaced")]
        assert len(set(good)) == len(good)
        for identifier in good:
            await subscribe_ok(cable, identifier)
            assert_frame_type(cable)

        account, admin_id = tenant.account_id, int(admin["id"])
        bad = [
            contact_identifier("no-such-pubsub-token"),
            agent_identifier(admin["pubsub_token"], account, int(tenant.agent["id"])),  # user_id
            agent_identifier(admin["pubsub_token"], account + 10_000, admin_id),  # account
            agent_identifier("no-such-pubsub-token", account, admin_id),
            contact_identifier(admin["pubsub_token"]),  # a user's token without user_id
            agent_identifier(customer.pubsub_token, account, admin_id),  # a contact's token
        ]
        for identifier in bad:
            await subscribe_rejected(cable, identifier)
            assert_frame_type(cable)

        sent = await customer.say(conversation, f"hello over {proto_id(protocol)}")
        seen = []
        for _ in good:
            frame = await next_event(cable)
            assert_frame_type(cable)
            assert_echoed(cable, frame.identifier)
            seen.append(frame.identifier)
            assert event_name(frame) == "message.created"
            assert data(frame)["id"] == sent["id"]
            assert data(frame)["content"] == sent["content"]
            if extended:
                assert isinstance(frame.stream_id, str)
                assert frame.stream_id
                assert isinstance(frame.epoch, str)
                assert frame.epoch
                assert isinstance(frame.offset, int)
                assert frame.offset >= 1
            else:
                assert frame.stream_id is msgspec.UNSET
                assert frame.epoch is msgspec.UNSET
                assert frame.offset is msgspec.UNSET
        assert sorted(seen) == sorted(good)


async def test_rails_client_offer_selects_json(server: GatewayProcess) -> None:
    """@rails/actioncable offers ``actioncable-v1-json, actioncable-unsupported``."""
    offer = [cp.JSON, "actioncable-unsupported"]
    async with CableClient.connect(server.ws_url("/cable"), offer=offer) as cable:
        assert cable.ws.subprotocol == cp.JSON
        assert isinstance(await cable.recv(), cp.Welcome)
        assert isinstance(cable.last_raw, str)


@pytest.mark.parametrize(
    "offer",
    [
        ["actioncable-v1-protobuf"],
        ["actioncable-unsupported"],
        ["actioncable-v1-ext-protobuf", "actioncable-unsupported"],
    ],
    ids=lambda offer: "+".join(offer),
)
async def test_handshake_refused_when_no_offer_is_spoken(
    server: GatewayProcess, offer: list[str]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with CableClient.connect(server.ws_url("/cable"), offer=offer):
            pytest.fail("the handshake should have been refused")
    assert refused.value.response.status_code == 403


async def test_plain_http_get_is_not_found(http: httpx.AsyncClient) -> None:
    response = await http.get("/cable")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Page not found"


async def test_pings_every_three_seconds(server: GatewayProcess) -> None:
    """All protocols at once (one 6 s wait, not five): welcome, then a ping within ~3.5 s and
    another about 3 s later, carrying the server's epoch seconds."""

    async def watch(protocol: str | None) -> None:
        async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
            opened = time.monotonic()
            assert isinstance(await cable.recv(), cp.Welcome)
            first = await cable.expect(cp.Ping, timeout=4.0, skip_pings=False)
            first_at = time.monotonic()
            assert first_at - opened <= 4.0
            assert_frame_type(cable)
            assert abs(first.message - time.time()) <= 5
            await cable.expect(cp.Ping, timeout=4.5, skip_pings=False)
            assert 2.0 <= time.monotonic() - first_at <= 4.5, protocol

    async with anyio.create_task_group() as tg:
        for protocol in PROTOCOLS:
            tg.start_soon(watch, protocol)


# -- subscriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [cp.JSON, cp.EXT_MSGPACK], ids=proto_id)
async def test_duplicate_subscribe_is_ignored(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str
) -> None:
    """A confirm for an already confirmed identifier would make the JS client unsubscribe."""
    customer = await tenant.customer(http)
    conversation = await customer.start_conversation()
    admin = tenant.agent_ident(tenant.admin)
    compact, spaced = customer.ident(), customer.ident("spaced")
    async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await subscribe_ok(cable, compact)
        await subscribe_ok(cable, admin)
        await cable.subscribe(compact)  # the JS client's 5 s retry
        await cable.subscribe(admin)
        # The next thing answered is the other spelling: no second confirm came before it.
        await subscribe_ok(cable, spaced)

        for text in ("once", "twice"):
            sent = await customer.say(conversation, text)
            frames = await next_events(cable, 3)  # one per subscription, never two
            assert sorted(f.identifier for f in frames) == sorted([compact, spaced, admin])
            assert {data(f)["id"] for f in frames} == {sent["id"]}


async def test_unsubscribe_stops_delivery(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    customer = await tenant.customer(http)
    conversation = await customer.start_conversation()
    contact_gone, contact_kept = customer.ident(), customer.ident("spaced")
    agent_gone, agent_kept = (
        tenant.agent_ident(tenant.agent),
        tenant.agent_ident(tenant.agent, "sorted"),
    )
    async with CableClient.connect(server.ws_url("/cable"), protocol=cp.JSON) as cable:
        await cable.expect(cp.Welcome)
        for identifier in (contact_gone, contact_kept, agent_gone, agent_kept):
            await subscribe_ok(cable, identifier)
        await cable.send(cp.Unsubscribe(identifier=contact_gone))
        await cable.send(cp.Unsubscribe(identifier=agent_gone))

        first = await customer.say(conversation, "one")
        second = await customer.say(conversation, "two")
        frames = await next_events(cable, 4)
        got = sorted((f.identifier, data(f)["id"]) for f in frames)
        expected = [(i, m["id"]) for i in (contact_kept, agent_kept) for m in (first, second)]
        assert got == sorted(expected)

        # Unsubscribed means forgotten: subscribing again is a new subscription, confirmed.
        await subscribe_ok(cable, contact_gone)
        third = await customer.say(conversation, "three")
        frames = await next_events(cable, 3)
        assert sorted(f.identifier for f in frames) == sorted(
            [contact_gone, contact_kept, agent_kept]
        )
        assert {data(f)["id"] for f in frames} == {third["id"]}


# -- bad frames ------------------------------------------------------------------------------

MALFORMED: dict[str, tuple[str | None, str | bytes]] = {
    "json-not-json": (cp.JSON, "not json"),
    "none-not-json": (None, "not json"),
    "json-array": (cp.JSON, "[1, 2, 3]"),
    "ext-json-string": (cp.EXT_JSON, '"a string"'),
    "ext-json-number": (cp.EXT_JSON, "42"),
    "msgpack-garbage": (cp.MSGPACK, b"\xc1\xc1\xc1"),  # 0xc1 is never used in msgpack
    "ext-msgpack-array": (cp.EXT_MSGPACK, msgspec.msgpack.encode([1, 2, 3])),
    "msgpack-string": (cp.MSGPACK, msgspec.msgpack.encode("a string")),
}


@pytest.mark.parametrize(("protocol", "frame"), list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_frame_disconnects(
    server: GatewayProcess, protocol: str | None, frame: str | bytes
) -> None:
    async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await cable.send_raw(frame)
        bye = await expect_disconnect(cable)
        assert_frame_type(cable)
        assert (bye.reason, bye.reconnect) == ("invalid_request", False)
        await cable.closed()


@pytest.mark.parametrize("protocol", [cp.JSON, cp.EXT_MSGPACK], ids=proto_id)
async def test_oversized_frame_disconnects(
    server: GatewayProcess, tenant: Tenant, protocol: str
) -> None:
    """Over 64 KiB: even a well-formed command is refused."""
    async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        huge = agent_identifier("x" * (65 * 1024), tenant.account_id, int(tenant.admin["id"]))
        await cable.send(cp.Subscribe(identifier=huge))
        bye = await expect_disconnect(cable)
        assert (bye.reason, bye.reconnect) == ("invalid_request", False)
        await cable.closed()


async def test_bad_clients_do_not_disturb_others(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    customer = await tenant.customer(http)
    conversation = await customer.start_conversation()
    url = server.ws_url("/cable")
    async with CableClient.connect(url, protocol=cp.EXT_JSON) as bystander:
        await bystander.expect(cp.Welcome)
        await subscribe_ok(bystander, customer.ident())
        for protocol, frame in [*MALFORMED.values(), (cp.JSON, "x" * (70 * 1024))]:
            async with CableClient.connect(url, protocol=protocol) as offender:
                await offender.expect(cp.Welcome)
                await offender.send_raw(frame)
                await expect_disconnect(offender)
        sent = await customer.say(conversation, "still here")
        frame = await next_event(bystander)
        assert (event_name(frame), data(frame)["id"]) == ("message.created", sent["id"])


# -- shutdown --------------------------------------------------------------------------------


async def test_shutdown_sends_server_restart(tmp_path: Path) -> None:
    """SIGTERM: every connection hears ``server_restart`` with reconnect, then the close."""
    with gateway_server(tmp_path) as own:
        tenant = Tenant.create(own)
        async with httpx.AsyncClient(base_url=own.base_url, timeout=10.0) as http:
            customer = await tenant.customer(http)
        url = own.ws_url("/cable")
        async with (
            CableClient.connect(url, protocol=cp.JSON) as plain,
            CableClient.connect(url, protocol=cp.EXT_MSGPACK) as binary,
            CableClient.connect(url, protocol=None) as idle,
        ):
            for cable in (plain, binary, idle):
                await cable.expect(cp.Welcome)
            await subscribe_ok(plain, customer.ident())
            await subscribe_ok(binary, tenant.agent_ident(tenant.admin))

            async def hear_restart(cable: CableClient) -> None:
                bye = await expect_disconnect(cable, timeout=15)
                assert_frame_type(cable)
                assert (bye.reason, bye.reconnect) == ("server_restart", True)
                await cable.closed()

            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.to_thread.run_sync, own.stop)
                for cable in (plain, binary, idle):
                    tg.start_soon(hear_restart, cable)
