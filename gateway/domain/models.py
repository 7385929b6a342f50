"""What the agent and platform APIs read beyond one table's row: an inbox with its settings,
an account member with their role, a user with their accounts. Domain reads return these and
the admin views render them, so they sit apart from both."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..store.records import Account, Contact, Inbox, Message, Record, User


class InboxSettings(Record, kw_only=True):
    enable_auto_assignment: bool
    enable_email_collect: bool
    allow_messages_after_resolved: bool
    sender_name_type: str
    business_name: str | None
    csat_config: dict[str, Any]
    auto_assignment_config: dict[str, Any]
    channel_attributes: dict[str, Any]
    updated_at: float


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


class AccountDetails(Record, kw_only=True):
    id: int
    name: str
    locale: str
    domain: str | None
    support_email: str | None
    status: str
    features: dict[str, bool]
    limits: dict[str, Any]
    custom_attributes: dict[str, Any]


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
