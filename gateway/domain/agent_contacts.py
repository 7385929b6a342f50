"""Contacts on the agent API (reference agent §3.5): list, search, create, update, attach to
an inbox. Uniqueness is checked here, inside the write, so that two racing creates cannot both
pass; field formats are checked by the service first.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from client_sdk import protocol as p

from ..store.records import Contact, ContactInbox, Conversation, Inbox, LoggedEvent
from ..store.sql import Op, dump_json, one, rows, scalar
from . import events, validation
from .agent_admin import get_inbox
from .contacts import get_contact
from .errors import InvalidAttribute, NotFound
from .models import AdminInbox, ContactInboxView
from .tokens import secure_token, uuid4
from .validation import parse_id

PAGE_SIZE = 15

# Chatwoot's "resolved" contacts: someone the account can reach or recognise.
RESOLVED = (
    "((c.email IS NOT NULL AND c.email <> '') OR (c.phone_number IS NOT NULL AND "
    "c.phone_number <> '') OR (c.identifier IS NOT NULL AND c.identifier <> ''))"
)
SORTS = {
    "name": "LOWER(c.name)",
    "email": "c.email",
    "phone_number": "c.phone_number",
    "last_activity_at": "c.last_activity_at",
    "created_at": "c.created_at",
}
_COLUMNS = ", ".join("c." + column.strip() for column in Contact.COLUMNS.split(","))
_TAKEN = {"email": "Email", "phone_number": "Phone number", "identifier": "Identifier"}


class ContactChanges(Struct, kw_only=True):
    """Validated fields of a create or update; UNSET means "leave as is"."""

    name: str | UnsetType = UNSET
    email: str | UnsetType | None = UNSET
    phone_number: str | UnsetType | None = UNSET
    identifier: str | UnsetType | None = UNSET
    blocked: bool | UnsetType = UNSET
    custom_attributes: dict[str, Any] | UnsetType = UNSET
    additional_attributes: dict[str, Any] | UnsetType = UNSET


def order_by(sort: str | None) -> str:
    """``sort`` as Chatwoot takes it (``name``, ``-last_activity_at``...); unknown keys fall
    back to the default, most recently active first. Unknown values are always last."""
    key = (sort or "").strip()
    descending = key.startswith("-")
    column = SORTS.get(key.lstrip("-"))
    if column is None:
        column, descending = SORTS["last_activity_at"], True
    direction = "DESC" if descending else "ASC"
    return f"({column} IS NULL), {column} {direction}, c.id {direction}"


def _like(query: str) -> str:
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_contacts(
    account_id: int, page: int, sort: str | None, query: str | None = None
) -> Op[tuple[int, list[Contact]]]:
    """One page of the account's resolved contacts; with ``query``, of all its contacts whose
    name, e-mail, phone number or identifier contain it (case-insensitive), or whose id it is.
    ``(total, page)``."""
    where = f"c.account_id = ? AND {RESOLVED}"
    params: list[Any] = [account_id]
    if query:
        matches = [
            f"LOWER(COALESCE(c.{column}, '')) LIKE ? ESCAPE '\\'"
            for column in ("name", "email", "phone_number", "identifier")
        ]
        params += [_like(query)] * len(matches)
        contact_id = parse_id(query)
        if contact_id is not None:
            matches.append("c.id = ?")
            params.append(contact_id)
        where = "c.account_id = ? AND (" + " OR ".join(matches) + ")"
    total = yield from scalar(f"SELECT COUNT(*) FROM contacts c WHERE {where}", *params)
    result = yield from rows(
        f"SELECT {_COLUMNS} FROM contacts c WHERE {where} ORDER BY {order_by(sort)} "
        "LIMIT ? OFFSET ?",
        *params, PAGE_SIZE, (max(page, 1) - 1) * PAGE_SIZE,
    )  # fmt: skip
    return int(total or 0), [Contact.from_row(r) for r in result]


def contact_inboxes(contact_ids: list[int]) -> Op[dict[int, list[ContactInboxView]]]:
    """Each contact's sessions with their inbox, oldest first (one query for the page)."""
    found: dict[int, list[ContactInboxView]] = {cid: [] for cid in contact_ids}
    if not contact_ids:
        return found
    marks = ",".join("?" * len(contact_ids))
    result = yield from rows(
        "SELECT ci.contact_id, ci.source_id, i.id, i.name FROM contact_inboxes ci "
        f"JOIN inboxes i ON i.id = ci.inbox_id WHERE ci.contact_id IN ({marks}) ORDER BY ci.id",
        *contact_ids,
    )
    for r in result:
        found[int(r[0])].append(ContactInboxView(source_id=r[1], inbox_id=r[2], inbox_name=r[3]))
    return found


