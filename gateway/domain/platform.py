"""The Platform API's store (reference agent §1.5, §4): platform apps (tokens stored as
SHA-256), what each app may touch (permissibles), accounts with their platform fields, account
users, and users with their profile fields.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import UNSET, Struct, UnsetType

from ..store.records import Account, Record, User
from ..store.sql import Op, Row, dump_json, load_json, one, rows, scalar, short_read
from .errors import InvalidAttribute, NotFound
from .models import AccountDetails, AccountUserRow, UserDetails
from .provisioning import hash_token, user_accounts
from .tokens import secure_token

Permissible = Literal["Account", "User", "AgentBot"]


class PlatformApp(Record, kw_only=True):
    id: int
    name: str
    created_at: float


class AccountChanges(Struct, kw_only=True):
    """Validated account fields; UNSET leaves a field as is. Maps merge into the stored ones."""

    name: str | UnsetType = UNSET
    locale: str | UnsetType = UNSET
    domain: str | UnsetType | None = UNSET
    support_email: str | UnsetType | None = UNSET
    status: str | UnsetType = UNSET
    features: dict[str, bool] | None = None
    limits: dict[str, Any] | None = None
    custom_attributes: dict[str, Any] | None = None


class UserChanges(Struct, kw_only=True):
    name: str | UnsetType = UNSET
    display_name: str | UnsetType | None = UNSET
    email: str | UnsetType = UNSET
    password_hash: str | None = None
    custom_attributes: dict[str, Any] | None = None


# -- apps and permissibles -----------------------------------------------------------------


def create_app(name: str, access_token: str, now: float) -> Op[PlatformApp]:
    row = yield from one(
        "INSERT INTO platform_apps (name, access_token_hash, created_at, updated_at) "
        f"VALUES (?,?,?,?) RETURNING {PlatformApp.COLUMNS}",
        name, hash_token(access_token), now, now,
    )  # fmt: skip
    assert row is not None
    return PlatformApp.from_row(row)


def find_app_by_token(access_token: str) -> Op[PlatformApp | None]:
    row = yield from one(
        f"SELECT {PlatformApp.COLUMNS} FROM platform_apps WHERE access_token_hash = ?",
        hash_token(access_token),
    )
    return PlatformApp.from_row(row) if row else None


def permit(app_id: int, kind: Permissible, target_id: int, now: float) -> Op[None]:
    yield from rows(
        "INSERT INTO platform_app_permissibles (platform_app_id, permissible_type, "
        "permissible_id, created_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
        app_id, kind, target_id, now,
    )  # fmt: skip


def permitted(app_id: int, kind: Permissible, target_id: int) -> Op[bool]:
    found = yield from scalar(
        "SELECT 1 FROM platform_app_permissibles WHERE platform_app_id = ? "
        "AND permissible_type = ? AND permissible_id = ?",
        app_id, kind, target_id,
    )  # fmt: skip
    return found is not None


# -- accounts ------------------------------------------------------------------------------


def get_account(account_id: int) -> Op[AccountDetails]:
    row = yield from one(f"SELECT {AccountDetails.COLUMNS} FROM accounts WHERE id = ?", account_id)
    if row is None:
        raise NotFound("account")
    return AccountDetails.from_row(row)


def account_status(account_id: int) -> Op[str | None]:
    value = yield from scalar("SELECT status FROM accounts WHERE id = ?", account_id)
    return str(value) if value is not None else None


def create_account(app_id: int, changes: AccountChanges, now: float) -> Op[AccountDetails]:
    account_id = yield from scalar(
        "INSERT INTO accounts (name, last_display_id, created_at, updated_at) VALUES (?, 0, ?, ?) "
        "RETURNING id",
        changes.name or "", now, now,
    )  # fmt: skip
    yield from permit(app_id, "Account", int(account_id), now)
    return (yield from update_account(int(account_id), changes, now))


def update_account(account_id: int, changes: AccountChanges, now: float) -> Op[AccountDetails]:
    current = yield from get_account(account_id)

    def pick(value: Any, default: Any) -> Any:
        return default if value is UNSET else value

    yield from rows(
        "UPDATE accounts SET name = ?, locale = ?, domain = ?, support_email = ?, status = ?, "
        "features = ?, limits = ?, custom_attributes = ?, updated_at = ? WHERE id = ?",
        pick(changes.name, current.name), pick(changes.locale, current.locale),
        pick(changes.domain, current.domain), pick(changes.support_email, current.support_email),
        pick(changes.status, current.status),
        dump_json({**current.features, **(changes.features or {})}),
        dump_json({**current.limits, **(changes.limits or {})}),
        dump_json({**current.custom_attributes, **(changes.custom_attributes or {})}),
        now, account_id,
    )  # fmt: skip
    return (yield from get_account(account_id))


# -- account users -------------------------------------------------------------------------


def _account_user(r: Row) -> AccountUserRow:
    return AccountUserRow(
        id=r[0], account_id=r[1], user_id=r[2], role=r[3], inviter_id=r[4], created_at=r[5],
        updated_at=r[6], availability=r[7], auto_offline=bool(r[8]),
    )  # fmt: skip


def account_users(account_id: int) -> Op[list[AccountUserRow]]:
    yield from get_account(account_id)
    result = yield from rows(
        "SELECT au.id, au.account_id, au.user_id, au.role, au.inviter_id, au.created_at, "
        "au.updated_at, u.availability, u.auto_offline FROM account_users au "
        "JOIN users u ON u.id = au.user_id WHERE au.account_id = ? ORDER BY au.id",
        account_id,
    )
    return [_account_user(r) for r in result]


def upsert_account_user(account_id: int, user_id: int, role: str, now: float) -> Op[AccountUserRow]:
    """Add the user to the account with ``role``, or change their role there."""
    yield from get_account(account_id)
    exists = yield from scalar("SELECT 1 FROM users WHERE id = ?", user_id)
    if exists is None:
        raise NotFound("user")
    yield from rows(
        "INSERT INTO account_users (account_id, user_id, role, created_at) VALUES (?,?,?,?) "
        "ON CONFLICT (account_id, user_id) DO UPDATE SET role = excluded.role, updated_at = ?",
        account_id, user_id, role, now, now,
    )  # fmt: skip
    found = yield from account_users(account_id)
    return next(r for r in found if r.user_id == user_id)


def remove_account_user(account_id: int, user_id: int) -> Op[None]:
    """Take the user out of the account and its inboxes (a no-op if they were not in it)."""
    yield from get_account(account_id)
    yield from rows(
        "DELETE FROM inbox_members WHERE user_id = ? AND inbox_id IN "
        "(SELECT id FROM inboxes WHERE account_id = ?)",
        user_id, account_id,
    )  # fmt: skip
    yield from rows(
        "DELETE FROM account_users WHERE account_id = ? AND user_id = ?", account_id, user_id
    )


# -- users ---------------------------------------------------------------------------------


def get_user(user_id: int) -> Op[UserDetails]:
    row = yield from one(
        f"SELECT {User.COLUMNS}, display_name, custom_attributes FROM users WHERE id = ?", user_id
    )
    if row is None:
        raise NotFound("user")
    width = len(User.COLUMNS.split(","))
    accounts = yield from user_accounts(user_id)
    return UserDetails(
        user=User.from_row(row[:width]), display_name=row[width],
        custom_attributes=load_json(row[width + 1], {}), accounts=accounts,
    )  # fmt: skip


def _email_taken(email: str, not_id: int) -> Op[bool]:
    found = yield from scalar("SELECT id FROM users WHERE email = ? AND id <> ?", email, not_id)
    return found is not None


def create_user(
    app_id: int, changes: UserChanges, access_token: str, now: float
) -> Op[tuple[UserDetails, bool]]:
    """A new user (``access_token`` becomes theirs), or the existing user with that e-mail if
    this app may already touch them; ``(user, created)``. Someone else's user is a 422: an app
    must not take over users by knowing their e-mail."""
    assert isinstance(changes.email, str) and isinstance(changes.name, str)
    existing = yield from scalar("SELECT id FROM users WHERE email = ?", changes.email)
    if existing is not None:
        allowed = yield from permitted(app_id, "User", int(existing))
        if not allowed:
            raise InvalidAttribute("Email has already been taken", ["email"])
        return (yield from get_user(int(existing))), False
    display = None if changes.display_name is UNSET else changes.display_name
    user_id = yield from scalar(
        "INSERT INTO users (name, email, access_token_hash, pubsub_token, availability, "
        "display_name, custom_attributes, password_hash, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
        changes.name, changes.email, hash_token(access_token), secure_token(), "online", display,
        dump_json(changes.custom_attributes or {}), changes.password_hash, now, now,
    )  # fmt: skip
    yield from permit(app_id, "User", int(user_id), now)
    return (yield from get_user(int(user_id))), True


def update_user(user_id: int, changes: UserChanges, now: float) -> Op[UserDetails]:
    """Given fields overwrite (an e-mail change needs no confirmation, as Chatwoot's platform
    API); custom attributes merge."""
    current = yield from get_user(user_id)
    if isinstance(changes.email, str):
        taken = yield from _email_taken(changes.email, user_id)
        if taken:
            raise InvalidAttribute("Email has already been taken", ["email"])
    user = current.user
    yield from rows(
        "UPDATE users SET name = ?, email = ?, display_name = ?, custom_attributes = ?, "
        "password_hash = COALESCE(?, password_hash), updated_at = ? WHERE id = ?",
        user.name if changes.name is UNSET else changes.name,
        user.email if changes.email is UNSET else changes.email,
        current.display_name if changes.display_name is UNSET else changes.display_name,
        dump_json({**current.custom_attributes, **(changes.custom_attributes or {})}),
        changes.password_hash, now, user_id,
    )  # fmt: skip
    return (yield from get_user(user_id))


def rotate_token(user_id: int, access_token: str, now: float) -> Op[UserDetails]:
    """Give the user ``access_token``; the previous one stops working."""
    yield from get_user(user_id)
    yield from rows(
        "UPDATE users SET access_token_hash = ?, updated_at = ? WHERE id = ?",
        hash_token(access_token), now, user_id,
    )  # fmt: skip
    return (yield from get_user(user_id))


@short_read
def account_with_status(account_id: int) -> Op[tuple[Account, str] | None]:
    """The account and its status (``active`` or ``suspended``), for the agent API's auth."""
    row = yield from one(f"SELECT {Account.COLUMNS}, status FROM accounts WHERE id = ?", account_id)
    if row is None:
        return None
    return Account.from_row(row[:-1]), str(row[-1])
