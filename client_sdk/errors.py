"""The SDK's exceptions: one root, so ``except InboxError`` catches everything the SDK raises.

::

    InboxError
    ├── TransportError            the gateway could not be reached, or the connection broke
    ├── ApiError                  the gateway answered with an error status (``.status``, ``.body``)
    │   ├── BadRequest            400  a malformed request body
    │   ├── Unauthorized          401  a missing or wrong ``identifier_hash``
    │   ├── NotFound              404  unknown inbox, contact session, conversation or message
    │   ├── PayloadTooLarge       413  a body or attachment over the gateway's limit
    │   ├── ValidationFailed      422  ``.attributes`` names what was wrong (``["content"]``)
    │   ├── RateLimited           429  ``.retry_after`` seconds, from the ``Retry-After`` header
    │   └── ServerError           5xx  the gateway (or Chatwoot, for an HMAC failure) failed
    ├── ProtocolError             the server sent something this SDK cannot read
    │   └── CableProtocolError    a cable frame that is not well formed (``cable_protocol``)
    └── ConnectionClosed          the realtime subscription ended for good (closed, or the
                                  server said ``reconnect: false``)

Errors on the realtime path that the SDK recovers from by itself (a dropped socket, a stale
connection, a ``disconnect`` asking to reconnect) are never raised: the subscription reconnects.
"""

from __future__ import annotations

from typing import Any


class InboxError(Exception):
    """Root of every exception the SDK raises."""


class TransportError(InboxError):
    """The gateway could not be reached, or the connection broke mid-request."""


class ProtocolError(InboxError):
    """The server sent a response or frame that this SDK cannot decode."""


class ConnectionClosed(InboxError):
    """The realtime subscription ended for good. ``reason`` is the server's, if it gave one."""

    def __init__(self, reason: str = "closed") -> None:
        super().__init__(reason)
        self.reason = reason


class ApiError(InboxError):
    """The gateway answered with an error status.

    ``status`` is the HTTP status; ``body`` the decoded JSON body (or the raw text when it was
    not JSON); ``message`` a one-line description taken from the body.
    """

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body


class BadRequest(ApiError):
    """400: the request body was malformed."""


class Unauthorized(ApiError):
    """401: the ``identifier_hash`` was missing or wrong."""


class NotFound(ApiError):
    """404: unknown inbox, contact session, conversation, message or survey."""


class PayloadTooLarge(ApiError):
    """413: a body or attachment over the gateway's limit."""


class ValidationFailed(ApiError):
    """422: ``attributes`` lists the offending attributes (``["content"]``, ``["rating"]``)."""

    def __init__(self, status: int, message: str, body: Any = None, *, attributes: list[str]):
        super().__init__(status, message, body)
        self.attributes = attributes


class RateLimited(ApiError):
    """429: retry after ``retry_after`` seconds (None when the server did not say)."""

    def __init__(self, status: int, message: str, body: Any = None, *, retry_after: float | None):
        super().__init__(status, message, body)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed (Chatwoot answers an HMAC failure with a 500 too)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    413: PayloadTooLarge,
}
