"""Shared fixtures of the CableSession tests: a started session, frame decoding, events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from client_sdk import cable_protocol as cp
from gateway.realtime.core import (
    Action,
    CableSession,
    EncodedEvent,
    Limits,
    Send,
    StreamIds,
    SubscribeRequested,
)

T0 = 1_800_000_000.0
IDS = StreamIds(b"s" * 32)
CONTACT = '{"channel":"RoomChannel","pubsub_token":"tok"}'
AGENT = '{"channel":"RoomChannel","pubsub_token":"utok","account_id":1,"user_id":3}'
AGENT_SPACED = '{"channel": "RoomChannel", "pubsub_token": "utok", "account_id": 1, "user_id": 3}'
PLAIN = cp.SUBPROTOCOLS[cp.JSON]
EXT = cp.SUBPROTOCOLS[cp.EXT_JSON]
EXT_MP = cp.SUBPROTOCOLS[cp.EXT_MSGPACK]


def make(
    protocol: cp.Subprotocol = EXT, limits: Limits | None = None, restored: Any = None
) -> CableSession:
    session = CableSession(protocol, stream_ids=IDS, now=T0, limits=limits)
    session.start(T0, restored=restored)
    return session


def sent(actions: Sequence[Action], encoding: cp.Encoding = "json") -> list[cp.ServerFrame]:
    return [cp.decode_frame(a.frame, encoding) for a in actions if isinstance(a, Send)]


def cmd(command: cp.ClientCommand, protocol: cp.Subprotocol = EXT) -> cp.WireFrame:
    return cp.encode(command, protocol.encoding)


def subscribed(
    session: CableSession,
    identifier: str,
    streams: Sequence[str],
    history: cp.HistoryRequest | None = None,
) -> list[Action]:
    asked = session.receive(cmd(cp.Subscribe(identifier=identifier, history=history)), T0 + 1)
    assert [type(a) for a in asked] == [SubscribeRequested]
    return session.subscription_confirmed(identifier, streams, principal="contact_inbox:90")


def event(stream: str, offset: int, epoch: str | None = "ep") -> EncodedEvent:
    return EncodedEvent(
        stream, epoch, offset, b'{"event":"message.created","data":{"id":%d}}' % offset
    )
