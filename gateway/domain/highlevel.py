"""Lookups behind the GoHighLevel-compatible conversation create (seed 004)."""

from __future__ import annotations

from uuid import uuid4

from ..store.records import Contact, ContactInbox, Inbox
from ..store.sql import Op, one
from .tokens import secure_token
from .validation import parse_id


def location_inbox(location_id: str) -> Op[Inbox | None]:
    """A location is an inbox identifier, or an account id whose oldest inbox is its default."""
    row = yield from one(f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE identifier = ?", location_id)
    account_id = parse_id(location_id)
    if row is None and account_id is not None:
        row = yield from one(
            f"SELECT {Inbox.COLUMNS} FROM inboxes WHERE account_id = ? ORDER BY id LIMIT 1",
            account_id,
        )
    return Inbox.from_row(row) if row else None


def account_contact(account_id: int, contact_id: str) -> Op[Contact | None]:
    number = parse_id(contact_id)
    if number is None:
        return None
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ? AND account_id = ?",
        number, account_id,
    )  # fmt: skip
    return Contact.from_row(row) if row else None


def session_for(inbox: Inbox, contact: Contact, now: float) -> Op[ContactInbox]:
    """The contact's latest session in ``inbox``, created (new source_id) if it has none."""
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE inbox_id = ? "
        "AND contact_id = ? ORDER BY id DESC LIMIT 1",
        inbox.id, contact.id,
    )  # fmt: skip
    if row is None:
        row = yield from one(
            "INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, pubsub_token, "
            f"hmac_verified, created_at, updated_at) VALUES (?,?,?,?,?,?,?) "
            f"RETURNING {ContactInbox.COLUMNS}",
            contact.id, inbox.id, str(uuid4()), secure_token(), False, now, now,
        )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row)
