"""Who a /cable subscription speaks for: the lookups behind RoomChannel's authorization."""

from __future__ import annotations

from typing import NamedTuple

from ..store.sql import Op, one, short_read
from .provisioning import agent_inbox_ids


class ContactGrant(NamedTuple):
    contact_inbox_id: int
    contact_id: int
    inbox_id: int
    account_id: int


class AgentGrant(NamedTuple):
    user_id: int
    account_id: int
    availability: str
    inbox_ids: tuple[int, ...]


@short_read
def contact_by_pubsub_token(token: str) -> Op[ContactGrant | None]:
    row = yield from one(
        "SELECT ci.id, ci.contact_id, ci.inbox_id, i.account_id FROM contact_inboxes ci "
        "JOIN inboxes i ON i.id = ci.inbox_id WHERE ci.pubsub_token = ?",
        token,
    )
    return ContactGrant(int(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else None


def agent_by_pubsub_token(token: str, user_id: int, account_id: int) -> Op[AgentGrant | None]:
    """The agent ``user_id`` if ``token`` is theirs and they belong to ``account_id``."""
    row = yield from one(
        "SELECT availability FROM users WHERE id = ? AND pubsub_token = ?", user_id, token
    )
    if row is None:
        return None
    inboxes = yield from agent_inbox_ids(account_id, user_id)
    if inboxes is None:
        return None
    return AgentGrant(user_id, account_id, str(row[0]), tuple(inboxes))
