"""Records to the shapes webhook payloads share (reference §9.2): the account reference, a
contact as ``Contact#webhook_data`` gives it, a message's sender."""

from __future__ import annotations

from typing import Any

from client_sdk import protocol as p

from ..store.records import Contact, Message
from ..store.sql import Op, one, scalar
from .messages import load_senders


def account_ref(account_id: int) -> Op[p.WebhookAccount]:
    name = yield from scalar("SELECT name FROM accounts WHERE id = ?", account_id)
    return p.WebhookAccount(id=account_id, name=name or "")


def contact_shape(contact: Contact, account: p.WebhookAccount) -> p.WebhookContact:
    """A contact as webhook payloads show it (Chatwoot's ``Contact#webhook_data``)."""
    return p.WebhookContact(
        account=account, additional_attributes=contact.additional_attributes,
        custom_attributes=contact.custom_attributes, email=contact.email, id=contact.id,
        identifier=contact.identifier, name=contact.name, phone_number=contact.phone_number,
        blocked=contact.blocked,
    )  # fmt: skip


def sender(message: Message, account: p.WebhookAccount, contact: Contact | None = None) -> Op[Any]:
    """The message's sender as webhook payloads name it; ``contact``: the conversation's
    contact, if the caller has it (no second read)."""
    if message.sender_type is None or message.sender_id is None:
        return None
    if message.sender_type == "Contact" and contact and contact.id == message.sender_id:
        return contact_shape(contact, account)
    if message.sender_type == "Contact":
        row = yield from one(
            f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", message.sender_id
        )
        return contact_shape(Contact.from_row(row), account) if row else None
    if message.sender_type == "User":
        row = yield from one("SELECT id, name, email FROM users WHERE id = ?", message.sender_id)
        return p.WebhookUser(id=row[0], name=row[1], email=row[2]) if row else None
    senders = yield from load_senders([message])
    found = senders.get((message.sender_type, message.sender_id))
    if isinstance(found, p.AgentBotSender):
        return p.WebhookAgentBot(id=found.id, name=found.name)
    return None