def account_contact(account_id: int, contact_id: int) -> Op[Contact]:
    contact = yield from get_contact(contact_id)
    if contact is None or contact.account_id != account_id:
        raise NotFound("contact")
    return contact


def _check_unique(account_id: int, changes: ContactChanges, not_id: int) -> Op[None]:
    """Chatwoot's uniqueness validations, every failure in one 422 (``full_messages``)."""
    failed: list[str] = []
    for column in ("email", "phone_number", "identifier"):
        value = getattr(changes, column)
        if value is UNSET or not value:
            continue
        taken = yield from scalar(
            f"SELECT id FROM contacts WHERE account_id = ? AND {column} = ? AND id <> ?",
            account_id, value, not_id,
        )  # fmt: skip
        if taken is not None:
            failed.append(column)
    if failed:
        message = ", ".join(f"{_TAKEN[column]} has already been taken" for column in failed)
        raise InvalidAttribute(message, failed)


def _contact_type(email: str | None, phone: str | None, current: str) -> str:
    if current == "customer":
        return current
    return "lead" if (email or phone) else current


def contact_event(name: str, contact: Contact, now: float) -> Op[list[LoggedEvent]]:
    """``contact.created`` / ``contact.updated`` for the account's agents (§5)."""
    data = p.ContactEventData(
        additional_attributes=contact.additional_attributes,
        custom_attributes=contact.custom_attributes, email=contact.email, id=contact.id,
        identifier=contact.identifier, name=contact.name, phone_number=contact.phone_number,
        blocked=contact.blocked, account_id=contact.account_id,
    )  # fmt: skip
    return (yield from events.append(name, data, [events.account_stream(contact.account_id)], now))


def attach(contact: Contact, inbox: Inbox, source_id: str | None, now: float) -> Op[ContactInbox]:
    """A session of ``contact`` in ``inbox``: the existing one with that source_id, else new."""
    if source_id:
        row = yield from one(
            f"SELECT {ContactInbox.COLUMNS} FROM contact_inboxes WHERE inbox_id = ? "
            "AND source_id = ?",
            inbox.id, source_id,
        )  # fmt: skip
        if row is not None:
            existing = ContactInbox.from_row(row)
            if existing.contact_id != contact.id:
                raise InvalidAttribute("Source has already been taken", ["source_id"])
            return existing
    row = yield from one(
        "INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, pubsub_token, "
        "hmac_verified, created_at, updated_at) VALUES (?,?,?,?,?,?,?) "
        f"RETURNING {ContactInbox.COLUMNS}",
        contact.id, inbox.id, source_id or uuid4(), secure_token(), False, now, now,
    )  # fmt: skip
    assert row is not None
    return ContactInbox.from_row(row)


class CreatedContact(Struct, kw_only=True):
    contact: Contact
    session: ContactInbox | None
    inbox: AdminInbox | None
    events: list[LoggedEvent]


