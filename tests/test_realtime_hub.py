"""The hub and a connection, in process: a fake ASGI socket against the real app and store.

What only an in-process test can set up exactly: a doorbell that never rang (an event in the
log the broker did not carry), a feed gap, a socket that stops taking frames, a cached session
whose credentials no longer hold.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from client_sdk import cable_protocol as cp
from gateway.broker import MemoryBroker
from gateway.domain import events
from gateway.realtime import hub as hub_module
from gateway.realtime.core import SessionSnapshot, SubscriptionState
from gateway.realtime.endpoint import CableEndpoint
from gateway.store import StoreUnavailable
from tests.asgi_cable import FakeSocket, connected
from tests.cable_client import contact_identifier
from tests.routes_helpers import Env, EnvFactory

pytestmark = pytest.mark.anyio


async def subscribe(socket: FakeSocket, token: str) -> str:
    identifier = contact_identifier(token)
    await socket.client_send(cp.Subscribe(identifier=identifier))
    assert isinstance(await socket.next(), cp.ConfirmSubscription)
    presence = await socket.next()
    assert isinstance(presence, cp.Broadcast)
    assert presence.message["event"] == "presence.update"
    return identifier


async def message_offsets(socket: FakeSocket, count: int) -> list[tuple[str, int]]:
    got: list[tuple[str, int]] = []
    while len(got) < count:
        frame = await socket.next()
        assert isinstance(frame, cp.Broadcast), frame
        assert isinstance(frame.offset, int)
        got.append((frame.message["data"].get("content", ""), frame.offset))
    return got


async def test_one_ping_tick_for_every_connection_and_no_visit_to_the_idle(env: Env) -> None:
    """The node's timer pings every socket with the same frame (one epoch second, built once);
    between pings it visits only the connections with a deadline, and a subscribed socket
    without a pong timeout has none."""
    contact = await env.contact()
    hub = env.app.state.realtime.hub
    async with connected(env, FakeSocket(cp.JSON)) as plain, connected(env, FakeSocket()) as ext:
        assert hub.timed == 2  # the first-subscribe timeout runs for both
        for socket in (plain, ext):
            await subscribe(socket, contact["pubsub_token"])
        env.clock.advance(3)  # the hub's tick sees the ping due
        pings = [await s.next(skip_pings=False) for s in (plain, ext)]
        assert pings == [cp.Ping(message=int(env.clock()))] * 2
        assert hub.timed == 0


async def test_the_sockets_take_turns_in_the_ping_wheel_while_they_are_open(env: Env) -> None:
    """Each socket sits in a slot of the wheel (the emptiest), so a beat of the timer pings a
    slot, not everyone; a socket gone leaves the wheel."""
    hub = env.app.state.realtime.hub
    slots = round(hub.limits.ping_interval / hub_module.TICK_SECONDS)
    async with connected(env, FakeSocket(cp.JSON)), connected(env, FakeSocket()):
        assert len(hub._pings) == 2
        assert sorted(hub._pings.sizes()) == [0] * (slots - 2) + [1, 1]
    assert len(hub._pings) == 0


async def test_the_hub_keeps_the_loop_it_runs_on_while_it_runs(env: Env) -> None:
    """Spawned work, flushes and timers use the loop kept by ``run`` (no system call each on
    Python 3.11), and it is forgotten when ``run`` ends."""
    running = env.app.state.realtime.hub
    hub = hub_module.Hub(
        broker=MemoryBroker(), store=running.store, room=running.room,
        sessions=running.sessions, stream_ids=running.stream_ids,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    async with anyio.create_task_group() as tasks:
        await tasks.start(hub.run)
        assert hub._loop is loop
        done: list[bool] = []

        async def work() -> None:
            done.append(True)

        await hub.spawn(work())
        assert done == [True]
        tasks.cancel_scope.cancel()
    assert hub._loop is None
    assert hub.loop is loop  # not running: whatever loop the caller is on


async def test_the_tick_settles_once_enough_sockets_opened(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``SETTLE_AFTER_OPENS`` sockets opened, the next tick calls ``settle`` (the server's
    ``gc.freeze``) once; ticks in between do not."""
    monkeypatch.setattr(hub_module, "SETTLE_AFTER_OPENS", 2)
    hub = env.app.state.realtime.hub
    settled: list[int] = []
    hub.settle = lambda: settled.append(hub.connections)
    async with connected(env, FakeSocket(cp.JSON)):
        hub.tick(env.clock())
        assert settled == []  # one socket: not yet
        async with connected(env, FakeSocket()):
            hub.tick(env.clock())
            hub.tick(env.clock())
            assert settled == [2]
            async with connected(env, FakeSocket()):
                hub.tick(env.clock())
                assert settled == [2]  # the count starts over


