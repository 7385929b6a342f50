"""Contacts and contact sessions: create-or-attach (§3.2, §4.4), identify and merge (§3.4, §4.5).

Input is validated by the service before it reaches these operations; they enforce only what
needs the database (uniqueness, which contact to reuse or merge into).
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ... import validation
from ...errors import NotFound
from ..records import Contact, ContactInbox
from ..sql import Op, dump_json, one, rows
from . import webhooks
from .tokens import haiku_name, secure_token, uuid4


class ContactFields(Struct, kw_only=True):
    """Profile fields from a request; None means "not given", blank strings are ignored."""

    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    custom_attributes: dict[str, Any] | None = None


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Rails' ``Hash#deep_merge``: nested objects merge key by key, ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _contact_type(email: str | None, phone: str | None, current: str = "visitor") -> str:
    if current == "customer":
        return current
    return "lead" if (email or phone) else current


def get_contact(contact_id: int) -> Op[Contact | None]:
    row = yield from one(f"SELECT {Contact.COLUMNS} FROM contacts WHERE id = ?", contact_id)
    return Contact.from_row(row) if row else None


def get_session(inbox_id: int, source_id: str) -> Op[tuple[ContactInbox, Contact] | None]:
    """The contact session with this source_id in this inbox, and its contact."""
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE inbox_id = ? AND source_id = ?",
        inbox_id, source_id,
    )  # fmt: skip
    if row is None:
        return None
    session = ContactInbox.from_row(row)
    contact = yield from get_contact(session.contact_id)
    if contact is None:
        return None
    return session, contact


def get_session_by_pubsub_token(token: str) -> Op[ContactInbox | None]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE pubsub_token = ?", token
    )
    return ContactInbox.from_row(row) if row else None


def _find_contact(account_id: int, fields: ContactFields) -> Op[Contact | None]:
    """Reuse on create: identifier, then email (case-insensitive), then phone; first hit wins."""
    probes: list[tuple[str, str | None]] = [
        ("identifier", fields.identifier),
        ("email", fields.email.lower() if fields.email else None),
        ("phone_number", fields.phone_number),
    ]
    for column, value in probes:
        if not value:
            continue
        row = yield from one(
            f"SELECT {Contact.COLUMNS} FROM contacts WHERE account_id = ? AND {column} = ?",
            account_id, value,
        )  # fmt: skip
        if row is not None:
            return Contact.from_row(row)
    return None


def create_session(
    inbox_id: int,
    account_id: int,
    source_id: str | None,
    fields: ContactFields,
    verified: bool,
    now: float,
) -> Op[tuple[ContactInbox, Contact, bool]]:
    """Create a contact session, reusing a known contact; ``(session, contact, created)``.

    A source_id already known in this inbox returns that session unchanged (as Chatwoot). A
    session created with a valid identifier_hash is marked verified (Chatwoot needs a second
    call; see COMPATIBILITY.md).
    """
    if source_id:
        existing = yield from get_session(inbox_id, source_id)
        if existing is not None:
            session, contact = existing
            if verified and not session.hmac_verified:
                session = yield from mark_verified(session.id, now)
            return session, contact, False
    found = yield from _find_contact(account_id, fields)
    if found is not None:
        contact = found
    else:
        email = fields.email.lower() if fields.email else None
        row = yield from one(
            "INSERT INTO contacts (account_id, name, email, phone_number, identifier, "
            "additional_attributes, custom_attributes, blocked, contact_type, created_at, "
            f"updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING {Contact.COLUMNS}",
            account_id, fields.name or haiku_name(), email, fields.phone_number or None,
            fields.identifier or None, "{}", dump_json(fields.custom_attributes or {}), False,
            _contact_type(email, fields.phone_number), now, now,
        )  # fmt: skip
        assert row is not None
        contact = Contact.from_row(row)
        yield from webhooks.contact_event("contact.created", contact.id, now)
    row = yield from one(
        "INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, pubsub_token, "
        f"hmac_verified, created_at, updated_at) VALUES (?,?,?,?,?,?,?) "
        f"RETURNING {ContactInbox.COLUMNS}",
        contact.id, inbox_id, source_id or uuid4(), secure_token(), verified, now, now,
    )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row), contact, True


def mark_verified(contact_inbox_id: int, now: float) -> Op[ContactInbox]:
    """Sticky, as Chatwoot: a session once verified stays verified."""
    row = yield from one(
        "UPDATE contact_inboxes SET hmac_verified = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {ContactInbox.COLUMNS}",
        True, now, contact_inbox_id,
    )  # fmt: skip
    if row is None:
        raise NotFound("contact")
    return ContactInbox.from_row(row)


def _other_contact(account_id: int, column: str, value: str, not_id: int) -> Op[Contact | None]:
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE account_id = ? AND {column} = ? "
        "AND id <> ?",
        account_id, value, not_id,
    )  # fmt: skip
    return Contact.from_row(row) if row else None


def _merge(base: Contact, mergee: Contact, now: float) -> Op[Contact]:
    """Fold ``mergee`` into ``base`` (§4.5): base values win, mergee fills blanks."""
    yield from rows(
        "UPDATE conversations SET contact_id = ? WHERE contact_id = ?", base.id, mergee.id
    )
    yield from rows(
        "UPDATE messages SET sender_id = ? WHERE sender_type = 'Contact' AND sender_id = ?",
        base.id, mergee.id,
    )  # fmt: skip
    yield from rows(
        "UPDATE contact_inboxes SET contact_id = ? WHERE contact_id = ?", base.id, mergee.id
    )
    yield from rows(
        "UPDATE csat_survey_responses SET contact_id = ? WHERE contact_id = ?", base.id, mergee.id
    )
    yield from rows("DELETE FROM contacts WHERE id = ?", mergee.id)
    custom = _deep_merge(mergee.custom_attributes, base.custom_attributes)
    additional = _deep_merge(mergee.additional_attributes, base.additional_attributes)
    row = yield from one(
        "UPDATE contacts SET name = ?, email = ?, phone_number = ?, identifier = ?, "
        "custom_attributes = ?, additional_attributes = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {Contact.COLUMNS}",
        base.name or mergee.name, base.email or mergee.email,
        base.phone_number or mergee.phone_number, base.identifier or mergee.identifier,
        dump_json(custom), dump_json(additional), now, base.id,
    )  # fmt: skip
    assert row is not None
    return Contact.from_row(row)


def update_contact(
    contact_inbox_id: int, fields: ContactFields, verified: bool, now: float
) -> Op[Contact]:
    """Identify/update (§3.4): merge into another contact that owns the email or phone, then
    apply the non-blank fields and deep-merge custom attributes. ``identifier`` is ignored."""
    session_row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE id = ?", contact_inbox_id
    )
    if session_row is None:
        raise NotFound("contact")
    session = ContactInbox.from_row(session_row)
    if verified and not session.hmac_verified:
        yield from mark_verified(session.id, now)
    contact = yield from get_contact(session.contact_id)
    if contact is None:
        raise NotFound("contact")
    email = fields.email.lower() if fields.email else None
    phone = fields.phone_number or None
    if email:
        owner = yield from _other_contact(contact.account_id, "email", email, contact.id)
        if owner is not None:
            contact = yield from _merge(owner, contact, now)
    if phone:
        owner = yield from _other_contact(contact.account_id, "phone_number", phone, contact.id)
        if owner is not None:
            if owner.email and email and owner.email != email:
                phone = None  # the phone belongs to someone else with another email: keep it there
            else:
                contact = yield from _merge(owner, contact, now)
    custom = _deep_merge(contact.custom_attributes, fields.custom_attributes or {})
    validation.attributes_size(custom)  # merged: repeated updates cannot grow them past it
    new_email = email or contact.email
    new_phone = phone or contact.phone_number
    row = yield from one(
        "UPDATE contacts SET name = ?, email = ?, phone_number = ?, custom_attributes = ?, "
        f"contact_type = ?, updated_at = ? WHERE id = ? RETURNING {Contact.COLUMNS}",
        fields.name or contact.name, new_email, new_phone, dump_json(custom),
        _contact_type(new_email, new_phone, contact.contact_type), now, contact.id,
    )  # fmt: skip
    assert row is not None
    updated = Contact.from_row(row)
    changed = webhooks.contact_changes(contact, updated)
    if changed:  # Chatwoot's webhook fires only when something changed
        yield from webhooks.contact_event("contact.updated", updated.id, now, changed)
    return updated
