"""The exceptions of the gateway's top-level modules: the HTTP edge's, and the settings'. Every
one maps once (``gateway.http``) to a JSON error body. The domain's own errors carry no status:
each API turns them into these once (``gateway.routes.errors``). Each subpackage has its one
root: ``DomainError`` (``gateway.domain``), ``StoreError`` (``gateway.store``), ``BrokerError``
(``gateway.broker``), ``UrlRefused`` (``gateway.webhooks``), ``RealtimeError``
(``gateway.realtime``); ``tests/test_layers.py`` holds it.

GatewayError
├── BadRequest            400  malformed body (bad JSON, bad multipart)
├── HmacFailed            401  identifier_hash missing or wrong (Chatwoot: 500)
├── NotFound              404  unknown inbox, contact session, conversation, message
├── PayloadTooLarge       413  body or file over the configured limit
├── ValidationFailed      422  {"message", "attributes"}: wrong type, too long, too many messages
│                              (the flood guard's adds a Retry-After header)
├── Locked                422  {"error"}: the CSAT 14-day lock
├── RateLimited           429  Retry-After seconds
├── ServiceUnavailable    503  the store cannot take writes right now
├── ApiError              any  the agent and platform APIs' errors, with Chatwoot's exact bodies
└── SettingsError         500  an INBOXGATE_* variable that cannot be used (gateway.settings;
                               raised at start)
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

    def __init__(
        self, message: str, attributes: list[str], *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.attributes = attributes
        # Set when waiting helps (the flood guard): answered as a Retry-After header.
        self.retry_after = retry_after


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


class ApiError(GatewayError):
    """An agent-API or platform-API error whose body is given exactly (reference agent §1.2):
    Chatwoot's bodies differ per condition (``{"error"}``, ``{"errors": [...]}``)."""

    def __init__(
        self, status: int, body: dict[str, object], *, retry_after: int | None = None
    ) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.retry_after = retry_after

    @classmethod
    def error(cls, status: int, message: str) -> ApiError:
        return cls(status, {"error": message})


# The agent API's fixed answers (reference agent §1.2). There is no 403 there: authorization
# failures are 401s.
def sign_in_required() -> ApiError:
    return ApiError(401, {"errors": ["You need to sign in or sign up before continuing."]})


def invalid_access_token() -> ApiError:
    return ApiError.error(401, "Invalid Access Token")


def not_account_member() -> ApiError:
    return ApiError.error(401, "You are not authorized to access this account")


def not_authorized() -> ApiError:
    return ApiError.error(401, "You are not authorized to do this action")


def resource_not_found() -> ApiError:
    return ApiError.error(404, "Resource could not be found")


def param_missing(name: str) -> ApiError:
    return ApiError.error(422, f"param is missing or the value is empty: {name}")
