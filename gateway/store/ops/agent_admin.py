"""Inboxes, inbox members and agents of an account on the agent API (reference agent §3.6,
§3.9). The inbox settings that only the agent API shows live in columns of their own
(:class:`InboxSettings`), read beside the :class:`Inbox` record the public API uses.
"""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from ...errors import ApiError, NotFound, ValidationFailed
from ..records import Inbox, Record, User
from ..sql import Op, Row, dump_json, load_json, one, rows, scalar, short_read
from .provisioning import NewInbox, create_inbox, hash_token
from .tokens import secure_token

# Columns an inbox update may set (the service maps request fields onto them).
INBOX_COLUMNS = frozenset(
    "name greeting_enabled greeting_message enable_email_collect csat_survey_enabled "
    "csat_config csat_display_type csat_message enable_auto_assignment working_hours_enabled "
    "working_hours out_of_office_message timezone allow_messages_after_resolved "
    "lock_to_single_conversation sender_name_type business_name webhook_url hmac_mandatory "
    "channel_attributes reply_time_window_hours".split()
)
AGENT_LIMIT = "Account limit exceeded. Please purchase more licenses"
INBOX_LIMIT = "Account limit exceeded. Upgrade to a higher plan"


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


_INBOX_SELECT = f"SELECT {Inbox.COLUMNS}, {InboxSettings.COLUMNS} FROM inboxes"
_INBOX_WIDTH = len(Inbox.COLUMNS.split(","))
_USER_COLUMNS = ", ".join("u." + c.strip() for c in User.COLUMNS.split(","))
_MEMBER_SELECT = (
    f"SELECT {_USER_COLUMNS}, au.role, u.auto_offline FROM users u "
    "JOIN account_users au ON au.user_id = u.id"
)
_USER_WIDTH = len(User.COLUMNS.split(","))


def _admin_inbox(r: Row) -> AdminInbox:
    return AdminInbox(
        inbox=Inbox.from_row(r[:_INBOX_WIDTH]), settings=InboxSettings.from_row(r[_INBOX_WIDTH:])
    )


def _member(r: Row) -> AgentMember:
    return AgentMember(
        user=User.from_row(r[:_USER_WIDTH]), role=str(r[_USER_WIDTH]),
        auto_offline=bool(r[_USER_WIDTH + 1]),
    )  # fmt: skip


def _limit(account_id: int, key: str) -> Op[int | None]:
    raw = yield from scalar("SELECT limits FROM accounts WHERE id = ?", account_id)
    value = load_json(raw, {}).get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# -- inboxes -------------------------------------------------------------------------------


@short_read
def get_inbox(account_id: int, inbox_id: int) -> Op[AdminInbox]:
    row = yield from one(f"{_INBOX_SELECT} WHERE id = ? AND account_id = ?", inbox_id, account_id)
    if row is None:
        raise NotFound("inbox")
    return _admin_inbox(row)


def list_inboxes(account_id: int, inbox_ids: tuple[int, ...]) -> Op[list[AdminInbox]]:
    """The account's inboxes among ``inbox_ids`` (what the caller sees), by name."""
    if not inbox_ids:
        return []
    marks = ",".join("?" * len(inbox_ids))
    result = yield from rows(
        f"{_INBOX_SELECT} WHERE account_id = ? AND id IN ({marks}) ORDER BY LOWER(name), id",
        account_id, *inbox_ids,
    )  # fmt: skip
    return [_admin_inbox(r) for r in result]


def create_admin_inbox(new: NewInbox, columns: dict[str, Any], now: float) -> Op[AdminInbox]:
    """An API inbox with a fresh identifier and hmac_token, then the agent-API settings."""
    limit = yield from _limit(new.account_id, "inboxes")
    if limit is not None:
        count = yield from scalar(
            "SELECT COUNT(*) FROM inboxes WHERE account_id = ?", new.account_id
        )
        if int(count) >= limit:
            raise ApiError.error(402, INBOX_LIMIT)
    inbox = yield from create_inbox(new, now)
    if columns:
        return (yield from update_inbox(new.account_id, inbox.id, columns, now))
    return (yield from get_inbox(new.account_id, inbox.id))


def update_inbox(
    account_id: int, inbox_id: int, columns: dict[str, Any], now: float
) -> Op[AdminInbox]:
    unknown = set(columns) - INBOX_COLUMNS
    if unknown:
        raise ValueError(f"not inbox columns: {sorted(unknown)}")
    yield from get_inbox(account_id, inbox_id)
    names = sorted(columns)
    assignments = "".join(f"{name} = ?, " for name in names)
    yield from rows(
        f"UPDATE inboxes SET {assignments}updated_at = ? WHERE id = ?",
        *(columns[name] for name in names), now, inbox_id,
    )  # fmt: skip
    return (yield from get_inbox(account_id, inbox_id))


# -- members and agents --------------------------------------------------------------------


def list_agents(account_id: int) -> Op[list[AgentMember]]:
    result = yield from rows(
        f"{_MEMBER_SELECT} WHERE au.account_id = ? ORDER BY LOWER(u.name), u.id", account_id
    )
    return [_member(r) for r in result]


def get_agent(account_id: int, user_id: int) -> Op[AgentMember]:
    row = yield from one(
        f"{_MEMBER_SELECT} WHERE au.account_id = ? AND u.id = ?", account_id, user_id
    )
    if row is None:
        raise NotFound("agent")
    return _member(row)


