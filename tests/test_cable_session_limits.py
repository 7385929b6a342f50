"""CableSession: limits, timers, snapshots and hostile input, with explicit time."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk import cable_protocol as cp
from gateway.realtime.core import (
    CableSession,
    Close,
    Limits,
    Listen,
    Notice,
    SaveSession,
    Send,
    SubscribeRequested,
    SubscriptionState,
    dump_snapshot,
    load_snapshot,
    ping_frame,
    restore_sid,
)
from tests.cable_session_helpers import (
    AGENT,
    CONTACT,
    EXT,
    EXT_MP,
    IDS,
    PLAIN,
    T0,
    cmd,
    event,
    make,
    sent,
    subscribed,
)

# ---- limits --------------------------------------------------------------------------------


def test_subscription_limit_rejects_clearly() -> None:
    session = make(limits=Limits(max_subscriptions=2))
    session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0)  # pending counts
    subscribed(session, AGENT, ["inbox:7"])
    third = '{"channel":"RoomChannel","pubsub_token":"other"}'
    actions = session.receive(cmd(cp.Subscribe(identifier=third)), T0)
    assert actions[0] == Notice("subscription limit reached")
    assert sent(actions) == [cp.RejectSubscription(identifier=third)]


def test_identifier_length_limit() -> None:
    session = make(limits=Limits(max_identifier_bytes=40))
    actions = session.receive(cmd(cp.Subscribe(identifier=AGENT)), T0)
    assert sent(actions) == [cp.RejectSubscription(identifier=AGENT)]


@pytest.mark.parametrize(
    "frame",
    [
        "{" * 10,
        '{"command":"subscribe"}',
        b"\xc1",
        '{"command":"message","identifier":"x","data":{"action":"a"}}',
    ],
)
def test_malformed_frame_is_a_protocol_error_not_a_crash(frame: cp.WireFrame) -> None:
    session = make()
    actions = session.receive(frame, T0)
    assert isinstance(actions[0], Notice)
    assert sent(actions) == [cp.Disconnect(reason="invalid_request", reconnect=False)]
    assert actions[-1] == Close(1002, "invalid_request")
    assert session.closed
    assert session.receive(cmd(cp.Pong()), T0) == []
    assert session.tick(T0 + 100) == []


def test_oversized_frame_closes_with_1009() -> None:
    session = make(limits=Limits(max_frame_bytes=100))
    identifier = json.dumps({"channel": "RoomChannel", "pubsub_token": "é" * 40})
    actions = session.receive(cmd(cp.Subscribe(identifier=identifier)), T0)  # 80+ bytes of é
    assert actions[-1] == Close(1009, "invalid_request")


def test_text_frame_on_a_msgpack_session_is_a_protocol_error() -> None:
    session = make(EXT_MP)
    actions = session.receive('{"command":"pong"}', T0)
    assert actions[-1] == Close(1002, "invalid_request")


# ---- time ----------------------------------------------------------------------------------


def test_a_session_sends_the_node_ping_once_started_and_until_closed() -> None:
    session = CableSession(PLAIN, stream_ids=IDS, now=T0)
    assert not session.ping(T0)  # no ping before the welcome
    session.start(T0)
    session.receive(cmd(cp.Subscribe(identifier=CONTACT), PLAIN), T0)
    assert session.ping(T0 + 3)
    assert session.tick(T0 + 3) == []  # the session keeps no ping clock of its own
    assert session.next_deadline() == math.inf  # subscribed, no pong timeout: nothing to do
    session.disconnect("server_restart", reconnect=True)
    assert not session.ping(T0 + 6)


def test_ping_frames_are_shared_per_second() -> None:
    first = ping_frame(T0, "json")
    assert ping_frame(T0, "msgpack") == cp.encode(cp.Ping(message=int(T0)), "msgpack")
    assert ping_frame(T0 + 0.5, "json") is first  # other encodings do not evict it
    assert ping_frame(T0 + 1, "json") != first
    assert ping_frame(T0, "json") == f'{{"type":"ping","message":{int(T0)}}}'


def test_time_to_first_subscribe() -> None:
    session = make(limits=Limits(first_subscribe_timeout=10))
    assert session.next_deadline() == T0 + 10
    assert session.tick(T0 + 9.9) == []
    actions = session.tick(T0 + 10)
    assert sent(actions) == [cp.Disconnect(reason="idle_timeout", reconnect=False)]
    assert isinstance(actions[-1], Close)


def test_a_subscribe_attempt_stops_the_first_subscribe_clock() -> None:
    session = make(limits=Limits(first_subscribe_timeout=10))
    session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0 + 1)
    session.subscription_rejected(CONTACT)
    assert not any(isinstance(a, Close) for a in session.tick(T0 + 60))


def test_pong_timeout_on_the_extended_protocol() -> None:
    session = make(limits=Limits(pong_timeout=5))
    subscribed(session, CONTACT, ["session:90"])
    assert session.next_deadline() == math.inf
    assert session.ping(T0 + 3)  # now waiting for any client frame
    assert session.next_deadline() == T0 + 8
    session.receive(cmd(cp.Pong()), T0 + 4)
    assert session.next_deadline() == math.inf
    session.ping(T0 + 6)
    session.ping(T0 + 9)  # still waiting since the first unanswered ping
    assert session.next_deadline() == T0 + 11
    assert session.tick(T0 + 10.9) == []
    actions = session.tick(T0 + 11)
    assert sent(actions) == [cp.Disconnect(reason="no_pong", reconnect=True)]


def test_disconnect_on_shutdown_and_idempotence() -> None:
    session = make(PLAIN)
    actions = session.disconnect("server_restart", reconnect=True, code=1001)
    assert actions == [
        Send('{"type":"disconnect","reason":"server_restart","reconnect":true}'),
        Close(1001, "server_restart"),
    ]
    assert session.disconnect("server_restart", reconnect=True) == []
    assert session.deliver(event("x", 1)) == []


# ---- snapshot and restore --------------------------------------------------------------------


def test_snapshot_round_trips_and_restores_on_a_new_socket() -> None:
    old = make()
    subscribed(old, AGENT, ["inbox:7", "account:1"])
    subscribed(old, CONTACT, ["session:90"])
    snapshot = load_snapshot(dump_snapshot(old.snapshot()))
    assert snapshot == old.snapshot()
    assert snapshot.subscriptions[0] == SubscriptionState(
        identifier=AGENT, streams=("inbox:7", "account:1"), principal="contact_inbox:90"
    )

    new = CableSession(EXT, stream_ids=IDS, now=T0 + 10)
    actions = new.start(T0 + 10, restored=snapshot.subscriptions)
    assert actions[0] == Listen(("inbox:7", "account:1", "session:90"))
    assert sent(actions) == [cp.Welcome(sid=new.sid, restored=True, restored_ids=[AGENT, CONTACT])]
    assert new.sid != old.sid
    assert isinstance(actions[-1], SaveSession)
    assert len(new.deliver(event("session:90", 1))) == 1
    assert not any(isinstance(a, Close) for a in new.tick(T0 + 1000))  # counts as subscribed


def test_a_found_session_with_nothing_left_restores_nothing_explicitly() -> None:
    session = CableSession(EXT, stream_ids=IDS, now=T0)
    actions = session.start(T0, restored=[])
    assert sent(actions) == [cp.Welcome(sid=session.sid, restored=True, restored_ids=[])]


def test_restore_sid_sources() -> None:
    assert restore_sid("", None) is None
    assert restore_sid(None, None) is None
    assert restore_sid("q", None) == "q"
    assert restore_sid("q", "h") == "h"


def test_corrupt_snapshot_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_snapshot(b"{")
    with pytest.raises(msgspec.ValidationError):
        load_snapshot(b'{"subscriptions":[{"streams":[]}]}')


# ---- hostile input never escapes as an exception ---------------------------------------------


@settings(max_examples=200)
@given(
    protocol=st.sampled_from([PLAIN, EXT, EXT_MP]),
    frames=st.lists(st.binary(max_size=80) | st.text(max_size=80), max_size=5),
)
def test_arbitrary_frames_only_produce_actions(
    protocol: cp.Subprotocol, frames: list[cp.WireFrame]
) -> None:
    session = make(protocol)
    for frame in frames:
        actions = session.receive(frame, T0)
        assert all(isinstance(a, Send | Close | Notice | SubscribeRequested) for a in actions)
