"""What the agent and platform APIs read beyond one table's row: an inbox with its settings,
an account member with their role, a user with their accounts. Domain reads return these and
the admin views render them, so they sit apart from both."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..store.records import Account, Contact, Inbox, Message, User
from ..store.sql import Row, load_json


class InboxSettings(Struct, kw_only=True):
    enable_auto_assignment: bool
    enable_email_collect: bool
    allow_messages_after_resolved: bool
    sender_name_type: str
    business_name: str | None
    csat_config: dict[str, Any]
    auto_assignment_config: dict[str, Any]
    channel_attributes: dict[str, Any]
    updated_at: float

    COLUMNS = (
        "enable_auto_assignment, enable_email_collect, allow_messages_after_resolved, "
        "sender_name_type, business_name, csat_config, auto_assignment_config, "
        "channel_attributes, updated_at"
    )

    @classmethod
    def from_row(cls, r: Row) -> InboxSettings:
        return cls(
            enable_auto_assignment=bool(r[0]), enable_email_collect=bool(r[1]),
            allow_messages_after_resolved=bool(r[2]), sender_name_type=r[3], business_name=r[4],
            csat_config=load_json(r[5], {}), auto_assignment_config=load_json(r[6], {}),
            channel_attributes=load_json(r[7], {}), updated_at=r[8],
        )  # fmt: skip


class AdminInbox(Struct, kw_only=True):
    inbox: Inbox
    settings: InboxSettings


class AgentMember(Struct, kw_only=True):
    """A user as a member of one account."""

    user: User
    role: str
    auto_offline: bool


class ContactInboxView(Struct, kw_only=True):
    source_id: str
    inbox_id: int
    inbox_name: str


class AccountDetails(Struct, kw_only=True):
    id: int
    name: str
    locale: str
    domain: str | None
    support_email: str | None
    status: str
    features: dict[str, bool]
    limits: dict[str, Any]
    custom_attributes: dict[str, Any]

    COLUMNS = "id, name, locale, domain, support_email, status, features, limits, custom_attributes"

    @classmethod
    def from_row(cls, r: Row) -> AccountDetails:
        return cls(
            id=r[0], name=r[1], locale=r[2], domain=r[3], support_email=r[4], status=r[5],
            features=load_json(r[6], {}), limits=load_json(r[7], {}),
            custom_attributes=load_json(r[8], {}),
        )  # fmt: skip


class AccountUserRow(Struct, kw_only=True):
    id: int | None
    account_id: int
    user_id: int
    role: str
    inviter_id: int | None
    created_at: float
    updated_at: float | None
    availability: str
    auto_offline: bool


class UserDetails(Struct, kw_only=True):
    """A user with their profile fields and their accounts (newest membership first)."""

    user: User
    display_name: str | None
    custom_attributes: dict[str, Any]
    accounts: list[tuple[Account, str]]


class MessagePage(Struct, kw_only=True):
    """A page of a conversation's messages (hydrated), with who the agent API's ``meta``
    names: the contact and the assignee."""

    messages: list[Message]
    contact: Contact
    assignee: User | None
