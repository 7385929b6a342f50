"""Conversations and messages on the public API (§3.5-3.13)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from client_sdk import protocol as p

from .. import inputs, metrics
from ..attachments import Upload
from ..domain import conversations as conv_ops
from ..domain import (
    events,
    incoming,
    incoming_batch,
    incoming_reads,
    message_reads,
    notify,
    validation,
)
from ..domain import messages as msg_ops
from ..domain.errors import InvalidAttribute, NotFound
from ..store.records import Attachment, Contact, ContactInbox, Conversation, Inbox
from ..store.sql import Op, lazy_transaction, short_read
from ..views import conversations as conversation_views
from ..views import messages as message_views
from ..views import public as presenters
from ..views.public import LinkBuilder
from .contacts import ContactService
from .context import Context

MESSAGES_PAGE = 20


# A conversation shown with at most this many messages is read on the loop (a short read:
# a bounded handful of rows); a longer one is read again on a reader's snapshot.
SHORT_CONVERSATION = MESSAGES_PAGE


@short_read
def public_page(
    inbox_id: int,
    account_id: int,
    source_id: str,
    display_id: int,
    before: int | None,
    after: int | None,
    limit: int,
    link: LinkBuilder,
) -> Op[list[p.PublicMessage]]:
    """One page of :func:`visible_messages` of the conversation the session reaches,
    rendered (a bounded, indexed read)."""
    _session, contact, conversation = yield from conv_ops.reached(
        inbox_id, account_id, source_id, display_id
    )
    found = yield from message_reads.visible_messages(
        conversation.id, before=before, after=after, limit=limit
    )
    return (yield from message_views.render_public(found, display_id, link, contact))


@short_read
def _shown(
    inbox_id: int, account_id: int, source_id: str, display_id: int, link: LinkBuilder
) -> Op[p.PublicConversation | Conversation]:
    """The conversation the session reaches, rendered when it has at most
    :data:`SHORT_CONVERSATION` messages; else its record, to render on a snapshot."""
    _session, contact, conversation = yield from conv_ops.reached(
        inbox_id, account_id, source_id, display_id
    )
    view = yield from conversation_views.public_conversation_within(
        conversation, contact, link, SHORT_CONVERSATION
    )
    return conversation if view is None else view


def _listed(session: ContactInbox, link: LinkBuilder) -> Op[list[p.PublicConversation]]:
    views = []
    for conversation in (yield from conv_ops.session_conversations(session)):
        views.append((yield from conversation_views.public_conversation(conversation, link)))
    return views


def _rendered(
    op: Callable[..., Op[conv_ops.ConversationResult]], link: LinkBuilder, *args: Any
) -> Op[tuple[conv_ops.ConversationResult, p.PublicConversation]]:
    """One transaction: the domain operation ``op(*args)``, then the customer's view of the
    conversation it wrote."""
    result = yield from op(*args)
    return result, (yield from conversation_views.public_conversation(result.conversation, link))


def _check_message(req: p.MessageCreateRequest, uploads: Sequence[Upload], limit: int) -> None:
    validation.content(req.content)
    validation.length("echo_id", req.echo_id, validation.MAX_ECHO_ID)
    if not uploads and not (req.content or "").strip():
        raise InvalidAttribute("Content can't be blank", ["content"])  # see COMPATIBILITY.md
    if len(uploads) > limit:
        raise InvalidAttribute(f"Too many attachments (maximum is {limit})", ["attachments"])


def _reached_call(
    inbox_id: int, account_id: int, source_id: str, display_id: int, *args: Any
) -> incoming_batch.Incoming:
    reach = incoming_reads.Reach(inbox_id, account_id, source_id, display_id)
    return incoming_batch.Incoming(0, 0, *args)._replace(reach=reach)


# Batched as create_incoming is (its mark is not seen through this wrapper): in SQLite's
# writer, and in PostgreSQL's turn of the batch.
@incoming_batch.takes(_reached_call)
@lazy_transaction
def reached_incoming(
    inbox_id: int, account_id: int, source_id: str, display_id: int, *args: Any
) -> Op[msg_ops.MessageResult]:
    """:func:`incoming.create_incoming` (``args``: its arguments after the ids) into the
    conversation the session reaches, found by the same rule and with the same errors as
    :func:`conv_ops.reached_ids`, in the write's own transaction: a read before its single
    write, as a lazy transaction allows: the same statement as the message's own read, on
    both engines."""
    reach = incoming_reads.Reach(inbox_id, account_id, source_id, display_id)
    return (yield from incoming.create_incoming(0, 0, *args, reach=reach))


def submitted_values(req: p.MessageUpdateRequest) -> Any:
    """Validate and normalise ``submitted_values``; a CSAT rating is checked at once (1-5)."""
    if req.submitted_values is None:
        return None
    entries = (
        req.submitted_values if isinstance(req.submitted_values, list) else [req.submitted_values]
    )
    for entry in entries:
        answer = entry.csat_survey_response
        if answer is not None:
            answer.rating = validation.csat_rating(answer.rating)
            validation.length(
                "feedback_message", answer.feedback_message, validation.MAX_CSAT_FEEDBACK
            )
    values = msgspec.to_builtins(req.submitted_values)
    validation.attributes_size(values, "submitted_values")
    return values


class _Linker:
    """A link builder that remembers whether it built a link."""

    __slots__ = ("build", "used")

    def __init__(self, build: LinkBuilder) -> None:
        self.build = build
        self.used = False

    def __call__(self, attachment: Attachment) -> str:
        self.used = True
        return self.build(attachment)


class ConversationService:
    def __init__(self, ctx: Context, contacts: ContactService) -> None:
        self.ctx = ctx
        self.contacts = contacts

    def _link(self, base_url: str) -> Any:
        return self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)

    async def _member(
        self, inbox_identifier: str, source_id: str, display_id: int
    ) -> tuple[Inbox, ContactInbox, Contact, Conversation]:
        """Every conversation route resolves through the session: what it proved is what it
        reaches (its own conversations, or its verified contact's), never more. One short
        read: the session, its contact and the conversation."""
        inbox = await self.ctx.inbox(inbox_identifier)
        session, contact, conversation = await self.ctx.store.read(
            conv_ops.reached, inbox.id, inbox.account_id, source_id, display_id
        )
        return inbox, session, contact, conversation

    async def _ids(self, inbox_identifier: str, source_id: str, display_id: int) -> conv_ops.Ids:
        """:meth:`_member` for a route that writes: the ids only (its write reads what it
        needs in its own transaction)."""
        inbox = await self.ctx.inbox(inbox_identifier)
        return await self.ctx.store.read(
            conv_ops.reached_ids, inbox.id, inbox.account_id, source_id, display_id
        )

    # -- conversations -------------------------------------------------------------------

    async def list_conversations(
        self, inbox_identifier: str, source_id: str, base_url: str
    ) -> list[p.PublicConversation]:
        _inbox, session, _contact = await self.contacts.session(inbox_identifier, source_id)
        return await self.ctx.store.read(_listed, session, self._link(base_url))

    async def create(
        self, inbox_identifier: str, source_id: str, req: p.ConversationCreateRequest, base_url: str
    ) -> p.PublicConversation:
        inbox, session, _contact = await self.contacts.session(inbox_identifier, source_id)
        validation.custom_attributes(req.custom_attributes)
        _, view = await self.ctx.store.write_on_commit(
            self.ctx.emit_first, _rendered, conv_ops.create, self._link(base_url), inbox,
            session, req.custom_attributes or {}, self._link(base_url), self.ctx.now(),
        )  # fmt: skip
        return view

    async def show(
        self,
        inbox_identifier: str,
        source_id: str,
        conversation_id: str,
        base_url: Callable[[], str],
    ) -> p.PublicConversation | msgspec.Raw:
        """The conversation (``conversation_id`` as the path gives it), encoded once and then
        answered from the view cache until the next commit.

        The cache is keyed by the path's own values, so a hit costs neither the inbox lookup
        nor parsing the id: a key is only ever kept for values that found the conversation,
        and the commit that would change their answer (an inbox or a conversation gone, a
        session re-proved) empties the cache. A view with an attachment is never held (its
        links are signed with the time they were made, and expire); every other view holds no
        link, so it is the same whatever base URL the request came by (``base_url`` is called
        only on a miss)."""
        key = ("conversation", inbox_identifier, source_id, conversation_id)
        version, held = self.contacts.views.lookup(key)
        if held is not None:
            return held  # type: ignore[no-any-return]
        display_id = inputs.parse_id(conversation_id)
        if display_id is None:
            raise NotFound("conversation")  # as every route's id (``http.int_param``)
        inbox = await self.ctx.inbox(inbox_identifier)
        link = _Linker(self._link(base_url()))
        found = await self.ctx.store.read(
            _shown, inbox.id, inbox.account_id, source_id, display_id, link
        )
        if isinstance(found, Conversation):
            return await self.ctx.store.read(conversation_views.public_conversation, found, link)
        if link.used:
            return found
        encoded = msgspec.Raw(p.encode(found))
        self.contacts.views.keep(version, key, encoded, len(encoded))
        return encoded

    async def resolve(
        self, inbox_identifier: str, source_id: str, display_id: int, base_url: str
    ) -> p.PublicConversation:
        conversation_id = (await self._ids(inbox_identifier, source_id, display_id)).conversation_id
        _, view = await self.ctx.store.write_on_commit(
            self.ctx.emit_first, _rendered, conv_ops.resolve, self._link(base_url),
            conversation_id, self._link(base_url), self.ctx.now(),
        )  # fmt: skip
        return view

    async def toggle_typing(
        self,
        inbox_identifier: str,
        source_id: str,
        display_id: int,
        status: str | None,
        base_url: str,
    ) -> bool:
        """Relay the contact's typing to the agents (never to the contact's own sessions), as
        ephemeral events; returns whether the status was a valid one (Chatwoot ignores others)."""
        _inbox, _session, contact, conversation = await self._member(
            inbox_identifier, source_id, display_id
        )
        if status not in ("on", "off"):
            return False
        if self.ctx.typing is None:
            return True
        data = await self.ctx.store.read(
            notify.conversation_data, conversation, self._link(base_url)
        )
        data.account_id = msgspec.UNSET  # the typing payload's conversation has none (§6.6)
        user = presenters.contact_sender(contact)

        def payload(name: str) -> bytes:
            typing = p.TypingEventData(
                conversation=data, user=user, is_private=False, account_id=conversation.account_id
            )
            return p.encode(p.Event(event=name, data=typing))

        await self.ctx.typing(
            ("contact", conversation.id, contact.id),
            status == "on",
            [events.inbox_stream(conversation.inbox_id)],
            payload("conversation.typing_on"),
            payload("conversation.typing_off"),
        )
        return True

    async def update_last_seen(
        self, inbox_identifier: str, source_id: str, display_id: int, base_url: str
    ) -> None:
        conversation_id = (await self._ids(inbox_identifier, source_id, display_id)).conversation_id
        await self.ctx.store.write_on_commit(
            self.ctx.emitted, conv_ops.update_last_seen, conversation_id, self._link(base_url),
            self.ctx.now(),
        )  # fmt: skip

    # -- messages ------------------------------------------------------------------------

    async def messages(
        self,
        inbox_identifier: str,
        source_id: str,
        display_id: int,
        before: int | None,
        after: int | None,
        base_url: str,
    ) -> list[p.PublicMessage] | msgspec.Raw:
        """A page of messages, encoded once and then answered from the view cache until the
        next commit, as :meth:`show` (and, as there, never a page with an attachment)."""
        key = ("messages", inbox_identifier, source_id, display_id, before, after)
        version, held = self.contacts.views.lookup(key)
        if held is not None:
            return held  # type: ignore[no-any-return]
        inbox = await self.ctx.inbox(inbox_identifier)
        link = _Linker(self._link(base_url))
        page = await self.ctx.store.read(
            public_page, inbox.id, inbox.account_id, source_id, display_id, before, after,
            MESSAGES_PAGE, link,
        )  # fmt: skip
        if link.used:
            return page
        encoded = msgspec.Raw(p.encode(page))
        self.contacts.views.keep(version, key, encoded, len(encoded))
        return encoded

    async def send(
        self,
        inbox_identifier: str,
        source_id: str,
        display_id: int,
        req: p.MessageCreateRequest,
        uploads: Sequence[Upload],
        base_url: str,
    ) -> p.PublicMessage:
        limit = self.ctx.settings.max_attachments
        try:
            _check_message(req, uploads, limit)
        except Exception:
            # What the session reaches is checked first: one that reaches nothing hears 404.
            await self._ids(inbox_identifier, source_id, display_id)
            raise
        link = self._link(base_url)
        if not uploads:
            # The session's reach is checked in the write itself: no read on the loop first
            # (a read there hands the GIL to the writer and waits to get it back).
            inbox = await self.ctx.inbox(inbox_identifier)
            result = await self.ctx.store.write_on_commit(
                self.ctx.emit_result, reached_incoming, inbox.id, inbox.account_id, source_id,
                display_id, req.content, (req.echo_id or None), [],
                self.ctx.settings.messages_per_minute, link, self.ctx.now(),
            )  # fmt: skip
            if result.created:
                metrics.message_created("public")
            return result.view
        contact_id, conversation_id = await self._ids(inbox_identifier, source_id, display_id)
        saved: list[msg_ops.NewAttachment] = []
        try:
            for upload in uploads:
                saved.append(
                    await self.ctx.files.save(
                        upload.file, upload.filename or "file", upload.content_type or ""
                    )
                )
            result = await self.ctx.store.write_on_commit(
                self.ctx.emit_result, incoming.create_incoming, conversation_id, contact_id,
                req.content, (req.echo_id or None), saved, self.ctx.settings.messages_per_minute,
                link, self.ctx.now(),
            )  # fmt: skip
        except BaseException:
            await self.ctx.files.discard(saved)
            raise
        if result.created:
            metrics.message_created("public")
        else:
            await self.ctx.files.discard(
                saved
            )  # a retried send: the original already has its files
        return result.view

    async def update_message(
        self,
        inbox_identifier: str,
        source_id: str,
        display_id: int,
        message_id: int,
        req: p.MessageUpdateRequest,
        base_url: str,
    ) -> p.PublicMessage:
        conversation_id = (await self._ids(inbox_identifier, source_id, display_id)).conversation_id
        values = submitted_values(req)
        link = self._link(base_url)
        result = await self.ctx.store.write_on_commit(
            self.ctx.emit_result, msg_ops.update_submitted_values, conversation_id, message_id,
            values, self.ctx.settings.csat_lock_days, link, self.ctx.now(),
        )  # fmt: skip
        return result.view
