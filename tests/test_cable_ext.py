"""The AnyCable extended protocol on ``/cable`` over real sockets (reference:
anycable-ext-protocol.md §3-§5): stream positions on logged broadcasts, the ``history`` command
and history on ``subscribe``, session restore with ``?sid=``, and that plain protocols do none
of it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.cable_socket_helpers import (
    EXTENDED,
    Tenant,
    data,
    event_name,
    next_event,
    next_events,
    proto_id,
    read,
    subscribe_ok,
    summary,
)
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("cable-ext")) as started:
        yield started


def position(frame: cp.Broadcast) -> tuple[str, str, int]:
    stream_id, epoch, offset = frame.stream_id, frame.epoch, frame.offset
    assert isinstance(stream_id, str), frame
    assert stream_id
    assert isinstance(epoch, str), frame
    assert epoch
    assert isinstance(offset, int), frame
    return stream_id, epoch, offset


def since(stream_id: str, epoch: str, offset: int) -> cp.HistoryRequest:
    return cp.HistoryRequest(streams={stream_id: cp.StreamPosition(epoch=epoch, offset=offset)})


async def expect_reply(cable: CableClient, kind: type[cp.ServerFrame], identifier: str) -> None:
    frame = await read(cable)
    assert isinstance(frame, kind), f"expected {kind.__name__}, got {frame!r}"
    assert frame.identifier == identifier  # type: ignore[attr-defined]


async def history(
    cable: CableClient, identifier: str, request: cp.HistoryRequest
) -> list[cp.Broadcast]:
    """Send ``history``; return the replay, which must end with ``confirm_history``."""
    await cable.send(cp.History(identifier=identifier, history=request))
    replay = []
    while True:
        frame = await read(cable)
        if isinstance(frame, cp.ConfirmHistory):
            assert frame.identifier == identifier
            return replay
        assert isinstance(frame, cp.Broadcast), f"expected a replay or confirm, got {frame!r}"
        assert frame.identifier == identifier
        replay.append(frame)


async def test_logged_events_carry_positions(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    alice = await tenant.customer(http, name="Alice")
    bob = await tenant.customer(http, name="Bob")
    url = server.ws_url("/cable")
    admin_ident = tenant.agent_ident(tenant.admin)
    async with (
        CableClient.connect(url, protocol=cp.EXT_JSON) as one,
        CableClient.connect(url, protocol=cp.EXT_MSGPACK) as two,
    ):
        for cable in (one, two):
            await cable.expect(cp.Welcome)
            await subscribe_ok(cable, alice.ident())
        await subscribe_ok(one, bob.ident())
        await subscribe_ok(one, admin_ident)

        conv = await alice.start_conversation()
        first = await alice.say(conv, "first")
        await alice.typing(conv, "on")  # transient
        second = await alice.say(conv, "second")
        conv_b = await bob.start_conversation()

        # alice's stream, as both connections see it: offsets 1, 2, 3 of one stream and epoch.
        frames = await next_events(one, 9)  # alice 3, bob 1, admin 5
        seen = []
        for got in (frames, await next_events(two, 3)):
            mine = [f for f in got if f.identifier == alice.ident()]
            assert summary(mine) == [
                ("conversation.created", conv),
                ("message.created", first["id"]),
                ("message.created", second["id"]),
            ]
            positions = [position(f) for f in mine]
            assert [p[2] for p in positions] == [1, 2, 3]
            assert len({p[:2] for p in positions}) == 1
            seen.append(positions)
        assert seen[0] == seen[1]  # every subscriber sees the same position for an event
        alice_stream = seen[0][0][0]

        bob_frames = [f for f in frames if f.identifier == bob.ident()]
        assert summary(bob_frames) == [("conversation.created", conv_b)]
        bob_stream, _, bob_offset = position(bob_frames[0])
        assert bob_offset == 1
        assert bob_stream != alice_stream

        admin_frames = [f for f in frames if f.identifier == admin_ident]
        assert [event_name(f) for f in admin_frames] == [
            "conversation.created", "message.created", "conversation.typing_on",
            "message.created", "conversation.created",
        ]  # fmt: skip
        typing = admin_frames.pop(2)
        assert (typing.stream_id, typing.epoch, typing.offset) == (msgspec.UNSET,) * 3
        inbox_positions = [position(f) for f in admin_frames]
        assert len({p[:2] for p in inbox_positions}) == 1  # one inbox, one stream
        offsets = [p[2] for p in inbox_positions]
        assert offsets == list(range(offsets[0], offsets[0] + 4))
        inbox_stream = inbox_positions[0][0]
        assert inbox_stream not in (alice_stream, bob_stream)

        # Opaque: no stream name, no credential.
        secrets = [alice.pubsub_token, bob.pubsub_token, tenant.admin["pubsub_token"]]
        for stream_id in (alice_stream, bob_stream, inbox_stream):
            assert "session:" not in stream_id
            assert "inbox:" not in stream_id
            assert not any(secret in stream_id for secret in secrets)


@pytest.mark.parametrize("protocol", EXTENDED, ids=proto_id)
async def test_history_command(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str
) -> None:
    """``history`` on a connection that has not seen the events (the restore case; one that
    already sent them skips what it sent, so a client never gets an offset twice)."""
    alice = await tenant.customer(http)
    ident, admin_ident = alice.ident(), tenant.agent_ident(tenant.admin)
    url = server.ws_url("/cable")
    async with CableClient.connect(url, protocol=protocol) as first:
        await first.expect(cp.Welcome)
        await subscribe_ok(first, ident)
        await subscribe_ok(first, admin_ident)
        conv = await alice.start_conversation()
        said = [await alice.say(conv, f"m{i}") for i in range(3)]
        frames = await next_events(first, 8)
    mine = [f for f in frames if f.identifier == ident]
    stream_id, epoch, _ = position(mine[0])
    assert [position(f)[2] for f in mine] == [1, 2, 3, 4]
    theirs = [f for f in frames if f.identifier == admin_ident]
    inbox_id, inbox_epoch, created_at = position(theirs[0])

    async with CableClient.connect(url, protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await subscribe_ok(cable, ident)
        await subscribe_ok(cable, admin_ident)

        assert await history(cable, ident, since(stream_id, epoch, 4)) == []  # up to date
        for bad in (since(stream_id, "not-the-epoch", 2), since(stream_id, epoch, 99)):
            await cable.send(cp.History(identifier=ident, history=bad))
            await expect_reply(cable, cp.RejectHistory, ident)  # and nothing replayed

        replay = await history(cable, ident, since(stream_id, epoch, 2))
        assert summary(replay) == [("message.created", m["id"]) for m in said[1:]]
        assert [position(f) for f in replay] == [(stream_id, epoch, 3), (stream_id, epoch, 4)]

        # The agent's inbox stream: what followed the conversation.created.
        replay = await history(cable, admin_ident, since(inbox_id, inbox_epoch, created_at))
        assert summary(replay) == [("message.created", m["id"]) for m in said]
        assert [position(f)[2] for f in replay] == [created_at + 1 + i for i in range(3)]

        # Live delivery goes on, at the next offset.
        live = await alice.say(conv, "live")
        frames = await next_events(cable, 2)
        mine = [f for f in frames if f.identifier == ident]
        assert summary(mine) == [("message.created", live["id"])]
        assert position(mine[0]) == (stream_id, epoch, 5)


@pytest.mark.parametrize("protocol", EXTENDED, ids=proto_id)
async def test_subscribe_with_history(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str
) -> None:
    alice = await tenant.customer(http)
    ident = alice.ident()
    url = server.ws_url("/cable")
    async with CableClient.connect(url, protocol=protocol) as first:
        await first.expect(cp.Welcome)
        await subscribe_ok(first, ident)
        conv = await alice.start_conversation()
        said = [await alice.say(conv, f"m{i}") for i in range(2)]
        frames = await next_events(first, 3)
    stream_id, epoch, _ = position(frames[0])
    expected = [("conversation.created", conv)] + [("message.created", m["id"]) for m in said]

    # By position: confirm_subscription, the replay after offset 1, confirm_history.
    async with CableClient.connect(url, protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await subscribe_ok(cable, ident, since(stream_id, epoch, 1))
        replay = await next_events(cable, 2)
        assert summary(replay) == expected[1:]
        assert [position(f) for f in replay] == [(stream_id, epoch, 2), (stream_id, epoch, 3)]
        await expect_reply(cable, cp.ConfirmHistory, ident)

    # By time (client clock, seconds): everything since a minute ago.
    async with CableClient.connect(url, protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await subscribe_ok(cable, ident, cp.HistoryRequest(since=int(time.time()) - 60))
        assert summary(await next_events(cable, 3)) == expected
        await expect_reply(cable, cp.ConfirmHistory, ident)

    # A stale epoch: the subscription stands, the history is refused, live events flow.
    async with CableClient.connect(url, protocol=protocol) as cable:
        await cable.expect(cp.Welcome)
        await subscribe_ok(cable, ident, since(stream_id, "stale-epoch", 1))
        await expect_reply(cable, cp.RejectHistory, ident)
        live = await alice.say(conv, "live")
        assert summary([await next_event(cable)]) == [("message.created", live["id"])]


@pytest.mark.parametrize("protocol", [None, cp.JSON, cp.MSGPACK], ids=proto_id)
async def test_plain_protocols_have_no_history(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str | None
) -> None:
    alice = await tenant.customer(http)
    conv = await alice.start_conversation()
    async with CableClient.connect(server.ws_url("/cable"), protocol=protocol) as cable:
        welcome = await cable.expect(cp.Welcome)
        assert welcome.restored in (msgspec.UNSET, False)
        await subscribe_ok(cable, alice.ident(), cp.HistoryRequest(since=int(time.time()) - 60))
        live = await alice.say(conv, "live")
        frame = await next_event(cable)  # not a replay of conversation.created
        assert summary([frame]) == [("message.created", live["id"])]
        assert (frame.stream_id, frame.epoch, frame.offset) == (msgspec.UNSET,) * 3


@pytest.mark.parametrize("protocol", EXTENDED, ids=proto_id)
async def test_session_restore(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str
) -> None:
    """Reconnect with ``?sid=``: a new sid, ``restored``, every identifier live again without a
    subscribe; ``history`` fills the gap; the new sid restores the next time."""
    alice = await tenant.customer(http)
    ident, admin_ident = alice.ident(), tenant.agent_ident(tenant.admin)
    url = server.ws_url("/cable")
    async with CableClient.connect(url, protocol=protocol) as cable:
        welcome = await cable.expect(cp.Welcome)
        assert isinstance(welcome.sid, str)
        sid = welcome.sid
        await subscribe_ok(cable, ident)
        await subscribe_ok(cable, admin_ident)
        conv = await alice.start_conversation()
        frames = {f.identifier: f for f in await next_events(cable, 2)}
    positions = {identifier: position(frame) for identifier, frame in frames.items()}

    for round_ in range(2):
        missed = await alice.say(conv, f"while away {round_}")
        async with CableClient.connect(f"{url}?sid={sid}", protocol=protocol) as cable:
            welcome = await cable.expect(cp.Welcome)
            assert welcome.restored is True, welcome
            assert isinstance(welcome.sid, str)
            assert welcome.sid != sid
            sid = welcome.sid
            assert isinstance(welcome.restored_ids, list)
            assert sorted(welcome.restored_ids) == sorted([ident, admin_ident])

            for identifier in (ident, admin_ident):
                stream_id, epoch, offset = positions[identifier]
                replay = await history(cable, identifier, since(stream_id, epoch, offset))
                assert summary(replay) == [("message.created", missed["id"])]
                positions[identifier] = position(replay[0])
                assert positions[identifier] == (stream_id, epoch, offset + 1)

            # Live without a subscribe; a subscribe for a restored identifier is a duplicate.
            await cable.subscribe(ident)
            await subscribe_ok(cable, alice.ident("spaced"))
            live = await alice.say(conv, f"live {round_}")
            got = await next_events(cable, 3)
            assert sorted(f.identifier for f in got) == sorted(
                [ident, admin_ident, alice.ident("spaced")]
            )
            assert {data(f)["id"] for f in got} == {live["id"]}
            for frame in got:
                if frame.identifier in positions:
                    positions[frame.identifier] = position(frame)
            await cable.send(cp.Unsubscribe(identifier=alice.ident("spaced")))


@pytest.mark.parametrize("protocol", [None, cp.JSON, cp.MSGPACK], ids=proto_id)
async def test_plain_protocols_never_restore(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, protocol: str | None
) -> None:
    alice = await tenant.customer(http)
    url = server.ws_url("/cable")
    async with CableClient.connect(url, protocol=cp.EXT_JSON) as cable:
        welcome = await cable.expect(cp.Welcome)
        await subscribe_ok(cable, alice.ident())
    async with CableClient.connect(f"{url}?sid={welcome.sid}", protocol=protocol) as cable:
        welcome = await cable.expect(cp.Welcome)
        assert welcome.restored in (msgspec.UNSET, False)
        assert welcome.restored_ids in (msgspec.UNSET, [])
        await subscribe_ok(cable, alice.ident())  # a restored one would get no answer


@pytest.mark.parametrize("query", ["?sid=", "?sid=no-such-session-id-at-all"])
async def test_empty_or_unknown_sid_is_a_fresh_session(
    server: GatewayProcess, tenant: Tenant, http: httpx.AsyncClient, query: str
) -> None:
    alice = await tenant.customer(http)
    url = server.ws_url("/cable") + query
    async with CableClient.connect(url, protocol=cp.EXT_JSON) as cable:
        welcome = await cable.expect(cp.Welcome)
        assert isinstance(welcome.sid, str)
        assert welcome.sid
        assert welcome.restored in (msgspec.UNSET, False)
        await subscribe_ok(cable, alice.ident())
