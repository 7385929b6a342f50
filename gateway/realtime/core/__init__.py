"""The /cable protocol core, without I/O: sessions, broadcast frames, stream ids.

The wire shapes and codecs live in :mod:`client_sdk.cable_protocol` (shared with the SDK). The
ASGI endpoint is a shell around :class:`CableSession`: it moves frames and time, answers the
session's intents (authorization, history, presence) and feeds it broker events as
:class:`EncodedEvent` objects built once per event per node.
"""

from .actions import (
    Action,
    Close,
    HistoryCursor,
    HistoryRequested,
    Limits,
    Listen,
    Notice,
    PerformRequested,
    SaveSession,
    Send,
    SessionSnapshot,
    SubscribeRequested,
    SubscriptionState,
    Unlisten,
    Unsubscribed,
    dump_snapshot,
    load_snapshot,
    new_sid,
    restore_sid,
)
from .frames import (
    EncodedEvent,
    JsonSplicer,
    MsgpackSplicer,
    StreamIds,
    ping_frame,
    splice,
    splicer_for,
)
from .ping_wheel import PingWheel
from .session import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CableSession,
)

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "Action",
    "CableSession",
    "Close",
    "EncodedEvent",
    "HistoryCursor",
    "HistoryRequested",
    "JsonSplicer",
    "Limits",
    "Listen",
    "MsgpackSplicer",
    "Notice",
    "PerformRequested",
    "PingWheel",
    "SaveSession",
    "Send",
    "SessionSnapshot",
    "StreamIds",
    "SubscribeRequested",
    "SubscriptionState",
    "Unlisten",
    "Unsubscribed",
    "dump_snapshot",
    "load_snapshot",
    "new_sid",
    "ping_frame",
    "restore_sid",
    "splice",
    "splicer_for",
]