def inbox_members(account_id: int, inbox_id: int) -> Op[list[AgentMember]]:
    yield from get_inbox(account_id, inbox_id)
    result = yield from rows(
        f"{_MEMBER_SELECT} JOIN inbox_members m ON m.user_id = u.id "
        "WHERE au.account_id = ? AND m.inbox_id = ? ORDER BY LOWER(u.name), u.id",
        account_id, inbox_id,
    )  # fmt: skip
    return [_member(r) for r in result]


def change_inbox_members(
    account_id: int,
    inbox_id: int,
    user_ids: list[int],
    mode: Literal["add", "replace", "remove"],
    now: float,
) -> Op[list[AgentMember]]:
    """Add, replace with, or remove ``user_ids``; every id must be an agent of the account."""
    yield from get_inbox(account_id, inbox_id)
    wanted = sorted(set(user_ids))
    for user_id in wanted:
        yield from get_agent(account_id, user_id)
    if mode == "replace":
        yield from rows("DELETE FROM inbox_members WHERE inbox_id = ?", inbox_id)
    if mode == "remove":
        for user_id in wanted:
            yield from rows(
                "DELETE FROM inbox_members WHERE inbox_id = ? AND user_id = ?", inbox_id, user_id
            )
    else:
        for user_id in wanted:
            yield from rows(
                "INSERT INTO inbox_members (inbox_id, user_id, created_at) VALUES (?,?,?) "
                "ON CONFLICT (inbox_id, user_id) DO NOTHING",
                inbox_id, user_id, now,
            )  # fmt: skip
    return (yield from inbox_members(account_id, inbox_id))


def create_agent(
    account_id: int,
    name: str,
    email: str,
    role: str,
    availability: str,
    auto_offline: bool,
    access_token: str,
    now: float,
) -> Op[tuple[AgentMember, bool]]:
    """Add the user with ``email`` to the account, creating them if needed (then
    ``access_token`` is theirs); ``(agent, created)``. 402 past the account's agent limit."""
    limit = yield from _limit(account_id, "agents")
    if limit is not None:
        count = yield from scalar(
            "SELECT COUNT(*) FROM account_users WHERE account_id = ?", account_id
        )
        if int(count) >= limit:
            raise ApiError.error(402, AGENT_LIMIT)
    email = email.strip().lower()
    user_id = yield from scalar("SELECT id FROM users WHERE email = ?", email)
    created = user_id is None
    if created:
        user_id = yield from scalar(
            "INSERT INTO users (name, email, access_token_hash, pubsub_token, availability, "
            "auto_offline, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            name, email, hash_token(access_token), secure_token(), availability, auto_offline,
            now, now,
        )  # fmt: skip
    else:
        member = yield from scalar(
            "SELECT 1 FROM account_users WHERE account_id = ? AND user_id = ?", account_id, user_id
        )
        if member is not None:
            raise ValidationFailed("User has already been taken", ["user_id"])
    yield from rows(
        "INSERT INTO account_users (account_id, user_id, role, created_at) VALUES (?,?,?,?)",
        account_id, user_id, role, now,
    )  # fmt: skip
    return (yield from get_agent(account_id, int(user_id))), created


def update_agent(
    account_id: int,
    user_id: int,
    name: str | None,
    role: str | None,
    availability: str | None,
    auto_offline: bool | None,
    now: float,
) -> Op[AgentMember]:
    """Availability and auto_offline are the user's own (inboxgate keeps them per user, not per
    account); the role is per account."""
    agent = yield from get_agent(account_id, user_id)
    yield from rows(
        "UPDATE users SET name = ?, availability = ?, auto_offline = ?, updated_at = ? "
        "WHERE id = ?",
        name or agent.user.name, availability or agent.user.availability,
        agent.auto_offline if auto_offline is None else auto_offline, now, user_id,
    )  # fmt: skip
    if role is not None:
        yield from rows(
            "UPDATE account_users SET role = ?, updated_at = ? WHERE account_id = ? "
            "AND user_id = ?",
            role, now, account_id, user_id,
        )  # fmt: skip
    return (yield from get_agent(account_id, user_id))


def remove_agent(account_id: int, user_id: int, now: float) -> Op[None]:
    """Take the user out of the account: its inboxes, teams and assignments there. A user left
    with no account keeps their row (their messages keep a sender) but not a working token."""
    yield from get_agent(account_id, user_id)
    yield from rows(
        "DELETE FROM inbox_members WHERE user_id = ? AND inbox_id IN "
        "(SELECT id FROM inboxes WHERE account_id = ?)",
        user_id, account_id,
    )  # fmt: skip
    yield from rows(
        "DELETE FROM team_members WHERE user_id = ? AND team_id IN "
        "(SELECT id FROM teams WHERE account_id = ?)",
        user_id, account_id,
    )  # fmt: skip
    yield from rows(
        "UPDATE conversations SET assignee_id = NULL WHERE account_id = ? AND assignee_id = ?",
        account_id, user_id,
    )  # fmt: skip
    yield from rows(
        "DELETE FROM account_users WHERE account_id = ? AND user_id = ?", account_id, user_id
    )
    others = yield from scalar("SELECT COUNT(*) FROM account_users WHERE user_id = ?", user_id)
    if not others:
        yield from rows(
            "UPDATE users SET access_token_hash = ?, updated_at = ? WHERE id = ?",
            hash_token(secure_token(48)), now, user_id,
        )  # fmt: skip


def json_column(value: Any) -> str:
    """JSON columns are text (``gateway.store.sql``)."""
    return dump_json(value)
