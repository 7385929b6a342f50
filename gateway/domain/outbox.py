"""The webhook outbox, from the worker's side: claim due deliveries, record each outcome.

A delivery is ``pending`` until it is ``delivered`` or ``dead`` (its last attempt failed, or
its webhook was deleted). Claiming leases a delivery: its ``next_attempt_at`` moves a lease
ahead and ``attempts`` grows by one, so a sender that dies mid-request leaves a delivery that
is simply due again once the lease runs out (at least once: a receiver deduplicates on
``X-Chatwoot-Delivery``). ``attempts`` doubles as a fencing token: an outcome is recorded only
if no one claimed the delivery again meanwhile.
"""

from __future__ import annotations

from ..store.records import Conversation, LoggedEvent, Message, Record
from ..store.sql import Op, dialect, dump_json, one, rows, scalar, short_read
from ..views import public as presenters
from . import agent_events, notify
from .errors import InvalidAttribute, NotFound
from .message_reads import hydrate
from .messages import get_conversation
from .webhooks import RECEIVER_BOT, RECEIVER_INBOX

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
MAX_ERROR_LENGTH = 1000
BOT_FAILED = "Conversation was marked open by system due to an error with the agent bot."


class Delivery(Record, kw_only=True):
    id: int
    uuid: str
    account_id: int
    receiver: str
    webhook_id: int | None
    inbox_id: int | None
    message_id: int | None
    url: str
    secret: str
    event: str
    body: bytes
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_status_code: int | None
    created_at: float
    delivered_at: float | None


@short_read
def next_due() -> Op[float | None]:
    """When the earliest pending delivery is due (or its lease ends); None if none is."""
    due = yield from scalar(
        "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'"
    )
    return float(due) if due is not None else None


_PENDING_COUNT = "SELECT COUNT(*) FROM webhook_deliveries{using} WHERE status = 'pending'"
# SQLite, without statistics, counted by walking the (webhook_id, status) index over every
# delivery kept (delivered ones stay for the retention's days): 19.4 ms for 500,000, every ten
# seconds, where the index of the pending ones answers in 0.1 ms. PostgreSQL plans it from its
# statistics.
PENDING_COUNT_SQLITE = _PENDING_COUNT.format(using=" INDEXED BY webhook_deliveries_due")


def pending_count() -> Op[int]:
    """Deliveries not yet delivered nor dead (a metric: the outbox's depth), counted in the
    index of the pending ones."""
    if (yield from dialect()) == "sqlite":
        count = yield from scalar(PENDING_COUNT_SQLITE)
    else:
        count = yield from scalar(_PENDING_COUNT.format(using=""))
    return int(count or 0)


def claim(now: float, limit: int, lease: float) -> Op[list[Delivery]]:
    """Lease up to ``limit`` due deliveries, oldest due first, counting the attempt.

    The outer WHERE repeats "pending and due" on purpose: PostgreSQL re-checks it against the
    row as committed by a concurrent claimer (another node) once that one's lock is released,
    so the loser skips the row instead of leasing it a second time. SQLite has one writer."""
    result = yield from rows(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, "
        "updated_at = ? WHERE id IN (SELECT id FROM webhook_deliveries "
        "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?) "
        f"AND status = 'pending' AND next_attempt_at <= ? RETURNING {Delivery.COLUMNS}",
        now + lease, now, now, limit, now,
    )  # fmt: skip
    return sorted((Delivery.from_row(r) for r in result), key=lambda d: d.id)


def _clip(error: str | None) -> str | None:
    return error[:MAX_ERROR_LENGTH] if error else error


def delivered(delivery: Delivery, status_code: int, now: float) -> Op[bool]:
    done = yield from rows(
        "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = ?, updated_at = ?, "
        "last_status_code = ?, last_error = NULL "
        "WHERE id = ? AND attempts = ? AND status = 'pending' RETURNING id",
        now, now, status_code, delivery.id, delivery.attempts,
    )  # fmt: skip
    return bool(done)


def retry(
    delivery: Delivery, error: str, status_code: int | None, at: float, now: float
) -> Op[bool]:
    """Record a failed attempt; the delivery is due again at ``at``."""
    done = yield from rows(
        "UPDATE webhook_deliveries SET next_attempt_at = ?, last_error = ?, "
        "last_status_code = ?, updated_at = ? "
        "WHERE id = ? AND attempts = ? AND status = 'pending' RETURNING id",
        at, _clip(error), status_code, now, delivery.id, delivery.attempts,
    )  # fmt: skip
    return bool(done)


