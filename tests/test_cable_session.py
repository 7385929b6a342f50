"""CableSession: the /cable state machine, driven with explicit time and no I/O."""

from __future__ import annotations

import json

import pytest

from client_sdk import cable_protocol as cp
from gateway.realtime.core import (
    CableSession,
    HistoryCursor,
    HistoryRequested,
    Listen,
    Notice,
    PerformRequested,
    SaveSession,
    Send,
    SubscribeRequested,
    Unlisten,
    Unsubscribed,
    new_sid,
)
from tests.cable_session_helpers import (
    AGENT,
    AGENT_SPACED,
    CONTACT,
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

# ---- welcome -------------------------------------------------------------------------------


def test_plain_welcome_is_exactly_chatwoots() -> None:
    session = CableSession(PLAIN, stream_ids=IDS, now=T0)
    assert session.start(T0) == [Send('{"type":"welcome"}')]


def test_extended_welcome_carries_a_fresh_sid_and_saves_the_session() -> None:
    session = CableSession(EXT_MP, stream_ids=IDS, now=T0)
    actions = session.start(T0)
    assert sent(actions, "msgpack") == [cp.Welcome(sid=session.sid)]
    assert isinstance(actions[0].frame, bytes)  # type: ignore[union-attr]
    assert actions[1] == SaveSession(session.sid, session.snapshot())
    assert len(session.sid) >= 20  # token_urlsafe(18): 144 random bits
    assert len({new_sid() for _ in range(1000)}) == 1000


def test_lifecycle_misuse_is_a_programming_error() -> None:
    session = CableSession(PLAIN, stream_ids=IDS, now=T0)
    with pytest.raises(RuntimeError):
        session.receive(cmd(cp.Pong()), T0)
    with pytest.raises(ValueError):
        session.start(T0, restored=[])  # plain sessions are never restored
    session.start(T0)
    with pytest.raises(RuntimeError):
        session.start(T0)


# ---- subscribe / confirm / reject / unsubscribe ----------------------------------------------


def test_confirm_only_after_the_subscription_is_live() -> None:
    session = make()
    asked = session.receive(cmd(cp.Subscribe(identifier=AGENT)), T0 + 1)
    assert asked == [
        SubscribeRequested(
            AGENT, {"channel": "RoomChannel", "pubsub_token": "utok", "account_id": 1, "user_id": 3}
        )
    ]
    actions = session.subscription_confirmed(AGENT, ["inbox:7", "account:1", "inbox:7"], "user:3")
    assert actions[0] == Listen(("inbox:7", "account:1"))
    assert sent(actions) == [cp.ConfirmSubscription(identifier=AGENT)]
    assert actions[1] == Send(cp.encode(cp.ConfirmSubscription(identifier=AGENT), "json"))
    assert isinstance(actions[2], SaveSession)
    assert session.identifiers == (AGENT,)
    assert session.streams == {"inbox:7", "account:1"}


def test_duplicate_subscribe_is_silent_while_pending_and_after_confirm() -> None:
    session = make()
    session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0)
    again = session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0 + 5)  # the 5 s retry
    assert sent(again) == [] and [type(a) for a in again] == [Notice]
    session.subscription_confirmed(CONTACT, ["session:90"])
    again = session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0 + 6)
    assert sent(again) == [] and [type(a) for a in again] == [Notice]


def test_reject_then_subscribe_again() -> None:
    session = make()
    session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0)
    assert sent(session.subscription_rejected(CONTACT)) == [
        cp.RejectSubscription(identifier=CONTACT)
    ]
    assert session.subscription_rejected(CONTACT) == []  # nothing pending any more
    assert session.subscription_confirmed(CONTACT, ["x"]) == []
    asked = session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0)
    assert [type(a) for a in asked] == [SubscribeRequested]


@pytest.mark.parametrize("identifier", ["not json", "[1]", '{"id":1}', '{"channel":5}'])
def test_identifier_without_a_channel_is_rejected(identifier: str) -> None:
    session = make()
    actions = session.receive(cmd(cp.Subscribe(identifier=identifier)), T0)
    assert sent(actions) == [cp.RejectSubscription(identifier=identifier)]


