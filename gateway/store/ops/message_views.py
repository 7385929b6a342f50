"""Loading what message views need: attachments and senders, in one query each."""

from __future__ import annotations

from client_sdk import protocol as p

from ... import presenters
from ..records import AgentBot, Attachment, Contact, Message, User
from ..sql import Op, rows, short_read

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


def load_senders(messages: list[Message]) -> Op[presenters.Senders]:
    senders: presenters.Senders = {}
    contact_ids = sorted(
        {m.sender_id for m in messages if m.sender_type == "Contact" and m.sender_id}
    )
    user_ids = sorted({m.sender_id for m in messages if m.sender_type == "User" and m.sender_id})
    if contact_ids:
        result = yield from rows(
            f"SELECT {Contact.COLUMNS} FROM contacts WHERE id IN ({_marks(len(contact_ids))})",
            *contact_ids,
        )
        for r in result:
            c = Contact.from_row(r)
            senders[("Contact", c.id)] = presenters.contact_sender(c)
    if user_ids:
        result = yield from rows(
            f"SELECT {User.COLUMNS} FROM users WHERE id IN ({_marks(len(user_ids))})", *user_ids
        )
        for r in result:
            u = User.from_row(r)
            senders[("User", u.id)] = presenters.user_sender(u)
    senders.update((yield from load_bot_senders(messages)))
    return senders


def load_bot_senders(messages: list[Message]) -> Op[dict[tuple[str, int], p.AgentBotSender]]:
    """Senders of the messages agent bots posted (a deleted bot's are left out)."""
    bot_ids = sorted({m.sender_id for m in messages if m.sender_type == "AgentBot" and m.sender_id})
    if not bot_ids:
        return {}
    result = yield from rows(
        f"SELECT {AgentBot.COLUMNS} FROM agent_bots WHERE id IN ({_marks(len(bot_ids))})",
        *bot_ids,
    )
    bots = (AgentBot.from_row(r) for r in result)
    return {("AgentBot", b.id): presenters.agent_bot_sender(b) for b in bots}


def render_public(
    messages: list[Message], display_id: int, link: presenters.LinkBuilder
) -> Op[list[p.PublicMessage]]:
    """Public views of ``messages``, which the caller has already hydrated."""
    senders = yield from load_senders(messages)
    return [presenters.public_message(m, display_id, senders, link) for m in messages]


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


@short_read
def public_page(
    conversation_id: int,
    display_id: int,
    before: int | None,
    after: int | None,
    limit: int,
    link: presenters.LinkBuilder,
) -> Op[list[p.PublicMessage]]:
    """One page of :func:`visible_messages`, rendered (a bounded, indexed read)."""
    found = yield from visible_messages(conversation_id, before=before, after=after, limit=limit)
    return (yield from render_public(found, display_id, link))


def all_visible_messages(conversation_id: int) -> Op[list[Message]]:
    result = yield from rows(
        f"SELECT {Message.COLUMNS} FROM messages WHERE conversation_id = ? AND {VISIBLE} "
        "ORDER BY id",
        conversation_id, False,
    )  # fmt: skip
    return (yield from hydrate([Message.from_row(r) for r in result]))