async def test_a_big_ping_round_goes_in_slices_and_reaches_everyone(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ``PING_SLICE`` sockets, a ping round is written a slice per turn of the loop (the
    loop is not held for the whole round), and every socket still gets the round's frame."""
    monkeypatch.setattr(hub_module, "PING_SLICE", 1)
    contact = await env.contact()
    async with connected(env, FakeSocket(cp.JSON)) as one, connected(env, FakeSocket()) as two:
        for socket in (one, two):
            await subscribe(socket, contact["pubsub_token"])
        hub = env.app.state.realtime.hub
        env.clock.advance(3)
        pinged = int(env.clock())
        with anyio.fail_after(5):
            pings = [await s.next(skip_pings=False) for s in (one, two)]
        assert pings == [cp.Ping(message=pinged)] * 2
        assert hub._ping_rest is None  # the round is over


async def test_an_event_whose_doorbell_never_rang_is_healed_from_the_log(env: Env) -> None:
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        await env.send(contact["source_id"], conversation["id"], content="one")
        [(_, first)] = await message_offsets(socket, 1)
        # Appended and committed, but never published: as if the broker dropped it.
        stream = events.session_stream(1)
        await env.store.write(events.append, "message.created", {"content": "silent"}, [stream], 0)
        await env.send(contact["source_id"], conversation["id"], content="three")
        got = await message_offsets(socket, 2)
    assert got == [("silent", first + 1), ("three", first + 2)]


async def test_an_earlier_event_still_on_its_way_from_another_node_is_not_dropped(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With several nodes, an event committed elsewhere may arrive after a later one committed
    here. The hub reads where the stream stood when it started listening, so the later one is
    a jump, healed from the log in order, and the earlier one is not dropped as delivered."""
    monkeypatch.setattr(MemoryBroker, "crosses_nodes", True)
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        # Committed on "another node", its broadcast not here yet; then one committed here.
        stream = events.session_stream(1)
        await env.store.write(events.append, "message.created", {"content": "first"}, [stream], 0)
        await env.send(contact["source_id"], conversation["id"], content="second")
        got = await message_offsets(socket, 2)
    assert [content for content, _ in got] == ["first", "second"]
    assert got[1][1] == got[0][1] + 1


async def test_a_feed_gap_is_healed_and_nothing_is_sent_twice(env: Env) -> None:
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    hub = env.app.state.realtime.hub
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        await env.send(contact["source_id"], conversation["id"], content="one")
        [(_, first)] = await message_offsets(socket, 1)
        stream = events.session_stream(1)
        await env.store.write(events.append, "message.created", {"content": "lost"}, [stream], 0)
        hub._feed.mark_gap(stream)
        [(content, offset)] = await message_offsets(socket, 1)
        assert (content, offset) == ("lost", first + 1)
        await env.send(contact["source_id"], conversation["id"], content="next")
        assert await message_offsets(socket, 1) == [("next", first + 2)]


async def test_a_gap_before_any_delivery_is_healed_without_cutting_the_socket(env: Env) -> None:
    """After a broker reconnect every stream gets a gap, mostly idle ones that have delivered
    nothing yet: they are re-read from when they were listened to, not resynchronised."""
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    hub = env.app.state.realtime.hub
    stream = events.session_stream(1)
    env.clock.now += 60  # what the log held before is well before the subscription
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        env.clock.now += 60
        await env.store.write(
            events.append, "message.created", {"content": "lost"}, [stream], env.clock()
        )
        hub._feed.mark_gap(stream)
        [(content, lost)] = await message_offsets(socket, 1)
        assert content == "lost"
        await env.send(contact["source_id"], conversation["id"], content="next")
        assert await message_offsets(socket, 1) == [("next", lost + 1)]


@pytest.mark.parametrize("reads_again", [True, False])
async def test_a_socket_that_stops_reading_is_dropped_as_too_slow(
    make_env: EnvFactory, reads_again: bool
) -> None:
    async with make_env(cable_send_buffer_bytes=8192) as env:
        contact = await env.contact()
        conversation = await env.conversation(contact["source_id"])
        hub = env.app.state.realtime.hub
        slow = FakeSocket()
        async with connected(env, slow), connected(env, FakeSocket()) as fast:
            await subscribe(slow, contact["pubsub_token"])
            await subscribe(fast, contact["pubsub_token"])
            slow.gate = anyio.Event()  # from now on its sends never complete
            for i in range(12):
                await env.send(contact["source_id"], conversation["id"], content=f"{i:04d}" * 200)
            assert len(await message_offsets(fast, 12)) == 12  # the fast one has everything
            [slow_conn] = [c for c in hub._connections if c.session.closed]
            assert not slow_conn.listening  # already out of the fan-out
            if reads_again:
                # It takes what was handed to its socket before the overflow, then the goodbye.
                slow.gate.set()
                frames = []
                while not isinstance(frame := await slow.next(), dict):
                    frames.append(frame)
                assert frames[-1] == cp.Disconnect(reason="too_slow", reconnect=True)
                assert all(isinstance(f, cp.Broadcast) for f in frames[:-1])
                assert len(frames) - 1 < 12
                assert frame == {"type": "websocket.close", "code": 1013, "reason": "too_slow"}
            else:
                env.clock.advance(11)  # it never takes its goodbye: cut after ABORT_AFTER
            with anyio.fail_after(5):
                while hub.connections != 1:
                    await anyio.sleep(0.05)
            await env.send(contact["source_id"], conversation["id"], content="after")
            assert await message_offsets(fast, 1) == [("after", 14)]


async def test_a_restore_re_checks_credentials(env: Env) -> None:
    contact = await env.contact()
    hub = env.app.state.realtime.hub
    good = contact_identifier(contact["pubsub_token"])
    forged = contact_identifier("not-a-token")
    stolen = contact_identifier(contact["pubsub_token"], spelling="spaced")
    snapshot = SessionSnapshot(
        subscriptions=(
            SubscriptionState(identifier=good, streams=("session:1",), principal="contact:1@1"),
            # A snapshot can only hold what a subscribe granted, but if it held more, the restore
            # would still only re-attach what the identifier's token allows now.
            SubscriptionState(identifier=forged, streams=("inbox:1",), principal="contact:1@1"),
            SubscriptionState(identifier=stolen, streams=("session:1",), principal="user:1@1"),
        )
    )
    await hub.sessions.put("old-sid", snapshot)
    socket = FakeSocket(query=b"sid=old-sid")
    endpoint = CableEndpoint(hub)
    async with anyio.create_task_group() as tasks:
        await socket._in_send.send({"type": "websocket.connect"})
        tasks.start_soon(endpoint, socket.scope, socket.receive, socket.send)
        await socket.next()  # accept
        welcome = await socket.next()
        assert isinstance(welcome, cp.Welcome)
        assert welcome.restored is True
        assert welcome.restored_ids == [good]
        assert welcome.sid != "old-sid"
        assert hub.streams == frozenset({"session:1"})
        tasks.cancel_scope.cancel()
    socket.close()
    assert await hub.sessions.take("old-sid") is None  # single use


async def test_a_restore_the_store_cannot_check_is_kept_for_a_retry(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact = await env.contact()
    hub = env.app.state.realtime.hub
    good = contact_identifier(contact["pubsub_token"])
    snapshot = SessionSnapshot(
        subscriptions=(
            SubscriptionState(identifier=good, streams=("session:1",), principal="contact:1@1"),
        )
    )
    await hub.sessions.put("old-sid", snapshot)
    authorize = hub.room.authorize

    async def database_down(params: dict[str, Any]) -> Any:
        raise StoreUnavailable("database unreachable")

    monkeypatch.setattr(hub.room, "authorize", database_down)
    endpoint = CableEndpoint(hub)
    socket = FakeSocket(query=b"sid=old-sid")
    async with anyio.create_task_group() as tasks:
        await socket._in_send.send({"type": "websocket.connect"})
        tasks.start_soon(endpoint, socket.scope, socket.receive, socket.send)
        await socket.next()  # accept
        goodbye = await socket.next()
        assert goodbye == cp.Disconnect(reason="server_restart", reconnect=True)
        close = await socket.next()
        assert close == {"type": "websocket.close", "code": 1013, "reason": "server_restart"}
    socket.close()

    # The database is back: the same sid restores, once.
    monkeypatch.setattr(hub.room, "authorize", authorize)
    socket = FakeSocket(query=b"sid=old-sid")
    async with anyio.create_task_group() as tasks:
        await socket._in_send.send({"type": "websocket.connect"})
        tasks.start_soon(endpoint, socket.scope, socket.receive, socket.send)
        await socket.next()  # accept
        welcome = await socket.next()
        assert isinstance(welcome, cp.Welcome)
        assert (welcome.restored, welcome.restored_ids) == (True, [good])
        tasks.cancel_scope.cancel()
    socket.close()
    assert await hub.sessions.take("old-sid") is None


async def test_a_lost_broadcast_with_nothing_after_it_is_reconciled(make_env: EnvFactory) -> None:
    async with make_env(cable_reconcile_seconds=0.05) as env:
        contact = await env.contact()
        conversation = await env.conversation(contact["source_id"])
        async with connected(env, FakeSocket()) as socket:
            await subscribe(socket, contact["pubsub_token"])
            await env.send(contact["source_id"], conversation["id"], content="one")
            [(_, first)] = await message_offsets(socket, 1)
            # Committed, never published, and the stream goes quiet: no offset jump will ever
            # show the loss (a node killed between its commit and its publish).
            stream = events.session_stream(1)
            await env.store.write(
                events.append, "message.created", {"content": "silent"}, [stream], env.clock()
            )
            env.clock.advance(2)
            assert await message_offsets(socket, 1) == [("silent", first + 1)]


async def test_reconcile_heals_only_streams_behind_their_log(env: Env) -> None:
    hub = env.app.state.realtime.hub
    first_contact = await env.contact()
    conversation = await env.conversation(first_contact["source_id"])
    early = await env.contact()
    # An event older than the subscription is what the client had before: never "behind".
    early_stream = events.session_stream(2)
    await env.store.write(events.append, "x.before", {"content": "old"}, [early_stream], 0)
    env.clock.advance(10)
    async with connected(env, FakeSocket()) as one, connected(env, FakeSocket()) as two:
        await subscribe(one, first_contact["pubsub_token"])
        await subscribe(two, early["pubsub_token"])
        await env.send(first_contact["source_id"], conversation["id"], content="seen")
        [(_, first)] = await message_offsets(one, 1)
        env.clock.advance(2)
        assert await hub.reconcile() == []

        stream = events.session_stream(1)
        now = env.clock()
        await env.store.write(events.append, "x.lost", {"content": "a"}, [stream], now)
        await env.store.write(events.append, "x.lost", {"content": "b"}, [early_stream], now)
        # Too young: its broadcast may still be on the way.
        assert await hub.reconcile() == []
        env.clock.advance(2)
        assert sorted(await hub.reconcile()) == sorted([stream, early_stream])
        assert await message_offsets(one, 1) == [("a", first + 1)]
        assert await message_offsets(two, 1) == [("b", 2)]
        assert await hub.reconcile() == []


async def test_between_full_reconciles_only_streams_appended_to_lately_are_read(env: Env) -> None:
    hub = env.app.state.realtime.hub
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        await env.send(contact["source_id"], conversation["id"], content="seen")
        [(_, first)] = await message_offsets(socket, 1)
        env.clock.advance(10)  # the stream goes quiet
        assert await hub.reconcile() == []
        stream = events.session_stream(1)
        # Stamped long before the last round began (a commit slower than the slack): a round
        # that reads only the streams appended to lately does not see it, the next full one does.
        await env.store.write(
            events.append, "x.slow", {"content": "slow"}, [stream], env.clock() - 60
        )
        assert await hub.reconcile(full=False) == []
        assert await hub.reconcile() == [stream]
        assert await message_offsets(socket, 1) == [("slow", first + 1)]
        # Stamped since the last round began: the next round, full or not, heals it.
        env.clock.advance(2)
        await env.store.write(
            events.append, "x.lost", {"content": "lost"}, [stream], env.clock() - 1.5
        )
        assert await hub.reconcile(full=False) == [stream]
        assert await message_offsets(socket, 1) == [("lost", first + 2)]
        assert await hub.reconcile(full=False) == []


async def test_a_reconcile_with_no_socket_listening_reads_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = env.app.state.realtime.hub
    contact = await env.contact()
    conversation = await env.conversation(contact["source_id"])
    await env.send(contact["source_id"], conversation["id"], content="busy log")
    reads: list[object] = []
    real_read = env.store.read

    async def counted(op: object, *args: object, **kwargs: object) -> object:
        reads.append(op)
        return await real_read(op, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(env.store, "read", counted)
    env.clock.advance(10)
    assert await hub.reconcile() == []
    assert await hub.reconcile(full=False) == []
    assert reads == []
    # Once a socket listens, the rounds read again and heal what its stream missed.
    async with connected(env, FakeSocket()) as socket:
        await subscribe(socket, contact["pubsub_token"])
        stream = events.session_stream(1)
        env.clock.advance(2)
        await env.store.write(
            events.append, "x.lost", {"content": "lost"}, [stream], env.clock() - 1.5
        )
        assert await hub.reconcile(full=False) == [stream]
        assert reads
        [(content, _)] = await message_offsets(socket, 1)
        assert content == "lost"
