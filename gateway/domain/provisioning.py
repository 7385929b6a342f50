"""Accounts, inboxes and users: what operators create with ``inboxgate account|inbox|user``."""

from __future__ import annotations

import hashlib
from typing import Any

from msgspec import Struct

from ..store.records import DEFAULT_WORKING_HOURS, Account, Inbox, User
from ..store.sql import Op, dump_json, one, rows, short_read
from .errors import NotFound
from .tokens import secure_token


class NewInbox(Struct, kw_only=True):
    account_id: int
    name: str
    hmac_mandatory: bool = False
    webhook_url: str | None = None
    csat_survey_enabled: bool = False
    csat_display_type: str = "emoji"
    csat_message: str | None = None
    timezone: str = "UTC"
    working_hours_enabled: bool = False
    working_hours: list[dict[str, Any]] | None = None
    out_of_office_message: str | None = None
    greeting_enabled: bool = False
    greeting_message: str | None = None
    lock_to_single_conversation: bool = False
    allowed_origins: list[str] = []
    reply_time_window_hours: int | None = None


def hash_token(token: str) -> str:
    """Access tokens are stored as SHA-256: a leaked database does not leak credentials."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_account(name: str, now: float) -> Op[Account]:
    row = yield from one(
        "INSERT INTO accounts (name, last_display_id, created_at, updated_at) VALUES (?, 0, ?, ?) "
        f"RETURNING {Account.COLUMNS}",
        name, now, now,
    )  # fmt: skip
    assert row is not None
    return Account.from_row(row)


def get_account(account_id: int) -> Op[Account | None]:
    row = yield from one(f"SELECT {Account.COLUMNS} FROM accounts WHERE id = ?", account_id)
    return Account.from_row(row) if row else None


def find_account_by_name(name: str) -> Op[Account | None]:
    row = yield from one(
        f"SELECT {Account.COLUMNS} FROM accounts WHERE name = ? ORDER BY id LIMIT 1", name
    )
    return Account.from_row(row) if row else None


def create_inbox(new: NewInbox, now: float) -> Op[Inbox]:
    account = yield from get_account(new.account_id)
    if account is None:
        raise NotFound("account")
    row = yield from one(
        "INSERT INTO inboxes (account_id, name, identifier, hmac_token, hmac_mandatory, "
        "webhook_url, csat_survey_enabled, csat_display_type, csat_message, timezone, "
        "working_hours_enabled, working_hours, out_of_office_message, greeting_enabled, "
        "greeting_message, lock_to_single_conversation, allowed_origins, "
        "reply_time_window_hours, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        f"RETURNING {Inbox.COLUMNS}",
        new.account_id, new.name, secure_token(), secure_token(), new.hmac_mandatory,
        new.webhook_url, new.csat_survey_enabled, new.csat_display_type, new.csat_message,
        new.timezone, new.working_hours_enabled,
        dump_json(new.working_hours or DEFAULT_WORKING_HOURS), new.out_of_office_message,
        new.greeting_enabled, new.greeting_message, new.lock_to_single_conversation,
        dump_json(new.allowed_origins), new.reply_time_window_hours, now, now,
    )  # fmt: skip
    assert row is not None
    return Inbox.from_row(row)


def get_inbox(inbox_id: int) -> Op[Inbox | None]:
    row = yield from one(f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE id = ?", inbox_id)
    return Inbox.from_row(row) if row else None


@short_read
def get_inbox_by_identifier(identifier: str) -> Op[Inbox | None]:
    row = yield from one(f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE identifier = ?", identifier)
    return Inbox.from_row(row) if row else None


def list_inboxes(account_id: int) -> Op[list[Inbox]]:
    result = yield from rows(
        f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE account_id = ? ORDER BY id", account_id
    )
    return [Inbox.from_row(r) for r in result]


def create_user(
    account_id: int, name: str, email: str, role: str, access_token: str, now: float
) -> Op[User]:
    """Create a user and add them to the account; the caller shows ``access_token`` once."""
    account = yield from get_account(account_id)
    if account is None:
        raise NotFound("account")
    row = yield from one(
        "INSERT INTO users (name, email, access_token_hash, pubsub_token, availability, "
        f"created_at, updated_at) VALUES (?,?,?,?,?,?,?) RETURNING {User.COLUMNS}",
        name, email.strip().lower(), hash_token(access_token), secure_token(), "online", now, now,
    )  # fmt: skip
    assert row is not None
    user = User.from_row(row)
    yield from rows(
        "INSERT INTO account_users (account_id, user_id, role, created_at) VALUES (?,?,?,?)",
        account_id, user.id, role, now,
    )  # fmt: skip
    return user


def find_user_by_email(email: str) -> Op[User | None]:
    row = yield from one(f"SELECT {User.COLUMNS} FROM users WHERE email = ?", email.strip().lower())
    return User.from_row(row) if row else None


@short_read
def find_user_by_token(access_token: str) -> Op[User | None]:
    row = yield from one(
        f"SELECT {User.COLUMNS} FROM users WHERE access_token_hash = ?", hash_token(access_token)
    )
    return User.from_row(row) if row else None


def user_role(account_id: int, user_id: int) -> Op[str | None]:
    row = yield from one(
        "SELECT role FROM account_users WHERE account_id = ? AND user_id = ?", account_id, user_id
    )
    return str(row[0]) if row else None


def rotate_user_token(
    account_id: int, user_id: int, role: str, access_token: str, now: float
) -> Op[None]:
    """Give a user a new access token (the old one cannot be shown again: only its hash is
    stored) and make sure they belong to the account with ``role``."""
    yield from rows(
        "UPDATE users SET access_token_hash = ?, updated_at = ? WHERE id = ?",
        hash_token(access_token), now, user_id,
    )  # fmt: skip
    current = yield from user_role(account_id, user_id)
    if current is None:
        yield from rows(
            "INSERT INTO account_users (account_id, user_id, role, created_at) VALUES (?,?,?,?)",
            account_id, user_id, role, now,
        )  # fmt: skip


def add_inbox_member(inbox_id: int, user_id: int, now: float) -> Op[None]:
    """Make ``user_id`` a member of ``inbox_id`` (idempotent)."""
    yield from rows(
        "INSERT INTO inbox_members (inbox_id, user_id, created_at) VALUES (?,?,?) "
        "ON CONFLICT (inbox_id, user_id) DO NOTHING",
        inbox_id, user_id, now,
    )  # fmt: skip


def find_user_by_pubsub_token(user_id: int, pubsub_token: str) -> Op[User | None]:
    row = yield from one(
        f"SELECT {User.COLUMNS} FROM users WHERE id = ? AND pubsub_token = ?", user_id, pubsub_token
    )
    return User.from_row(row) if row else None


def agent_inbox_ids(account_id: int, user_id: int) -> Op[list[int] | None]:
    """The inboxes whose events ``user_id`` hears in ``account_id``: every inbox for an
    administrator, member inboxes for an agent; None when the user is not in the account."""
    role = yield from user_role(account_id, user_id)
    if role is None:
        return None
    if role == "administrator":
        result = yield from rows(
            "SELECT id FROM inboxes WHERE account_id = ? ORDER BY id", account_id
        )
    else:
        result = yield from rows(
            "SELECT i.id FROM inboxes i JOIN inbox_members m ON m.inbox_id = i.id "
            "WHERE i.account_id = ? AND m.user_id = ? ORDER BY i.id",
            account_id, user_id,
        )  # fmt: skip
    return [int(r[0]) for r in result]


def user_accounts(user_id: int) -> Op[list[tuple[Account, str]]]:
    """Every account of ``user_id`` with their role in it, newest membership first."""
    result = yield from rows(
        "SELECT a.id, a.name, a.created_at, au.role FROM account_users au "
        "JOIN accounts a ON a.id = au.account_id WHERE au.user_id = ? "
        "ORDER BY au.created_at DESC, a.id DESC",
        user_id,
    )
    return [(Account.from_row(r[:3]), str(r[3])) for r in result]
