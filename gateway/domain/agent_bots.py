"""Agent bots (reference agent §2.4, §3.6, §3.8, §4, §6): the bots of an account and the
system bots (``account_id`` NULL, made through the Platform API), their tokens (SHA-256, as
users'), and which bot an inbox has.

An inbox with an active bot changes what conversations do: a new one starts ``pending``, and
a resolved one that hears from its contact goes back to ``pending`` (the bot's again) rather
than ``open``. Deliveries to the bot's ``outgoing_url`` go through the webhook outbox
(:func:`gateway.domain.webhooks.receivers`).
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct

from ..store.records import AgentBot
from ..store.sql import Op, dump_json, one, rows, scalar, short_read
from .errors import NotFound
from .platform import permit
from .provisioning import hash_token
from .tokens import secure_token
from .webhooks import RECEIVER_BOT

ACTIVE = "active"
BOT_COLUMNS = ", ".join(f"b.{c.strip()}" for c in AgentBot.COLUMNS.split(","))


class BotChanges(Struct, kw_only=True):
    """Validated attributes of a create or update; UNSET leaves a value as it is."""

    name: Any = UNSET
    description: Any = UNSET
    outgoing_url: Any = UNSET
    avatar_url: Any = UNSET
    bot_type: Any = UNSET
    bot_config: Any = UNSET


@short_read
def find_bot_by_token(access_token: str) -> Op[AgentBot | None]:
    row = yield from one(
        f"SELECT {AgentBot.COLUMNS} FROM agent_bots WHERE access_token_hash = ?",
        hash_token(access_token),
    )
    return AgentBot.from_row(row) if row else None


def get_bot(bot_id: int) -> Op[AgentBot]:
    row = yield from one(f"SELECT {AgentBot.COLUMNS} FROM agent_bots WHERE id = ?", bot_id)
    if row is None:
        raise NotFound("agent bot")
    return AgentBot.from_row(row)


def visible_bot(account_id: int, bot_id: int) -> Op[AgentBot]:
    """A bot of the account, or a system bot (what an account may show and attach)."""
    bot = yield from get_bot(bot_id)
    if bot.account_id is not None and bot.account_id != account_id:
        raise NotFound("agent bot")
    return bot


def list_bots(account_id: int) -> Op[list[AgentBot]]:
    """The account's bots and the system bots."""
    result = yield from rows(
        f"SELECT {AgentBot.COLUMNS} FROM agent_bots WHERE account_id = ? OR account_id IS NULL "
        "ORDER BY id",
        account_id,
    )
    return [AgentBot.from_row(r) for r in result]


def create_bot(
    account_id: int | None, changes: BotChanges, access_token: str, now: float
) -> Op[AgentBot]:
    def given(value: Any, default: Any = None) -> Any:
        return default if value is UNSET else value

    row = yield from one(
        "INSERT INTO agent_bots (account_id, name, description, outgoing_url, bot_type, "
        "bot_config, access_token_hash, secret, avatar_url, created_at, updated_at) "
        f"VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING {AgentBot.COLUMNS}",
        account_id, changes.name, given(changes.description), given(changes.outgoing_url),
        given(changes.bot_type, "webhook"), dump_json(given(changes.bot_config, {})),
        hash_token(access_token), secure_token(), given(changes.avatar_url), now, now,
    )  # fmt: skip
    assert row is not None
    return AgentBot.from_row(row)


def create_app_bot(
    app_id: int, account_id: int | None, changes: BotChanges, access_token: str, now: float
) -> Op[AgentBot]:
    """A bot made through the Platform API, recorded as the app's (its permissible)."""
    bot = yield from create_bot(account_id, changes, access_token, now)
    yield from permit(app_id, "AgentBot", bot.id, now)
    return bot


def list_app_bots(app_id: int) -> Op[list[AgentBot]]:
    result = yield from rows(
        f"SELECT {BOT_COLUMNS} FROM agent_bots b JOIN platform_app_permissibles x "
        "ON x.permissible_id = b.id AND x.permissible_type = 'AgentBot' "
        "WHERE x.platform_app_id = ? ORDER BY b.id",
        app_id,
    )
    return [AgentBot.from_row(r) for r in result]


def update_bot(bot_id: int, changes: BotChanges, now: float) -> Op[AgentBot]:
    current = yield from get_bot(bot_id)

    def pick(value: Any, default: Any) -> Any:
        return default if value is UNSET else value

    url = pick(changes.outgoing_url, current.outgoing_url)
    row = yield from one(
        "UPDATE agent_bots SET name = ?, description = ?, outgoing_url = ?, bot_type = ?, "
        f"bot_config = ?, avatar_url = ?, updated_at = ? WHERE id = ? RETURNING {AgentBot.COLUMNS}",
        pick(changes.name, current.name), pick(changes.description, current.description), url,
        pick(changes.bot_type, current.bot_type),
        dump_json(pick(changes.bot_config, current.bot_config)),
        pick(changes.avatar_url, current.avatar_url), now, bot_id,
    )  # fmt: skip
    assert row is not None
    if url != current.outgoing_url and url:
        # Deliveries still waiting follow the bot to its new address (the secret is the bot's).
        yield from rows(
            "UPDATE webhook_deliveries SET url = ?, updated_at = ? "
            "WHERE receiver = ? AND secret = ? AND status = 'pending'",
            url, now, RECEIVER_BOT, current.secret,
        )  # fmt: skip
    return AgentBot.from_row(row)


