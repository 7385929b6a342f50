"""The realtime package's exceptions: one root, drawn here.

::

    RealtimeError
    ├── WebSocketError     the client broke RFC 6455: close the connection with ``code``
    │                      (``core.websocket``)
    └── RestoreDeferred    a session restore the store could not re-check now; kept for a retry
                           (``connection``)

Frames a client sends that do not decode are not raised through here: the cable core answers
them (``CableProtocolError`` from the shared protocol is caught where it is decoded).
"""

from __future__ import annotations


class RealtimeError(Exception):
    """Root of every exception the realtime package defines."""
