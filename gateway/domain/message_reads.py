"""Reading messages as the domain sees them: with their attachments, and (for a customer)
without private notes or activity messages."""

from __future__ import annotations

from client_sdk import protocol as p

from ..store.records import Attachment, Message
from ..store.sql import Op, rows

# An unread count shows at most this many (Chatwoot's badge).
UNREAD_CAP = 10

# Customers never see private notes or activity messages.
VISIBLE = f"private = ? AND message_type <> {p.MESSAGE_TYPE_ACTIVITY}"


def _marks(n: int) -> str:
    return ",".join("?" * n)


def hydrate(messages: list[Message]) -> Op[list[Message]]:
    """Attach each message's attachments (one query for the whole list)."""
    if not messages:
        return messages
    ids = [m.id for m in messages]
    result = yield from rows(
        f"SELECT {Attachment.COLUMNS} FROM attachments WHERE message_id IN ({_marks(len(ids))}) "
        "ORDER BY id",
        *ids,
    )
    by_message: dict[int, list[Attachment]] = {}
    for r in result:
        att = Attachment.from_row(r)
        by_message.setdefault(att.message_id, []).append(att)
    for m in messages:
        m.attachments = by_message.get(m.id, [])
    return messages


def get_message(
    conversation_id: int, message_id: int, *, customer_visible: bool = False
) -> Op[Message | None]:
    """A message of the conversation; ``customer_visible`` hides private notes and activity
    messages, which do not exist for a contact on any public route."""
    where = "id = ? AND conversation_id = ?"
    params: list[object] = [message_id, conversation_id]
    if customer_visible:
        where += f" AND {VISIBLE}"
        params.append(False)
    result = yield from rows(f"SELECT {Message.COLUMNS} FROM messages WHERE {where}", *params)
    if not result:
        return None
    messages = yield from hydrate([Message.from_row(result[0])])
    return messages[0]


def visible_messages(
    conversation_id: int, *, before: int | None = None, after: int | None = None, limit: int = 20
) -> Op[list[Message]]:
    """Customer-visible messages, ascending. Without bounds: the latest ``limit``. ``before``:
    the ``limit`` preceding that id. ``after``: the first ``limit`` following that id."""
    where = f"conversation_id = ? AND {VISIBLE}"
    params: list[object] = [conversation_id, False]
    if before is not None:
        where += " AND id < ?"
        params.append(before)
    if after is not None:
        where += " AND id > ?"
        params.append(after)
        result = yield from rows(
            f"SELECT {Message.COLUMNS} FROM messages WHERE {where} ORDER BY id ASC LIMIT ?",
            *params, limit,
        )  # fmt: skip
        ordered = [Message.from_row(r) for r in result]
    else:
        result = yield from rows(
            f"SELECT {Message.COLUMNS} FROM messages WHERE {where} ORDER BY id DESC LIMIT ?",
            *params, limit,
        )  # fmt: skip
        ordered = [Message.from_row(r) for r in reversed(result)]
    return (yield from hydrate(ordered))


def all_visible_messages(conversation_id: int) -> Op[list[Message]]:
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND {VISIBLE} "
        "ORDER BY id",
        conversation_id, False,
    )  # fmt: skip
    return (yield from hydrate([Message.from_row(r) for r in result]))


def all_visible_messages_within(conversation_id: int, most: int) -> Op[list[Message] | None]:
    """:func:`all_visible_messages` when there are at most ``most`` of them (a bounded read,
    one that may run as a short read); None when there are more."""
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND {VISIBLE} "
        "ORDER BY id LIMIT ?",
        conversation_id, False, most + 1,
    )  # fmt: skip
    if len(result) > most:
        return None
    return (yield from hydrate([Message.from_row(r) for r in result]))
