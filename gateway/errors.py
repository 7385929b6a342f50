"""Gateway exceptions. Every one maps once (``gateway.http``) to a JSON error body.

GatewayError
├── BadRequest            400  malformed body (bad JSON, bad multipart)
├── HmacFailed            401  identifier_hash missing or wrong (Chatwoot: 500)
├── NotFound              404  unknown inbox, contact session, conversation, message
├── PayloadTooLarge       413  body or file over the configured limit
├── ValidationFailed      422  {"message", "attributes"}: wrong type, too long, too many messages
├── Locked                422  {"error"}: the CSAT 14-day lock
├── RateLimited           429  Retry-After seconds
└── ServiceUnavailable    503  the store cannot take writes right now
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway turns into an HTTP response."""

    status = 500


class BadRequest(GatewayError):
    status = 400

    def __init__(self, description: str, field: str = "body") -> None:
        super().__init__(description)
        self.description = description
        self.field = field


class HmacFailed(GatewayError):
    status = 401

    def __init__(self, description: str = "HMAC failed: Invalid Identifier Hash Provided") -> None:
        super().__init__(description)
        self.description = description


class NotFound(GatewayError):
    status = 404

    def __init__(self, what: str = "resource") -> None:
        super().__init__(f"{what} not found")
        self.what = what


class PayloadTooLarge(GatewayError):
    status = 413

    def __init__(self, description: str, field: str = "body") -> None:
        super().__init__(description)
        self.description = description
        self.field = field


class ValidationFailed(GatewayError):
    status = 422

    def __init__(self, message: str, attributes: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = attributes


class Locked(GatewayError):
    status = 422

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class RateLimited(GatewayError):
    status = 429

    def __init__(self, retry_after: int, description: str = "Too many requests") -> None:
        super().__init__(description)
        self.retry_after = retry_after
        self.description = description


class ServiceUnavailable(GatewayError):
    status = 503

    def __init__(self, description: str = "The store is unavailable, retry shortly") -> None:
        super().__init__(description)
        self.description = description