def test_unsubscribe_while_pending_drops_the_late_result() -> None:
    session = make()
    session.receive(cmd(cp.Subscribe(identifier=CONTACT)), T0)
    assert session.receive(cmd(cp.Unsubscribe(identifier=CONTACT)), T0) == []
    assert session.subscription_confirmed(CONTACT, ["session:90"]) == []
    assert session.streams == frozenset()


def test_unsubscribe_unlistens_only_streams_nobody_else_needs() -> None:
    session = make()
    subscribed(session, AGENT, ["inbox:7", "account:1"])
    subscribed(session, AGENT_SPACED, ["inbox:7"])
    actions = session.receive(cmd(cp.Unsubscribe(identifier=AGENT)), T0 + 2)
    assert actions[:2] == [Unlisten(("account:1",)), Unsubscribed(AGENT, "contact_inbox:90")]
    assert isinstance(actions[2], SaveSession)
    assert session.streams == {"inbox:7"}
    actions = session.receive(cmd(cp.Unsubscribe(identifier=AGENT_SPACED)), T0 + 2)
    assert actions[0] == Unlisten(("inbox:7",))
    assert session.deliver(event("inbox:7", 1)) == []
    unknown = session.receive(cmd(cp.Unsubscribe(identifier=AGENT)), T0 + 2)
    assert [type(a) for a in unknown] == [Notice]


def test_plain_sessions_never_save_snapshots() -> None:
    session = make(PLAIN)
    session.receive(cmd(cp.Subscribe(identifier=CONTACT), PLAIN), T0)
    actions = session.subscription_confirmed(CONTACT, ["session:90"])
    assert not any(isinstance(a, SaveSession) for a in actions)


# ---- fan-out ---------------------------------------------------------------------------------


def test_deliver_splices_each_subscriptions_own_identifier() -> None:
    session = make()
    subscribed(session, AGENT, ["inbox:7"])
    subscribed(session, AGENT_SPACED, ["inbox:7"])
    frames = [cp.decode_frame(f, "json") for f in session.deliver(event("inbox:7", 5))]
    assert frames == [
        cp.Broadcast(
            identifier=ident,
            message={"event": "message.created", "data": {"id": 5}},
            stream_id=IDS("inbox:7"),
            epoch="ep",
            offset=5,
        )
        for ident in (AGENT, AGENT_SPACED)
    ]
    assert session.deliver(event("inbox:8", 1)) == []


def test_plain_and_transient_frames_carry_no_position() -> None:
    plain = make(PLAIN)
    plain.receive(cmd(cp.Subscribe(identifier=CONTACT), PLAIN), T0)
    plain.subscription_confirmed(CONTACT, ["session:90"])
    [frame] = plain.deliver(event("session:90", 1))
    assert json.loads(frame) == {
        "identifier": CONTACT,
        "message": {"event": "message.created", "data": {"id": 1}},
    }
    ext = make()
    subscribed(ext, CONTACT, ["session:90"])
    [frame] = ext.deliver(event("session:90", 0, epoch=None))
    assert "stream_id" not in json.loads(frame)


def test_msgpack_session_delivers_binary_frames() -> None:
    session = make(EXT_MP)
    session.receive(cmd(cp.Subscribe(identifier=CONTACT), EXT_MP), T0)
    session.subscription_confirmed(CONTACT, ["session:90"])
    [frame] = session.deliver(event("session:90", 2))
    assert isinstance(frame, bytes)
    decoded = cp.decode_frame(frame, "msgpack")
    assert isinstance(decoded, cp.Broadcast) and decoded.offset == 2


# ---- perform ---------------------------------------------------------------------------------


def test_perform_update_presence() -> None:
    session = make()
    subscribed(session, CONTACT, ["session:90"])
    data = '{"action":"update_presence"}'
    actions = session.receive(cmd(cp.Perform(identifier=CONTACT, data=data)), T0 + 2)
    assert actions == [
        PerformRequested(
            CONTACT, "contact_inbox:90", "update_presence", {"action": "update_presence"}
        )
    ]
    for bad in ("nope", "[1]", '{"x":1}', '{"action":5}'):
        actions = session.receive(cmd(cp.Perform(identifier=CONTACT, data=bad)), T0 + 2)
        assert [type(a) for a in actions] == [Notice]
    actions = session.receive(cmd(cp.Perform(identifier=AGENT, data=data)), T0 + 2)
    assert [type(a) for a in actions] == [Notice]


