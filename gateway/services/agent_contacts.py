"""Contacts on the agent API (reference agent §3.5). Every member of the account, agent or
administrator, may list, search, create and update its contacts (§1.4)."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, UnsetType

from client_sdk import protocol as p

from ..domain import agent_contacts as ops
from ..domain import validation
from ..domain.agent_admin import get_inbox
from ..domain.errors import InvalidAttribute
from ..errors import ApiError, resource_not_found
from ..store.records import Contact
from ..store.sql import Op
from ..views import admin as present
from ..views import agent_conversations as agent_views
from ..views.public import LinkBuilder
from .agent_auth import Actor
from .context import Context


def _text(value: str | UnsetType | None) -> str | UnsetType | None:
    """Blank strings are "no value": they must not collide in unique columns."""
    if value is UNSET or value is None:
        return value
    return value.strip() or None


def contact_changes(req: p.AgentContactRequest) -> ops.ContactChanges:
    """Check formats first, every failure in one 422 as Rails' ``full_messages``."""
    email, phone, identifier = _text(req.email), _text(req.phone_number), _text(req.identifier)
    name = _text(req.name)
    failures: list[tuple[str, str]] = []
    checks: list[tuple[str, Any]] = [
        ("name", lambda: validation.length("name", name or None, validation.MAX_NAME)),
        ("email", lambda: validation.email(email or None)),
        ("phone_number", lambda: validation.phone_number(phone or None)),
        ("identifier", lambda: validation.length("identifier", identifier or None, 255)),
        ("custom_attributes", lambda: validation.custom_attributes(req.custom_attributes or {})),
        (
            "additional_attributes",
            lambda: validation.attributes_size(
                req.additional_attributes or {}, "additional_attributes"
            ),
        ),
    ]
    for attribute, check in checks:
        try:
            check()
        except InvalidAttribute as exc:
            failures.append((attribute, exc.message))
    if failures:
        raise InvalidAttribute(", ".join(m for _, m in failures), [a for a, _ in failures])
    changes = ops.ContactChanges(
        email=email.lower() if isinstance(email, str) else email,
        phone_number=phone,
        identifier=identifier,
    )
    if req.name is not UNSET:
        changes.name = name or ""
    if req.blocked is not UNSET:
        changes.blocked = req.blocked
    if req.custom_attributes is not UNSET:
        changes.custom_attributes = req.custom_attributes or {}
    if req.additional_attributes is not UNSET:
        changes.additional_attributes = req.additional_attributes or {}
    return changes


def _contact_conversations(
    account_id: int,
    contact_id: int,
    inbox_ids: tuple[int, ...],
    viewer: int,
    link: LinkBuilder,
    now: float,
) -> Op[list[p.AgentConversation]]:
    """``GET .../contacts/{id}/conversations``: one read, then the full shapes (§2.1)."""
    found = yield from ops.contact_conversations(account_id, contact_id, inbox_ids)
    return (yield from agent_views.render_conversations(found, viewer, link, now))


class ContactAdminService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _present(self, contacts: list[Contact], with_inboxes: bool) -> list[p.AgentContact]:
        if not with_inboxes:
            return [present.contact(c) for c in contacts]
        sessions = await self.ctx.store.read(ops.contact_inboxes, [c.id for c in contacts])
        return [present.contact(c, sessions[c.id]) for c in contacts]

    async def list_contacts(
        self, actor: Actor, page: int, sort: str | None, with_inboxes: bool = True
    ) -> p.ContactList:
        total, found = await self.ctx.store.read(ops.list_contacts, actor.account_id, page, sort)
        payload = await self._present(found, with_inboxes)
        return p.ContactList(meta=p.ListMeta(count=total, current_page=page), payload=payload)

    async def search(
        self, actor: Actor, query: str | None, page: int, sort: str | None, with_inboxes: bool
    ) -> p.ContactList:
        if not (query or "").strip():
            raise ApiError.error(422, "Specify search string with parameter q")
        total, found = await self.ctx.store.read(
            ops.list_contacts, actor.account_id, page, sort, (query or "").strip()
        )
        payload = await self._present(found, with_inboxes)
        return p.ContactList(meta=p.ListMeta(count=total, current_page=page), payload=payload)

    async def show(self, actor: Actor, contact_id: int) -> p.ContactPayload:
        contact = await self.ctx.store.read(ops.account_contact, actor.account_id, contact_id)
        [shown] = await self._present([contact], True)
        return p.ContactPayload(payload=shown)

    async def create(self, actor: Actor, req: p.AgentContactRequest) -> p.ContactCreateResponse:
        changes = contact_changes(req)
        validation.length("source_id", req.source_id, validation.MAX_SOURCE_ID)
        created = await self.ctx.store.write_on_commit(
            self.ctx.emit_result, ops.create_contact, actor.account_id, changes, req.inbox_id,
            (req.source_id or "").strip() or None, self.ctx.now(),
        )  # fmt: skip
        [shown] = await self._present([created.contact], True)
        inbox = present.inbox_record(created.inbox) if created.inbox else None
        source_id = created.session.source_id if created.session else None
        return p.ContactCreateResponse(
            payload=p.CreatedContact(
                contact=shown, contact_inbox=p.CreatedContactInbox(inbox=inbox, source_id=source_id)
            )
        )

    async def update(
        self, actor: Actor, contact_id: int, req: p.AgentContactRequest
    ) -> p.ContactPayload:
        changes = contact_changes(req)
        contact, _ = await self.ctx.store.write_on_commit(
            lambda result: self.ctx.emitted(result[1]),
            ops.update_contact, actor.account_id, contact_id, changes, self.ctx.now(),
        )  # fmt: skip
        [shown] = await self._present([contact], True)
        return p.ContactPayload(payload=shown)

    async def add_inbox(
        self, actor: Actor, contact_id: int, req: p.ContactInboxesRequest
    ) -> p.ContactInboxEntry:
        if req.inbox_id is None:
            raise resource_not_found()
        await self.ctx.store.read(ops.account_contact, actor.account_id, contact_id)
        await self.ctx.store.read(get_inbox, actor.account_id, req.inbox_id)
        actor.require_inbox(req.inbox_id)
        validation.length("source_id", req.source_id, validation.MAX_SOURCE_ID)
        session, inbox = await self.ctx.store.write(
            ops.add_contact_inbox, actor.account_id, contact_id, req.inbox_id,
            (req.source_id or "").strip() or None, self.ctx.now(),
        )  # fmt: skip
        return p.ContactInboxEntry(
            source_id=session.source_id,
            inbox=p.ContactInboxInbox(
                id=inbox.inbox.id, channel_id=inbox.inbox.id, name=inbox.inbox.name
            ),
        )

    async def conversations(
        self, actor: Actor, contact_id: int, base_url: str
    ) -> p.ContactConversationList:
        """Only conversations in inboxes the caller sees (an agent's member inboxes)."""
        link = self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)
        found = await self.ctx.store.read(
            _contact_conversations, actor.account_id, contact_id, actor.inbox_ids,
            actor.user.id, link, self.ctx.now(),
        )  # fmt: skip
        return p.ContactConversationList(payload=found)