def give_up(
    delivery: Delivery,
    error: str,
    status_code: int | None,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[list[LoggedEvent]]:
    """Dead-letter the delivery. When it carried a message to its API inbox's webhook_url,
    the message is marked failed with the error in ``content_attributes.external_error``
    (§9.4), which agents and the contact hear as ``message.updated``; to an agent bot, its
    pending conversation goes to the agents (reference agent §6.8)."""
    done = yield from rows(
        "UPDATE webhook_deliveries SET status = 'dead', last_error = ?, last_status_code = ?, "
        "updated_at = ? WHERE id = ? AND attempts = ? AND status = 'pending' RETURNING id",
        _clip(error), status_code, now, delivery.id, delivery.attempts,
    )  # fmt: skip
    if not done or delivery.message_id is None:
        return []
    if delivery.event not in ("message_created", "message_updated"):
        return []
    if delivery.receiver == RECEIVER_BOT:
        return (yield from _bot_failed(delivery.message_id, link, now))
    if delivery.receiver != RECEIVER_INBOX:
        return []
    return (yield from _mark_message_failed(delivery.message_id, error, link, now))


def _bot_failed(message_id: int, link: presenters.LinkBuilder, now: float) -> Op[list[LoggedEvent]]:
    """The agent bot never got a message: a conversation still waiting for the bot goes to the
    agents (Chatwoot's fallback, reference agent §6.8)."""
    conversation_id = yield from scalar(
        "SELECT conversation_id FROM messages WHERE id = ?", message_id
    )
    if conversation_id is None:
        return []
    conversation = yield from get_conversation(conversation_id)
    if conversation.status != "pending":
        return []
    row = yield from one(
        "UPDATE conversations SET status = 'open', updated_at = ? WHERE id = ? "
        f"RETURNING {Conversation.COLUMNS}",
        now, conversation.id,
    )  # fmt: skip
    assert row is not None
    conversation = Conversation.from_row(row)
    logged = yield from agent_events.conversation_event(
        "conversation.status_changed", conversation, link, now
    )
    logged += yield from agent_events.activity(conversation, BOT_FAILED, link, now)
    return logged


def _mark_message_failed(
    message_id: int, error: str, link: presenters.LinkBuilder, now: float
) -> Op[list[LoggedEvent]]:
    row = yield from one(f"SELECT {Message.COLUMNS} FROM messages WHERE id = ?", message_id)
    if row is None:
        return []
    message = Message.from_row(row)
    before = dict(message.content_attributes)
    after = {**before, "external_error": _clip(error)}
    row = yield from one(
        "UPDATE messages SET status = 'failed', content_attributes = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {Message.COLUMNS}",
        dump_json(after), now, message.id,
    )  # fmt: skip
    assert row is not None
    [updated] = yield from hydrate([Message.from_row(row)])
    conversation = yield from get_conversation(updated.conversation_id)
    changes: dict[str, list[object]] = {
        "status": [message.status, "failed"],
        "content_attributes": [before, after],
        "updated_at": [presenters.iso(message.updated_at), presenters.iso(now)],
    }
    # Not to the inbox's own webhook_url again: its failure is what this update reports.
    return (
        yield from notify.emit_message(
            "message.updated", updated, conversation, link, now, previous_changes=changes,
            inbox_callback=False,
        )
    )  # fmt: skip


def get_delivery(delivery_id: str) -> Op[Delivery | None]:
    row = yield from one(
        f"SELECT {Delivery.COLUMNS} FROM webhook_deliveries WHERE uuid = ?", delivery_id
    )
    return Delivery.from_row(row) if row else None


def list_deliveries(
    account_id: int | None = None,
    *,
    status: str | None = None,
    webhook_id: int | None = None,
    newest_first: bool = False,
    limit: int = 1000,
) -> Op[list[Delivery]]:
    where, params = ["1 = 1"], []
    for column, value in (("account_id", account_id), ("status", status),
                          ("webhook_id", webhook_id)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    order = "DESC" if newest_first else "ASC"
    result = yield from rows(
        f"SELECT {Delivery.COLUMNS} FROM webhook_deliveries WHERE {' AND '.join(where)} "
        f"ORDER BY id {order} LIMIT ?",
        *params, limit,
    )  # fmt: skip
    return [Delivery.from_row(r) for r in result]


def redeliver(account_id: int, delivery_id: str, now: float) -> Op[Delivery]:
    """Queue a dead delivery again, due now, with a fresh count of attempts (same id)."""
    row = yield from one(
        "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
        "updated_at = ? WHERE uuid = ? AND account_id = ? AND status = 'dead' "
        f"RETURNING {Delivery.COLUMNS}",
        now, now, delivery_id, account_id,
    )  # fmt: skip
    if row is None:
        found = yield from get_delivery(delivery_id)
        if found is None or found.account_id != account_id:
            raise NotFound("delivery")
        raise InvalidAttribute("Only a dead delivery can be retried", ["status"])
    return Delivery.from_row(row)


def prune(before: float) -> Op[int]:
    """Forget delivered and dead deliveries last touched before ``before``."""
    deleted = yield from rows(
        "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_at < ? RETURNING id",
        before,
    )
    return len(deleted)
