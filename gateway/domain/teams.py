"""Teams: what conversations can be assigned to besides an agent (reference agent §3.2).

There is no teams API yet (it is outside the subset the gateway implements); operators and tests
create teams with these operations.
"""

from __future__ import annotations

from ..store.records import Team
from ..store.sql import Op, one, rows


def create_team(
    account_id: int,
    name: str,
    now: float,
    *,
    description: str | None = None,
    allow_auto_assign: bool = True,
) -> Op[Team]:
    row = yield from one(
        "INSERT INTO teams (account_id, name, description, allow_auto_assign, created_at, "
        f"updated_at) VALUES (?,?,?,?,?,?) RETURNING {Team.COLUMNS}",
        account_id, name, description, allow_auto_assign, now, now,
    )  # fmt: skip
    assert row is not None
    return Team.from_row(row)


def add_team_member(team_id: int, user_id: int) -> Op[None]:
    yield from rows(
        "INSERT INTO team_members (team_id, user_id) VALUES (?, ?) "
        "ON CONFLICT (team_id, user_id) DO NOTHING",
        team_id, user_id,
    )  # fmt: skip


def get_team(account_id: int, team_id: int) -> Op[Team | None]:
    row = yield from one(
        f"SELECT {Team.COLUMNS} FROM teams WHERE id = ? AND account_id = ?", team_id, account_id
    )
    return Team.from_row(row) if row else None