def test_unknown_commands_and_pongs_are_tolerated() -> None:
    session = make()
    whisper = '{"command":"whisper","identifier":"x","data":{"a":1}}'
    assert [type(a) for a in session.receive(whisper, T0)] == [Notice]
    assert session.receive(cmd(cp.Pong()), T0) == []
    assert not session.closed


# ---- history -------------------------------------------------------------------------------


def test_subscribe_with_history_asks_after_confirming() -> None:
    session = make()
    history = cp.HistoryRequest(
        since=T0 - 60,
        streams={
            IDS("inbox:7"): cp.StreamPosition(epoch="ep", offset=4),
            "someone-elses-stream-id": cp.StreamPosition(epoch="ep", offset=1),
        },
    )
    actions = subscribed(session, AGENT, ["inbox:7", "account:1"], history)
    kinds = [type(a) for a in actions]
    assert kinds == [Listen, Send, SaveSession, HistoryRequested]
    assert actions[-1] == HistoryRequested(
        AGENT,
        (
            HistoryCursor("inbox:7", "ep", 4, None),
            HistoryCursor("account:1", None, None, T0 - 60),
        ),
    )
    replay = session.history_served(AGENT, [event("inbox:7", 5), event("other", 1)])
    frames = sent(replay)
    assert [type(f) for f in frames] == [cp.Broadcast, cp.ConfirmHistory]
    assert frames[0] == cp.Broadcast(
        identifier=AGENT,
        message={"event": "message.created", "data": {"id": 5}},
        stream_id=IDS("inbox:7"),
        epoch="ep",
        offset=5,
    )


def test_history_with_nothing_to_replay_still_asks_the_shell() -> None:
    # The shell holds live events back while a replay is pending; it must hear that this one
    # is over, even with no cursor to read.
    session = make()
    actions = subscribed(session, CONTACT, ["session:90"], cp.HistoryRequest(since=0, streams={}))
    assert sent(actions) == [cp.ConfirmSubscription(identifier=CONTACT)]
    assert actions[-1] == HistoryRequested(CONTACT, ())
    assert sent(session.history_served(CONTACT, [])) == [cp.ConfirmHistory(identifier=CONTACT)]
    actions = subscribed(session, AGENT, ["inbox:7"], cp.HistoryRequest())  # not requested
    assert not any(isinstance(a, HistoryRequested) for a in actions)


def test_history_command_after_restore_and_rejection() -> None:
    session = make()
    subscribed(session, CONTACT, ["session:90"])
    position = {IDS("session:90"): cp.StreamPosition(epoch="old", offset=3)}
    request = cp.History(identifier=CONTACT, history=cp.HistoryRequest(streams=position))
    actions = session.receive(cmd(request), T0 + 3)
    assert actions == [HistoryRequested(CONTACT, (HistoryCursor("session:90", "old", 3, None),))]
    assert sent(session.history_rejected(CONTACT)) == [cp.RejectHistory(identifier=CONTACT)]
    stranger = cp.History(identifier=AGENT, history=cp.HistoryRequest(since=1))
    assert sent(session.receive(cmd(stranger), T0)) == [cp.RejectHistory(identifier=AGENT)]
    empty = cp.History(identifier=CONTACT, history=cp.HistoryRequest())
    assert [type(a) for a in session.receive(cmd(empty), T0)] == [Notice]
    session.receive(cmd(cp.Unsubscribe(identifier=CONTACT)), T0)
    assert session.history_served(CONTACT, []) == []
    assert session.history_rejected(CONTACT) == []


def test_plain_protocol_ignores_history() -> None:
    session = make(PLAIN)
    history = cp.HistoryRequest(since=T0)
    session.receive(cmd(cp.Subscribe(identifier=CONTACT, history=history), PLAIN), T0)
    actions = session.subscription_confirmed(CONTACT, ["session:90"])
    assert sent(actions) == [cp.ConfirmSubscription(identifier=CONTACT)]
    command = cmd(cp.History(identifier=CONTACT, history=history), PLAIN)
    assert [type(a) for a in session.receive(command, T0)] == [Notice]


def test_stream_ids_map_back_only_for_held_streams() -> None:
    session = make()
    subscribed(session, AGENT, ["inbox:7"])
    assert session.stream_for_id(IDS("inbox:7")) == "inbox:7"
    assert session.stream_for_id(IDS("inbox:8")) is None
