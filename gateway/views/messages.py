"""Public message views, and loading what they need (senders, one query per kind)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from client_sdk import protocol as p

from ..store.records import AgentBot, Contact, Message, User
from ..store.sql import Op, rows
from . import public as presenters


def _marks(n: int) -> str:
    return ",".join("?" * n)


# Who wrote a message, as the API that shows it names a user: the public shape or the agent's.
U = TypeVar("U", p.UserSender, p.AgentUserSender)


def senders_of(
    messages: list[Message], user_sender: Callable[[User], U], held: Contact | None = None
) -> Op[dict[tuple[str, int], p.ContactSender | U | p.AgentBotSender]]:
    """The senders of ``messages``, one query per kind of sender (contacts, users, bots);
    none for the contact ``held`` (one the caller has already read: a conversation's own)."""
    senders: dict[tuple[str, int], p.ContactSender | U | p.AgentBotSender] = {}
    contact_ids = sorted(
        {m.sender_id for m in messages if m.sender_type == "Contact" and m.sender_id}
    )
    if held is not None and held.id in contact_ids:
        contact_ids.remove(held.id)
        senders[("Contact", held.id)] = presenters.contact_sender(held)
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
            senders[("User", u.id)] = user_sender(u)
    senders.update((yield from load_bot_senders(messages)))
    return senders


def load_senders(messages: list[Message], held: Contact | None = None) -> Op[presenters.Senders]:
    """Senders as the public API and push payloads show them (``held``: see
    :func:`senders_of`)."""
    return (yield from senders_of(messages, presenters.user_sender, held))


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
    messages: list[Message],
    display_id: int,
    link: presenters.LinkBuilder,
    held: Contact | None = None,
) -> Op[list[p.PublicMessage]]:
    """Public views of ``messages``, which the caller has already hydrated (``held``: the
    conversation's contact, when the caller has read it: not read again)."""
    if not messages:
        return []
    senders = yield from load_senders(messages, held)
    return [presenters.public_message(m, display_id, senders, link) for m in messages]
