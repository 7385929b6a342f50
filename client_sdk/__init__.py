"""The inboxgate client SDK: the customer side of an API inbox, sync and async.

``client_sdk.protocol`` is the wire protocol the gateway shares. The SDK itself:

* :class:`AsyncInboxClient` / :class:`InboxClient`: every public API route as a typed method;
* :class:`AsyncChatSession` / :class:`ChatSession`: one contact session, its conversations,
  its sends (through a persistent :class:`Outbox`) and its realtime events;
* :mod:`client_sdk.events`: the typed events; :mod:`client_sdk.errors`: the exception tree.

The modules are imported lazily so that the gateway, which only needs ``protocol``, does not
pay for httpx and websockets.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .async_client import AsyncInboxClient
    from .async_session import AsyncChatSession, AsyncConversation
    from .cable_core import ReconnectPolicy
    from .http_core import AttachmentFile, identifier_hash
    from .options import Sent
    from .outbox import Outbox, OutboxEntry
    from .session_core import SessionState
    from .sync_client import InboxClient
    from .sync_session import ChatSession, Conversation

_EXPORTS = {
    "AsyncInboxClient": "async_client",
    "AsyncChatSession": "async_session",
    "AsyncConversation": "async_session",
    "ReconnectPolicy": "cable_core",
    "AttachmentFile": "http_core",
    "identifier_hash": "http_core",
    "Sent": "options",
    "Outbox": "outbox",
    "OutboxEntry": "outbox",
    "SessionState": "session_core",
    "InboxClient": "sync_client",
    "ChatSession": "sync_session",
    "Conversation": "sync_session",
}

__all__ = [
    "AsyncChatSession",
    "AsyncConversation",
    "AsyncInboxClient",
    "AttachmentFile",
    "ChatSession",
    "Conversation",
    "InboxClient",
    "Outbox",
    "OutboxEntry",
    "ReconnectPolicy",
    "Sent",
    "SessionState",
    "identifier_hash",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'client_sdk' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
