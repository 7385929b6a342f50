"""Contacts and contact sessions on the public API (§3.2-3.4), under the trust model.

A customer is untrusted. A session reaches the contact it created, or the contact whose
``identifier`` it proved with an HMAC; an e-mail, phone or identifier without proof never
selects, merges into or reveals another contact (COMPATIBILITY.md, "Trust model").

Input is validated by the service before it reaches these operations; they enforce only what
needs the database (uniqueness, which contact a proof binds to).
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from ..store.records import Contact, ContactInbox
from ..store.sql import Op, dump_json, one, prefixed, rows, scalar, short_read, width
from . import validation, webhooks
from .errors import NotFound
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


# A session (``ci``) and its contact (``ct``): the columns, then the tables.
SESSION_AND_CONTACT = f"{prefixed(ContactInbox.COLUMNS, 'ci')}, {prefixed(Contact.COLUMNS, 'ct')}"
SESSIONS_WITH_CONTACT = "contact_inboxes ci JOIN contacts ct ON ct.id = ci.contact_id"
SESSION_WIDTH = width(ContactInbox.COLUMNS)
CONTACT_WIDTH = width(Contact.COLUMNS)


@short_read
def get_session(inbox_id: int, source_id: str) -> Op[tuple[ContactInbox, Contact] | None]:
    """The contact session with this source_id in this inbox, and its contact."""
    row = yield from one(
        f"SELECT {SESSION_AND_CONTACT} FROM {SESSIONS_WITH_CONTACT} "
        "WHERE ci.inbox_id = ? AND ci.source_id = ?",
        inbox_id, source_id,
    )  # fmt: skip
    if row is None:
        return None
    return ContactInbox.from_row(row), Contact.from_row(row[SESSION_WIDTH:])


@short_read
def get_session_by_pubsub_token(token: str) -> Op[ContactInbox | None]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE pubsub_token = ?", token
    )
    return ContactInbox.from_row(row) if row else None


# Where a claim that could not be kept on its column goes: the value someone else's contact
# holds, or an identifier that nobody proved. Agents see it; it never selects anything.
CLAIMED = {"identifier": "claimed_identifier", "email": "claimed_email",
           "phone_number": "claimed_phone_number"}  # fmt: skip


def _owner(account_id: int, column: str, value: str, not_id: int | None = None) -> Op[int | None]:
    """The id of the contact of the account that holds ``value`` in ``column`` (other than
    ``not_id``); ``column`` is one of the three unique identity columns."""
    assert column in CLAIMED
    found = yield from scalar(
        f"SELECT id FROM contacts WHERE account_id = ? AND {column} = ? AND id <> ?",
        account_id, value, -1 if not_id is None else not_id,
    )  # fmt: skip
    return None if found is None else int(found)


def _keep(
    account_id: int, contact_id: int | None, column: str, value: str | None, claims: dict[str, Any]
) -> Op[str | None]:
    """``value`` if this contact may hold it (nobody else does), else None with the value
    recorded under its claim key: a claim never selects, merges into or reveals the owner."""
    if not value:
        return None
    owner = yield from _owner(account_id, column, value, contact_id)
    if owner is None:
        return value
    claims[CLAIMED[column]] = value
    return None


def _insert_contact(
    account_id: int, fields: ContactFields, identifier: str | None, now: float
) -> Op[Contact]:
    """A new contact holding the claims nobody else holds; the rest go to claim keys."""
    claims: dict[str, Any] = {}
    email = fields.email.lower() if fields.email else None
    email = yield from _keep(account_id, None, "email", email, claims)
    phone = yield from _keep(account_id, None, "phone_number", fields.phone_number, claims)
    if fields.identifier and fields.identifier != identifier:
        claims[CLAIMED["identifier"]] = fields.identifier  # claimed, not proved
    row = yield from one(
        "INSERT INTO contacts (account_id, name, email, phone_number, identifier, "
        "additional_attributes, custom_attributes, blocked, contact_type, created_at, "
        f"updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING {Contact.COLUMNS}",
        account_id, fields.name or haiku_name(), email, phone, identifier, dump_json(claims),
        dump_json(fields.custom_attributes or {}), False, _contact_type(email, phone), now, now,
    )  # fmt: skip
    assert row is not None
    contact = Contact.from_row(row)
    yield from webhooks.contact_event("contact.created", contact.id, now)
    return contact


def _by_identifier(account_id: int, identifier: str) -> Op[Contact | None]:
    row = yield from one(
        f"SELECT {Contact.COLUMNS} FROM contacts WHERE account_id = ? AND identifier = ?",
        account_id, identifier,
    )  # fmt: skip
    return Contact.from_row(row) if row else None


def create_session(
    inbox_id: int,
    account_id: int,
    source_id: str | None,
    fields: ContactFields,
    proved: str | None,
    now: float,
) -> Op[tuple[ContactInbox, Contact, bool]]:
    """Create a contact session; ``(session, contact, created)``.

    ``proved`` is the identifier whose HMAC the request carried (None without one). Only a
    proved identifier selects an existing contact: exactly the one holding that identifier.
    Without proof the session gets a contact of its own, whatever e-mail, phone or identifier
    it claims (see COMPATIBILITY.md, "Trust model"). A source_id already known in this inbox
    is that session (it is the session's bearer secret, as in Chatwoot).
    """
    if source_id:
        existing = yield from get_session(inbox_id, source_id)
        if existing is not None:
            session, contact = existing
            if proved is not None:
                session, contact = yield from prove(session.id, proved, now)
            return session, contact, False
    found = None if proved is None else (yield from _by_identifier(account_id, proved))
    contact = (
        found
        if found is not None
        else (yield from _insert_contact(account_id, fields, proved, now))
    )
    row = yield from one(
        "INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, pubsub_token, "
        f"hmac_verified, created_at, updated_at) VALUES (?,?,?,?,?,?,?) "
        f"RETURNING {ContactInbox.COLUMNS}",
        contact.id, inbox_id, source_id or uuid4(), secure_token(), proved is not None, now, now,
    )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row), contact, True


def _load_session(contact_inbox_id: int) -> Op[tuple[ContactInbox, Contact]]:
    row = yield from one(
        f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE id = ?", contact_inbox_id
    )
    if row is None:
        raise NotFound("contact")
    session = ContactInbox.from_row(row)
    contact = yield from get_contact(session.contact_id)
    if contact is None:
        raise NotFound("contact")
    return session, contact


def _mark_verified(session: ContactInbox, contact_id: int, now: float) -> Op[ContactInbox]:
    if session.hmac_verified and session.contact_id == contact_id:
        return session
    row = yield from one(
        "UPDATE contact_inboxes SET contact_id = ?, hmac_verified = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {ContactInbox.COLUMNS}",
        contact_id, True, now, session.id,
    )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row)


def prove(contact_inbox_id: int, identifier: str, now: float) -> Op[tuple[ContactInbox, Contact]]:
    """The session proved ``identifier``: bind it, verified, to exactly that identifier's
    contact.

    An anonymous contact that this session alone uses adopts the identifier when nobody
    holds it (a visitor who signs in keeps their conversations). Otherwise the session moves,
    with the conversations it opened, to the identifier's contact (created when missing):
    what a session proved is the only thing that widens what it reaches.
    """
    session, contact = yield from _load_session(contact_inbox_id)
    if contact.identifier == identifier:
        return (yield from _mark_verified(session, contact.id, now)), contact
    owner = yield from _by_identifier(contact.account_id, identifier)
    if owner is None and contact.identifier is None:
        sessions = yield from scalar(
            "SELECT COUNT(*) FROM contact_inboxes WHERE contact_id = ?", contact.id
        )
        if int(sessions or 0) == 1:
            additional = dict(contact.additional_attributes)
            if additional.get(CLAIMED["identifier"]) == identifier:
                del additional[CLAIMED["identifier"]]
            row = yield from one(
                "UPDATE contacts SET identifier = ?, additional_attributes = ?, updated_at = ? "
                f"WHERE id = ? RETURNING {Contact.COLUMNS}",
                identifier, dump_json(additional), now, contact.id,
            )  # fmt: skip
            assert row is not None
            adopted = Contact.from_row(row)
            changed = webhooks.contact_changes(contact, adopted)
            yield from webhooks.contact_event("contact.updated", adopted.id, now, changed)
            return (yield from _mark_verified(session, adopted.id, now)), adopted
    if owner is None:
        owner = yield from _insert_contact(
            contact.account_id, ContactFields(name=contact.name), identifier, now
        )
    yield from _move_session(session, contact.id, owner.id)
    return (yield from _mark_verified(session, owner.id, now)), owner


def _move_session(session: ContactInbox, from_id: int, to_id: int) -> Op[None]:
    """The conversations this session opened, their contact messages and CSAT answers follow
    it to ``to_id``; nothing else of ``from_id`` moves."""
    mine = "SELECT id FROM conversations WHERE contact_inbox_id = ?"
    yield from rows(
        f"UPDATE messages SET sender_id = ? WHERE sender_type = 'Contact' AND sender_id = ? "
        f"AND conversation_id IN ({mine})",
        to_id, from_id, session.id,
    )  # fmt: skip
    yield from rows(
        f"UPDATE csat_survey_responses SET contact_id = ? WHERE conversation_id IN ({mine})",
        to_id, session.id,
    )  # fmt: skip
    yield from rows(
        "UPDATE conversations SET contact_id = ? WHERE contact_inbox_id = ?", to_id, session.id
    )


def update_contact(
    contact_inbox_id: int, fields: ContactFields, proved: str | None, now: float
) -> Op[Contact]:
    """Identify/update (§3.4) the session's own contact: a proved identifier first binds the
    session to that identifier's contact (:func:`prove`); then the non-blank fields apply and
    custom attributes deep-merge. An e-mail or phone another contact holds is recorded as a
    claim, never merged (Chatwoot merges: see COMPATIBILITY.md). ``identifier`` is ignored."""
    if proved is not None:
        _session, contact = yield from prove(contact_inbox_id, proved, now)
    else:
        _session, contact = yield from _load_session(contact_inbox_id)
    claims = dict(contact.additional_attributes)
    email = fields.email.lower() if fields.email else None
    if email != contact.email:
        email = yield from _keep(contact.account_id, contact.id, "email", email, claims)
    phone = fields.phone_number or None
    if phone != contact.phone_number:
        phone = yield from _keep(contact.account_id, contact.id, "phone_number", phone, claims)
    custom = _deep_merge(contact.custom_attributes, fields.custom_attributes or {})
    validation.attributes_size(custom)  # merged: repeated updates cannot grow them past it
    new_email = email or contact.email
    new_phone = phone or contact.phone_number
    row = yield from one(
        "UPDATE contacts SET name = ?, email = ?, phone_number = ?, custom_attributes = ?, "
        "additional_attributes = ?, contact_type = ?, updated_at = ? WHERE id = ? "
        f"RETURNING {Contact.COLUMNS}",
        fields.name or contact.name, new_email, new_phone, dump_json(custom), dump_json(claims),
        _contact_type(new_email, new_phone, contact.contact_type), now, contact.id,
    )  # fmt: skip
    assert row is not None
    updated = Contact.from_row(row)
    changed = webhooks.contact_changes(contact, updated)
    if changed:  # Chatwoot's webhook fires only when something changed
        yield from webhooks.contact_event("contact.updated", updated.id, now, changed)
    return updated
