"""Who a conversation is assigned to: the account member (with their role) and the team.

Kept free of ``notify`` so that ``notify`` may call :func:`hydrate_conversation` too.
"""

from __future__ import annotations

from ..store.records import Conversation, Team, User
from ..store.sql import Op, one

_USER_COLUMNS = ", ".join("u." + name for name in User.COLUMNS.split(", "))


def account_user(account_id: int, user_id: int) -> Op[tuple[User, str] | None]:
    """A member of the account and their role."""
    row = yield from one(
        f"SELECT {_USER_COLUMNS}, au.role FROM users u "
        "JOIN account_users au ON au.user_id = u.id WHERE au.account_id = ? AND u.id = ?",
        account_id, user_id,
    )  # fmt: skip
    if row is None:
        return None
    return User.from_row(row[:-1]), str(row[-1])


def hydrate_conversation(conversation: Conversation) -> Op[Conversation]:
    """Load the assignee and team that conversation push payloads show in ``meta``."""
    conversation.assignee = None
    conversation.team = None
    if conversation.assignee_id is not None:
        found = yield from account_user(conversation.account_id, conversation.assignee_id)
        conversation.assignee = found[0] if found else None
    if conversation.team_id is not None:
        row = yield from one(f"SELECT {Team.COLUMNS} FROM teams WHERE id = ?", conversation.team_id)
        conversation.team = Team.from_row(row) if row else None
    return conversation
