"""Conversations on the agent API (reference agent §3.1-3.3): who may see and change which
conversation, parameter rules, and the store operations that do the work.

Every conversation route finds the conversation by display id first (404), then checks that
the caller may access its inbox (401), as Chatwoot's controllers do.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import anyio
from msgspec import UNSET

from client_sdk import protocol as p

from .. import inputs
from ..domain import agent_conversation_changes as changes
from ..domain import agent_conversations as ops
from ..domain import assignees, teams, validation
from ..domain.errors import NotFound
from ..domain.messages import NewAttachment
from ..errors import ApiError
from ..store import StoreUnavailable
from ..store.records import Conversation, Performer, Team, User, viewer_id
from ..store.sql import Op
from ..views import agent as agent_presenters
from ..views import agent_conversations as agent_views
from ..views import public as presenters
from .agent_auth import AGENT, Actor
from .agent_messages import count_created, new_message
from .context import Context

log = logging.getLogger("inboxgate")

STATUSES = ("open", "resolved", "pending", "snoozed")
SNOOZE_CHECK_SECONDS = 60.0
PRIORITIES = ("low", "medium", "high", "urgent")
# Times the presenters can show: up to the end of year 9999.
MAX_EPOCH = 253_402_300_799.0


def _listed(
    account_id: int,
    inbox_ids: tuple[int, ...],
    viewer: int,
    f: ops.ConversationFilter,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[p.ConversationList]:
    """One read: the page of conversations, then their views."""
    page = yield from ops.list_conversations(account_id, inbox_ids, viewer, f, now)
    views = yield from agent_views.render_conversations(page.conversations, viewer, link, now)
    return p.ConversationList(data=p.ConversationPage(meta=page.counts, payload=views))


def _created(
    new: ops.NewConversation,
    performer: Performer,
    per_minute_limit: int,
    link: presenters.LinkBuilder,
    now: float,
) -> Op[tuple[ops.AgentConversationResult, p.AgentConversation]]:
    """One transaction: the conversation opened (or found), then its view for the caller."""
    result = yield from ops.create(new, performer, per_minute_limit, link, now)
    view = yield from agent_views.render_conversation(
        result.conversation, viewer_id(performer), link, now
    )
    return result, view


def record_id(value: Any, what: str) -> int | None:
    """An id as Chatwoot's clients send it (number or numeric string); anything else finds
    nothing (Rails' ``find``), so it is a 404."""
    if value is None or value == "":
        return None
    number = inputs.parse_id(value)
    if number is None:
        raise NotFound(what)
    return number


def optional_id(value: Any) -> int | None:
    """Like :func:`record_id`, but an unusable id is simply no id."""
    try:
        return record_id(value, "record")
    except NotFound:
        return None


def _enum(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ApiError.error(422, f"'{value}' is not a valid {what}")
    return value


def epoch_seconds(value: Any) -> float | None:
    """``snoozed_until`` of toggle_status: epoch seconds (Chatwoot's ``strptime('%s')``)."""
    if value is None or value == "":
        return None
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and inputs.ascii_digits(value.strip()):
        seconds = float(value.strip())
    if seconds is None or not 0 <= seconds <= MAX_EPOCH:
        raise ApiError.error(422, "invalid date")
    return seconds


def timestamp(value: Any) -> float | None:
    """``snoozed_until`` of create: an ISO time (or epoch seconds)."""
    if isinstance(value, str) and value and not inputs.ascii_digits(value.strip()):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ApiError.error(422, "invalid date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)  # Rails reads a zoneless time as UTC
        return epoch_seconds(parsed.timestamp())
    return epoch_seconds(value)


def priority_value(value: str | None) -> str | None:
    if value is None or value.strip() in ("", "none"):
        return None
    return _enum(value.strip(), PRIORITIES, "priority")


def _text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() if value not in (None, "") else None


def conversation_filter(params: dict[str, Any]) -> ops.ConversationFilter:
    """List parameters (§3.1.1). Unknown values match nothing or fall back to the default, as
    Chatwoot's finder does; nothing here is an error but a non-numeric ``team_id``."""
    status = _text(params, "status") or "open"
    labels = params.get("labels") or []
    if isinstance(labels, str):
        labels = [labels]
    within = _text(params, "updated_within")
    return ops.ConversationFilter(
        status=None if status == "all" else status,
        assignee_type=_text(params, "assignee_type") or "all",
        inbox_id=optional_id(_text(params, "inbox_id")),
        team_id=record_id(_text(params, "team_id"), "team"),
        labels=[str(label) for label in labels if label not in (None, "")]
        if isinstance(labels, list)
        else [],
        q=_text(params, "q"),
        source_id=_text(params, "source_id"),
        conversation_type=_text(params, "conversation_type"),
        updated_within=float(within) if within and inputs.ascii_digits(within) else None,
        sort_by=_text(params, "sort_by") or "last_activity_at_desc",
        page=inputs.page_number(params.get("page")),
    )


def clean_labels(labels: list[str] | None) -> list[str]:
    cleaned = [label.strip() for label in labels or [] if label and label.strip()]
    for label in cleaned:
        validation.length("labels", label, validation.MAX_NAME)
    return list(dict.fromkeys(cleaned))


class AgentConversationService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def link(self, base_url: str) -> presenters.LinkBuilder:
        return self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)

    async def conversation(self, actor: Actor, display_id: int) -> Conversation:
        found = await self.ctx.store.read(ops.find_conversation, actor.account_id, display_id)
        actor.require_inbox(found.inbox_id)
        return found

    async def _team(self, actor: Actor, team_id: int | None) -> Team | None:
        if team_id is None:
            return None
        return await self.ctx.store.read(teams.get_team, actor.account_id, team_id)

    # -- reads -----------------------------------------------------------------------------

    async def list_conversations(
        self, actor: Actor, params: dict[str, Any], base_url: str
    ) -> p.ConversationList:
        f = conversation_filter(params)
        if f.team_id is not None and await self._team(actor, f.team_id) is None:
            raise NotFound("team")
        return await self.ctx.store.read(
            _listed, actor.account_id, actor.inbox_ids, actor.user.id, f, self.link(base_url),
            self.ctx.now(),
        )  # fmt: skip

    async def counts(self, actor: Actor, params: dict[str, Any]) -> p.ConversationCountsResponse:
        f = conversation_filter(params)
        if f.team_id is not None and await self._team(actor, f.team_id) is None:
            raise NotFound("team")
        counted = await self.ctx.store.read(
            ops.counts, actor.account_id, actor.inbox_ids, actor.user.id, f, self.ctx.now()
        )
        return p.ConversationCountsResponse(meta=counted)

    async def view(self, actor: Actor, conversation: Conversation, base_url: str) -> Any:
        return await self.ctx.store.read(
            agent_views.render_conversation, conversation, actor.user.id, self.link(base_url),
            self.ctx.now(),
        )  # fmt: skip

    async def show(self, actor: Actor, display_id: int, base_url: str) -> p.AgentConversation:
        conversation = await self.conversation(actor, display_id)
        view: p.AgentConversation = await self.view(actor, conversation, base_url)
        return view

    async def labels(self, actor: Actor, display_id: int) -> p.LabelsResponse:
        conversation = await self.conversation(actor, display_id)
        return p.LabelsResponse(payload=list(conversation.labels))

    # -- create ----------------------------------------------------------------------------

    async def create(
        self,
        actor: Actor,
        req: p.AgentConversationCreateRequest,
        base_url: str,
    ) -> p.AgentConversation:
        target = await self.ctx.store.read(
            ops.resolve_target, actor.account_id, record_id(req.inbox_id, "inbox"),
            record_id(req.contact_id, "contact"), req.source_id or None,
        )  # fmt: skip
        actor.require_inbox(target.inbox.id)
        status = _enum(req.status or "open", STATUSES, "status")
        validation.custom_attributes(req.custom_attributes)
        validation.attributes_size(req.additional_attributes, "additional_attributes")
        validation.length("source_id", req.source_id, validation.MAX_SOURCE_ID)
        assignee = optional_id(req.assignee_id)
        if (
            assignee is not None
            and (await self.ctx.store.read(assignees.account_user, actor.account_id, assignee))
            is None
        ):
            assignee = None  # only members of the account can be assignees
        team = await self._team(actor, optional_id(req.team_id))
        new = ops.NewConversation(
            target=target, source_id=req.source_id or None,
            hmac_verified=bool(req.hmac_verified), status=status, assignee_id=assignee,
            team_id=team.id if team else None, snoozed_until=timestamp(req.snoozed_until),
            custom_attributes=req.custom_attributes or {},
            additional_attributes=req.additional_attributes or {},
            message=new_message(req.message, []) if req.message is not None else None,
        )  # fmt: skip
        _, view = await self.ctx.store.write_on_commit(
            self.ctx.emit_first, _created, new, actor.performer,
            self.ctx.settings.messages_per_minute, self.link(base_url), self.ctx.now(),
        )  # fmt: skip
        if new.message is not None:
            count_created(actor.performer, new.message.message_type)
        return view

    # -- changes ---------------------------------------------------------------------------

    async def toggle_status(
        self, actor: Actor, display_id: int, req: p.ToggleStatusRequest, base_url: str
    ) -> p.ToggleStatusResponse:
        conversation = await self.conversation(actor, display_id)
        status = _enum(req.status, STATUSES, "status") if req.status else None
        result = await self.ctx.store.write_on_commit(
            self.ctx.emit_result, changes.toggle_status, conversation.id, status,
            epoch_seconds(req.snoozed_until), actor.performer, actor.role == AGENT,
            self.link(base_url), self.ctx.now(),
        )  # fmt: skip
        # A bot opening its pending conversation is Chatwoot's bot_handoff!: success is null.
        handoff = actor.bot is not None and conversation.status == "pending" and status == "open"
        return agent_presenters.toggle_status(result.conversation, None if handoff else True)

    async def set_priority(
        self, actor: Actor, display_id: int, priority: str | None, base_url: str
    ) -> None:
        conversation = await self.conversation(actor, display_id)
        value = priority_value(priority)
        await self.ctx.store.write_on_commit(
            self.ctx.emit_result, changes.set_priority, conversation.id, value, actor.performer,
            self.link(base_url), self.ctx.now(),
        )  # fmt: skip

    async def update(
        self, actor: Actor, display_id: int, req: p.ConversationUpdateRequest, base_url: str
    ) -> p.AgentConversation:
        if req.priority is not UNSET:
            await self.set_priority(actor, display_id, req.priority, base_url)
        return await self.show(actor, display_id, base_url)

    async def custom_attributes(
        self, actor: Actor, display_id: int, req: p.CustomAttributesRequest, base_url: str
    ) -> p.CustomAttributesResponse:
        conversation = await self.conversation(actor, display_id)
        attributes = req.custom_attributes or {}
        validation.custom_attributes(attributes)
        result = await self.ctx.store.write_on_commit(
            self.ctx.emit_result, changes.set_custom_attributes, conversation.id, attributes,
            self.link(base_url), self.ctx.now(),
        )  # fmt: skip
        return p.CustomAttributesResponse(custom_attributes=result.conversation.custom_attributes)

    async def update_last_seen(
        self, actor: Actor, display_id: int, base_url: str
    ) -> p.AgentConversation:
        conversation = await self.conversation(actor, display_id)
        updated = await self.ctx.store.write(
            changes.update_last_seen, conversation.id, actor.user, self.ctx.now()
        )
        view: p.AgentConversation = await self.view(actor, updated, base_url)
        return view

    async def assign(
        self, actor: Actor, display_id: int, req: p.AssignmentRequest, base_url: str
    ) -> p.Agent | p.TeamRecord | None:
        """§3.2: ``assignee_id`` (an unknown user unassigns) takes precedence over
        ``team_id`` (an unknown team clears it). Agent bots are not supported yet: an
        ``AgentBot`` assignment changes nothing and answers null, as an unknown bot does."""
        conversation = await self.conversation(actor, display_id)
        now, link = self.ctx.now(), self.link(base_url)
        if req.assignee_id is not UNSET:
            if req.assignee_type == "AgentBot":
                return None
            user: User | None = None
            role: str | None = None
            wanted = optional_id(req.assignee_id)
            if wanted is not None:
                found = await self.ctx.store.read(assignees.account_user, actor.account_id, wanted)
                if found is not None:
                    user, role = found
            await self.ctx.store.write_on_commit(
                self.ctx.emit_result, changes.assign_user, conversation.id, user, actor.performer,
                link, now,
            )  # fmt: skip
            if user is None or role is None:
                return None
            return presenters.agent(user, actor.account_id, role)
        if req.team_id is not UNSET:
            team = await self._team(actor, optional_id(req.team_id))
            await self.ctx.store.write_on_commit(
                self.ctx.emit_result, changes.assign_team, conversation.id, team, actor.performer,
                link, now,
            )  # fmt: skip
            return agent_presenters.team_record(team) if team else None
        return None

    async def set_labels(
        self, actor: Actor, display_id: int, req: p.LabelsRequest, base_url: str
    ) -> p.LabelsResponse:
        conversation = await self.conversation(actor, display_id)
        result = await self.ctx.store.write_on_commit(
            self.ctx.emit_result, changes.set_labels, conversation.id, clean_labels(req.labels),
            actor.performer, self.link(base_url), self.ctx.now(),
        )  # fmt: skip
        return p.LabelsResponse(payload=list(result.conversation.labels))

    async def delete(self, actor: Actor, display_id: int) -> None:
        """Administrators only (§3.1.11); done at once, with the conversation's files."""
        conversation = await self.conversation(actor, display_id)
        actor.require_administrator()
        keys = await self.ctx.store.write(changes.delete_conversation, conversation.id)
        await self.ctx.files.discard([
            NewAttachment(file_type="", extension=None, file_name="", content_type="",
                          file_size=0, storage_key=key)
            for key in keys
        ])  # fmt: skip

    async def reopen_snoozed(self) -> int:
        """Reopen the conversations whose snooze is over; returns how many events it sent."""
        events = await self.ctx.store.write_on_commit(
            self.ctx.emitted, changes.reopen_snoozed, self.link(""), self.ctx.now()
        )
        return len(events)


async def reopen_snoozed_forever(ctx: Context, every: float = SNOOZE_CHECK_SECONDS) -> None:
    """The lifespan task that wakes snoozed conversations."""
    service = AgentConversationService(ctx)
    while True:
        try:
            await service.reopen_snoozed()
        except StoreUnavailable:
            log.warning("snoozed conversations not checked: store unavailable")
        await anyio.sleep(every)
