"""Contacts on the public API (§3.2-3.4, §4): sessions and HMAC identity, under the trust
model of ``domain.contacts``."""

from __future__ import annotations

import msgspec

from client_sdk import protocol as p

from .. import identity
from ..domain import agent_admin, validation
from ..domain import contacts as ops
from ..domain.errors import NotFound
from ..store.records import Contact, ContactInbox, Inbox
from ..views import public as presenters
from .context import Context
from .view_cache import ViewCache


def _fields(
    req: p.ContactCreateRequest | p.ContactUpdateRequest, with_identifier: bool
) -> ops.ContactFields:
    validation.length("name", req.name, validation.MAX_NAME)
    validation.email(req.email)
    validation.phone_number(req.phone_number)
    validation.custom_attributes(req.custom_attributes)
    if with_identifier:
        validation.length("identifier", req.identifier, validation.MAX_NAME)
    return ops.ContactFields(
        name=(req.name or "").strip() or None,
        email=(req.email or "").strip() or None,
        phone_number=(req.phone_number or "").strip() or None,
        identifier=(req.identifier or "").strip() or None if with_identifier else None,
        custom_attributes=req.custom_attributes,
    )


def proved_identifier(
    inbox: Inbox, identifier: str | None, identifier_hash: str | None
) -> str | None:
    """The identifier this request proved with its HMAC, None when it proved none (a blank
    identifier proves nobody). Raises HmacFailed for a wrong or, where mandatory, missing
    hash."""
    verified = identity.verify(
        inbox.hmac_token, identifier, identifier_hash, mandatory=inbox.hmac_mandatory
    )
    claimed = (identifier or "").strip()
    return claimed if verified and claimed and claimed == identifier else None


# Inbox public views held at the most (a bound, not a tuning knob: one per inbox served).
MAX_INBOX_VIEWS = 10_000


class ContactService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._inbox_views: dict[str, tuple[Inbox, p.PublicInbox]] = {}
        # Sessions and conversation views, while the database is unchanged (shared with the
        # ConversationService).
        self.views = ViewCache(ctx.store)

    async def inbox(self, inbox_identifier: str) -> p.PublicInbox:
        """The inbox as its widget sees it (§3.1), with its channel attributes.

        The view is kept while the context hands out the same inbox record: an update through
        this process replaces the record at once, one by another process within the context's
        cache time, as for every other inbox setting (``Context.inbox``)."""
        inbox = await self.ctx.inbox(inbox_identifier)
        held = self._inbox_views.get(inbox_identifier)
        if held is not None and held[0] is inbox:
            return held[1]
        admin = await self.ctx.store.read(agent_admin.get_inbox, inbox.account_id, inbox.id)
        view = presenters.public_inbox(inbox, admin.settings.channel_attributes)
        if len(self._inbox_views) >= MAX_INBOX_VIEWS:
            self._inbox_views.clear()
        self._inbox_views[inbox_identifier] = (inbox, view)
        return view

    async def session(
        self, inbox_identifier: str, source_id: str
    ) -> tuple[Inbox, ContactInbox, Contact]:
        """Resolve the lookup chain inbox → contact session (404 at the first miss)."""
        inbox = await self.ctx.inbox(inbox_identifier)
        key = ("session", inbox.id, source_id)
        version, found = self.views.lookup(key)
        if found is None:
            found = await self.ctx.store.read(ops.get_session, inbox.id, source_id)
            if found is None:
                raise NotFound("contact")
            self.views.keep(version, key, found)
        return inbox, found[0], found[1]

    async def create(self, inbox_identifier: str, req: p.ContactCreateRequest) -> p.PublicContact:
        inbox = await self.ctx.inbox(inbox_identifier)
        proved = proved_identifier(inbox, req.identifier, req.identifier_hash)
        validation.length("source_id", req.source_id, validation.MAX_SOURCE_ID)
        fields = _fields(req, with_identifier=True)
        session, contact, _created = await self.ctx.store.write(
            ops.create_session, inbox.id, inbox.account_id, (req.source_id or "").strip() or None,
            fields, proved, self.ctx.now(),
        )  # fmt: skip
        return presenters.public_contact(session, contact)

    async def show(
        self,
        inbox_identifier: str,
        source_id: str,
        identifier: str | None,
        identifier_hash: str | None,
    ) -> p.PublicContact | msgspec.Raw:
        """The contact as its widget sees it. Asked with nothing to prove (a widget's poll),
        encoded once and then answered from the view cache until the next commit, as the
        conversation is: keyed by the path's values, kept only for values that found the
        contact; the commit that would change the answer (the contact or its session
        changed, the inbox gone) empties the cache."""
        key = ("contact", inbox_identifier, source_id)
        version: object | None = None
        if identifier is None and identifier_hash is None:
            version, held = self.views.lookup(key)
            if held is not None:
                return held  # type: ignore[no-any-return]
        inbox, session, contact = await self.session(inbox_identifier, source_id)
        proved = proved_identifier(inbox, identifier, identifier_hash)
        if proved is not None and not (session.hmac_verified and contact.identifier == proved):
            session, contact = await self.ctx.store.write(
                ops.prove, session.id, proved, self.ctx.now()
            )
        view = presenters.public_contact(session, contact)
        if version is None:
            return view
        encoded = msgspec.Raw(p.encode(view))
        self.views.keep(version, key, encoded, len(encoded))
        return encoded

    async def update(
        self, inbox_identifier: str, source_id: str, req: p.ContactUpdateRequest
    ) -> p.Contact:
        inbox, session, _contact = await self.session(inbox_identifier, source_id)
        proved = proved_identifier(inbox, req.identifier, req.identifier_hash)
        fields = _fields(req, with_identifier=False)
        contact = await self.ctx.store.write(
            ops.update_contact, session.id, fields, proved, self.ctx.now()
        )
        return presenters.contact_record(contact)
