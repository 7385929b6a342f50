"""The Platform API (accounts, account users, users and their tokens; reference agent §4)
and the GoHighLevel-compatible conversation create (seed 004).
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from .public import JSONObject

__all__ = [
    "AccountUserRecord",
    "AccountUserRequest",
    "HighLevelConversation",
    "HighLevelConversationRequest",
    "HighLevelConversationResponse",
    "HighLevelError",
    "PlatformAccount",
    "PlatformAccountRequest",
    "PlatformUser",
    "PlatformUserAccount",
    "PlatformUserRequest",
    "TokenUser",
    "UserToken",
]


class PlatformAccountRequest(Struct, kw_only=True):
    """Body of the platform API's ``POST|PATCH /accounts[/{id}]``."""

    name: str | UnsetType | None = UNSET
    locale: str | UnsetType | None = UNSET
    domain: str | UnsetType | None = UNSET
    support_email: str | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET
    features: dict[str, bool] | None = None
    limits: JSONObject | None = None
    custom_attributes: JSONObject | None = None


class PlatformAccount(Struct, kw_only=True):
    id: int
    name: str
    locale: str = "en"
    domain: str | None = None
    support_email: str | None = None
    features: dict[str, bool] = {}
    custom_attributes: JSONObject = {}
    limits: JSONObject = {}
    status: str = "active"


class AccountUserRequest(Struct, kw_only=True):
    """Body of ``POST|DELETE /platform/api/v1/accounts/{id}/account_users``."""

    user_id: int | None = None
    role: str | None = None


class AccountUserRecord(Struct, kw_only=True):
    """An account membership as its raw record (Chatwoot's ``render json: account_user``)."""

    id: int | None
    account_id: int
    user_id: int
    role: str
    inviter_id: int | None = None
    created_at: str
    updated_at: str
    active_at: str | None = None
    availability: str = "online"
    auto_offline: bool = True
    custom_role_id: int | None = None
    agent_capacity_policy_id: int | None = None


class PlatformUserRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH /platform/api/v1/users[/{id}]``."""

    name: str | UnsetType | None = UNSET
    display_name: str | UnsetType | None = UNSET
    email: str | UnsetType | None = UNSET
    password: str | None = None
    custom_attributes: JSONObject | None = None


class PlatformUserAccount(Struct, kw_only=True):
    id: int
    name: str
    active_at: str | None = None
    role: str


class PlatformUser(Struct, kw_only=True):
    """A user on the platform API. ``access_token`` is present only in the answer that
    created or rotated it: only its hash is stored."""

    access_token: str | UnsetType = UNSET
    account_id: int | None = None
    available_name: str
    avatar_url: str = ""
    confirmed: bool = True
    display_name: str | None = None
    message_signature: str | None = None
    email: str
    id: int
    name: str
    provider: str = "email"
    pubsub_token: str
    custom_attributes: JSONObject = {}
    role: str | None = None
    ui_settings: JSONObject = {}
    uid: str
    accounts: list[PlatformUserAccount] = []


class TokenUser(Struct, kw_only=True):
    id: int
    name: str
    display_name: str | None = None
    email: str
    pubsub_token: str


class UserToken(Struct, kw_only=True):
    """``POST /platform/api/v1/users/{id}/token``: a new access token (the old one stops
    working)."""

    access_token: str
    expiry: int | None = None
    user: TokenUser


# --------------------------------------------------------------------------------------------
# GoHighLevel-compatible conversation create (seed 004)
# --------------------------------------------------------------------------------------------


class HighLevelConversationRequest(Struct, kw_only=True):
    """GoHighLevel's ``POST /conversations/`` body (seed 004). Lenient on decode: a missing or
    non-string id is a 422 the service reports, not a decode error."""

    locationId: Any = None  # GoHighLevel spells its fields in camelCase
    contactId: Any = None


class HighLevelConversation(Struct, kw_only=True):
    id: str
    dateUpdated: str
    dateAdded: str
    deleted: bool = False
    contactId: str
    locationId: str
    lastMessageDate: str
    assignedTo: str = ""


class HighLevelConversationResponse(Struct, kw_only=True):
    success: bool = True
    conversation: HighLevelConversation


class HighLevelError(Struct, kw_only=True, omit_defaults=True):
    """GoHighLevel's error envelope: ``message`` is a list for 422, a string otherwise, and a
    400 carries no ``error``."""

    statusCode: int
    message: str | list[str]
    error: str | None = None
