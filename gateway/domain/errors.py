"""What a domain operation refuses. No HTTP here: each API answers these once, in its own
words (``gateway.routes.errors``: Chatwoot's public shapes for the public API, its ``ApiError``
bodies for the agent and platform APIs).

DomainError
├── NotFound            the record named does not exist (or is not the caller's to see)
├── InvalidAttribute    a field breaks a model rule: ``message`` and the ``attributes`` named
├── Flooded             too many messages in a conversation this minute; ``retry_after`` seconds
├── Locked              the record can no longer change (the CSAT 14-day lock)
├── LimitReached        the account's plan allows no more of these (inboxes, agents)
└── Duplicate           another record already holds what this one asks for (a source id)
"""

from __future__ import annotations


class DomainError(Exception):
    """Root of every rule a domain operation enforces."""


class NotFound(DomainError):
    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")
        self.what = what


class InvalidAttribute(DomainError):
    def __init__(self, message: str, attributes: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = attributes


class Flooded(DomainError):
    """The per-conversation flood guard: waiting ``retry_after`` seconds helps."""

    message = "Too many messages"

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.message)
        self.retry_after = retry_after


class Locked(DomainError):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class LimitReached(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Duplicate(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