def rotate_token(bot_id: int, access_token: str, now: float) -> Op[AgentBot]:
    row = yield from one(
        "UPDATE agent_bots SET access_token_hash = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {AgentBot.COLUMNS}",
        hash_token(access_token), now, bot_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("agent bot")
    return AgentBot.from_row(row)


def delete_bot(bot_id: int, now: float) -> Op[None]:
    """Detach the bot from every inbox and dead-letter what it had not received yet; its
    messages stay (shown without a sender, as Chatwoot shows a deleted bot's)."""
    bot = yield from get_bot(bot_id)
    yield from rows(
        "UPDATE webhook_deliveries SET status = 'dead', last_error = ?, updated_at = ? "
        "WHERE receiver = ? AND secret = ? AND status = 'pending'",
        "agent bot deleted", now, RECEIVER_BOT, bot.secret,
    )  # fmt: skip
    yield from rows("DELETE FROM agent_bot_inboxes WHERE agent_bot_id = ?", bot.id)
    yield from rows(
        "DELETE FROM platform_app_permissibles WHERE permissible_type = 'AgentBot' "
        "AND permissible_id = ?",
        bot.id,
    )
    yield from rows("DELETE FROM agent_bots WHERE id = ?", bot.id)


# -- bots and accounts, bots and inboxes -----------------------------------------------------


@short_read
def bot_in_account(bot: AgentBot, account_id: int) -> Op[bool]:
    """A bot acts in its own account, or in one where an inbox has it (system bots)."""
    if bot.account_id == account_id:
        return True
    found = yield from scalar(
        "SELECT 1 FROM agent_bot_inboxes WHERE agent_bot_id = ? AND account_id = ?",
        bot.id, account_id,
    )  # fmt: skip
    return found is not None


def account_inbox_ids(account_id: int) -> Op[list[int]]:
    result = yield from rows("SELECT id FROM inboxes WHERE account_id = ? ORDER BY id", account_id)
    return [int(r[0]) for r in result]


def _inbox_in_account(account_id: int, inbox_id: int) -> Op[None]:
    found = yield from scalar(
        "SELECT id FROM inboxes WHERE id = ? AND account_id = ?", inbox_id, account_id
    )
    if found is None:
        raise NotFound("inbox")


def inbox_bot(inbox_id: int) -> Op[AgentBot | None]:
    """The active bot of an inbox, if it has one."""
    row = yield from one(
        f"SELECT {BOT_COLUMNS} FROM agent_bot_inboxes x JOIN agent_bots b "
        "ON b.id = x.agent_bot_id WHERE x.inbox_id = ? AND x.status = ?",
        inbox_id, ACTIVE,
    )  # fmt: skip
    return AgentBot.from_row(row) if row else None


def account_inbox_bot(account_id: int, inbox_id: int) -> Op[AgentBot | None]:
    yield from _inbox_in_account(account_id, inbox_id)
    return (yield from inbox_bot(inbox_id))


def set_inbox_bot(account_id: int, inbox_id: int, bot_id: int | None, now: float) -> Op[None]:
    """Attach a bot of the account (or a system bot) to the inbox, replacing any other; None
    detaches."""
    yield from _inbox_in_account(account_id, inbox_id)
    if bot_id is None:
        yield from rows("DELETE FROM agent_bot_inboxes WHERE inbox_id = ?", inbox_id)
        return
    bot = yield from visible_bot(account_id, bot_id)
    yield from rows(
        "INSERT INTO agent_bot_inboxes (inbox_id, agent_bot_id, account_id, status, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?) ON CONFLICT (inbox_id) DO UPDATE SET "
        "agent_bot_id = excluded.agent_bot_id, status = excluded.status, "
        "updated_at = excluded.updated_at",
        inbox_id, bot.id, account_id, ACTIVE, now, now,
    )  # fmt: skip


def has_active_bot(inbox_id: int) -> Op[bool]:
    found = yield from scalar(
        "SELECT 1 FROM agent_bot_inboxes WHERE inbox_id = ? AND status = ?", inbox_id, ACTIVE
    )
    return found is not None


def initial_status(inbox_id: int, blocked: bool, requested: str = "open") -> Op[str]:
    """A new conversation's status (Chatwoot's ``determine_conversation_status``): resolved
    for a blocked contact, pending while the inbox has a bot (whatever was asked for)."""
    if blocked:
        return "resolved"
    bot = yield from has_active_bot(inbox_id)
    return "pending" if bot else requested


def reopened_status(inbox_id: int, status: str) -> Op[str]:
    """What a resolved or snoozed conversation becomes when its contact writes: a resolved
    one goes back to its inbox's bot (pending), anything else opens."""
    if status != "resolved":
        return "open"
    bot = yield from has_active_bot(inbox_id)
    return reopened_with(status, bot)


def reopened_with(status: str, active_bot: bool) -> str:
    """:func:`reopened_status` when the caller knows whether the inbox has an active bot."""
    return "pending" if status == "resolved" and active_bot else "open"