def create_contact(
    account_id: int,
    changes: ContactChanges,
    inbox_id: int | None,
    source_id: str | None,
    now: float,
) -> Op[CreatedContact]:
    """A new contact (never reused, as Chatwoot's API), attached to ``inbox_id`` if given."""
    inbox = (yield from get_inbox(account_id, inbox_id)) if inbox_id is not None else None
    yield from _check_unique(account_id, changes, 0)

    def given(value: Any, default: Any) -> Any:
        return default if value is UNSET else value

    email = given(changes.email, None)
    phone = given(changes.phone_number, None)
    row = yield from one(
        "INSERT INTO contacts (account_id, name, email, phone_number, identifier, "
        "additional_attributes, custom_attributes, blocked, contact_type, created_at, "
        f"updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) RETURNING {Contact.COLUMNS}",
        account_id, given(changes.name, ""), email, phone, given(changes.identifier, None),
        dump_json(given(changes.additional_attributes, {})),
        dump_json(given(changes.custom_attributes, {})), given(changes.blocked, False),
        _contact_type(email, phone, "visitor"), now, now,
    )  # fmt: skip
    assert row is not None
    contact = Contact.from_row(row)
    session = (yield from attach(contact, inbox.inbox, source_id, now)) if inbox else None
    logged = yield from contact_event("contact.created", contact, now)
    return CreatedContact(contact=contact, session=session, inbox=inbox, events=logged)


def update_contact(
    account_id: int, contact_id: int, changes: ContactChanges, now: float
) -> Op[tuple[Contact, list[LoggedEvent]]]:
    """Given fields overwrite; custom and additional attributes merge into the stored ones."""
    contact = yield from account_contact(account_id, contact_id)
    yield from _check_unique(account_id, changes, contact.id)

    def pick(value: Any, current: Any) -> Any:
        return current if value is UNSET else value

    email = pick(changes.email, contact.email)
    phone = pick(changes.phone_number, contact.phone_number)
    custom = contact.custom_attributes
    if changes.custom_attributes is not UNSET:
        custom = {**custom, **changes.custom_attributes}
    additional = contact.additional_attributes
    if changes.additional_attributes is not UNSET:
        additional = {**additional, **changes.additional_attributes}
    validation.attributes_size(custom)  # merged: repeated updates cannot grow them past it
    validation.attributes_size(additional, "additional_attributes")
    row = yield from one(
        "UPDATE contacts SET name = ?, email = ?, phone_number = ?, identifier = ?, blocked = ?, "
        "custom_attributes = ?, additional_attributes = ?, contact_type = ?, updated_at = ? "
        f"WHERE id = ? RETURNING {Contact.COLUMNS}",
        pick(changes.name, contact.name), email, phone,
        pick(changes.identifier, contact.identifier), pick(changes.blocked, contact.blocked),
        dump_json(custom), dump_json(additional),
        _contact_type(email, phone, contact.contact_type), now, contact.id,
    )  # fmt: skip
    assert row is not None
    updated = Contact.from_row(row)
    logged = yield from contact_event("contact.updated", updated, now)
    return updated, logged


def add_contact_inbox(
    account_id: int, contact_id: int, inbox_id: int, source_id: str | None, now: float
) -> Op[tuple[ContactInbox, AdminInbox]]:
    contact = yield from account_contact(account_id, contact_id)
    inbox = yield from get_inbox(account_id, inbox_id)
    session = yield from attach(contact, inbox.inbox, source_id, now)
    return session, inbox


def contact_conversations(
    account_id: int, contact_id: int, inbox_ids: tuple[int, ...], limit: int = 20
) -> Op[list[Conversation]]:
    """The contact's conversations in inboxes the caller sees, newest first (as Chatwoot)."""
    yield from account_contact(account_id, contact_id)
    if not inbox_ids:
        return []
    marks = ",".join("?" * len(inbox_ids))
    result = yield from rows(
        f"SELECT {Conversation.COLUMNS} FROM conversations WHERE account_id = ? "
        f"AND contact_id = ? AND inbox_id IN ({marks}) "
        "ORDER BY id DESC LIMIT ?",
        account_id, contact_id, *inbox_ids, limit,
    )  # fmt: skip
    return [Conversation.from_row(r) for r in result]
