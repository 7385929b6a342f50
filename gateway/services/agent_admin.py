"""Inboxes, inbox members and agents on the agent API (reference agent §3.6, §3.9). Reading is
for members (an agent sees its member inboxes); changing is for administrators (§1.4)."""

from __future__ import annotations

import secrets
import zoneinfo
from functools import cache
from typing import Any, Literal

import msgspec
from msgspec import UNSET

from client_sdk import protocol as p

from .. import inputs
from ..domain import agent_admin as ops
from ..domain import validation
from ..domain.errors import InvalidAttribute
from ..domain.models import AdminInbox
from ..domain.provisioning import NewInbox
from ..errors import ApiError, param_missing, resource_not_found
from ..store.records import DEFAULT_WORKING_HOURS
from ..views import admin as present
from ..webhooks import guard
from .agent_auth import ADMINISTRATOR, AGENT, Actor
from .context import Context

ROLES = (AGENT, ADMINISTRATOR)
AVAILABILITIES = ("online", "busy", "offline")
CHANNEL_TYPES = ("web_widget", "api", "email", "line", "telegram", "whatsapp", "sms")
CSAT_DEFAULTS: dict[str, Any] = {
    "display_type": "emoji",
    "message": "",
    "button_text": "Please rate us",
    "language": "en",
    "survey_rules": {"operator": "contains", "values": []},
}
# Request fields stored as they are, in the column of the same name.
_PLAIN = (
    "greeting_enabled", "greeting_message", "enable_email_collect", "csat_survey_enabled",
    "enable_auto_assignment", "working_hours_enabled", "out_of_office_message",
    "allow_messages_after_resolved", "lock_to_single_conversation", "business_name",
)  # fmt: skip


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def invalid_enum(value: object, name: str) -> ApiError:
    """Rails raises on an unknown enum value (a 500); the gateway says which (§1.2)."""
    return ApiError.error(422, f"'{value}' is not a valid {name}")


def _url(value: str | None, attribute: str) -> str | None:
    value = (value or "").strip() or None
    if value is None:
        return None
    label = attribute.replace("_", " ").capitalize()
    try:
        guard.parse(value)
    except guard.UrlRefused:
        raise InvalidAttribute(f"{label} is invalid", [attribute]) from None
    return value


def _csat_config(config: dict[str, Any], normalise: bool) -> dict[str, Any]:
    """Chatwoot stores the config as sent on create and fills the defaults on update."""
    if normalise:
        config = {**CSAT_DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    display = config.get("display_type")
    if display is not None and display not in ("emoji", "star"):
        raise InvalidAttribute("Csat config display_type must be emoji or star", ["csat_config"])
    return config


def _working_hours(
    current: list[dict[str, Any]], given: list[p.WorkingHour]
) -> list[dict[str, Any]]:
    """Days are replaced by ``day_of_week``; days not given keep their hours."""
    days = {int(day["day_of_week"]): dict(day) for day in current}
    for hours in given:
        day = msgspec.to_builtins(hours)
        ok = 0 <= hours.day_of_week <= 6 and all(
            value is None or 0 <= value <= limit
            for value, limit in (
                (hours.open_hour, 23), (hours.close_hour, 24),
                (hours.open_minutes, 59), (hours.close_minutes, 59),
            )
        )  # fmt: skip
        if not ok:
            raise InvalidAttribute("Working hours are invalid", ["working_hours"])
        days[hours.day_of_week] = day
    return [days[d] for d in sorted(days)]


def inbox_columns(
    req: p.InboxRequest, current: AdminInbox | None
) -> tuple[str | None, dict[str, Any]]:
    """The request as ``(name, columns)``; ``current`` None on create."""
    columns: dict[str, Any] = {}
    name = None
    if req.name is not UNSET or current is None:
        name = (req.name or "").strip() if isinstance(req.name, str) else ""
        if not name:
            raise InvalidAttribute("Name can't be blank", ["name"])
        validation.length("name", name, validation.MAX_NAME)
        columns["name"] = name
    for field in _PLAIN:
        value = getattr(req, field)
        if value is not UNSET and (value is not None or field.endswith(("message", "name"))):
            columns[field] = value
    if req.timezone is not UNSET and req.timezone is not None:
        if req.timezone not in _timezones():
            raise InvalidAttribute("Timezone is not included in the list", ["timezone"])
        columns["timezone"] = req.timezone
    if req.sender_name_type is not UNSET and req.sender_name_type is not None:
        if req.sender_name_type not in ("friendly", "professional"):
            raise invalid_enum(req.sender_name_type, "sender_name_type")
        columns["sender_name_type"] = req.sender_name_type
    if req.csat_config is not UNSET and req.csat_config is not None:
        config = _csat_config(req.csat_config, normalise=current is not None)
        columns["csat_config"] = ops.json_column(config)
        columns["csat_display_type"] = config.get("display_type") or "emoji"
        columns["csat_message"] = config.get("message") or None
    if req.working_hours is not UNSET and req.working_hours is not None:
        base = current.inbox.working_hours if current else DEFAULT_WORKING_HOURS
        columns["working_hours"] = ops.json_column(_working_hours(base, req.working_hours))
    channel = req.channel
    if channel is not None:
        if channel.webhook_url is not UNSET:
            columns["webhook_url"] = _url(channel.webhook_url, "webhook_url")
        if channel.hmac_mandatory is not UNSET:
            columns["hmac_mandatory"] = bool(channel.hmac_mandatory)
        if channel.additional_attributes is not UNSET:
            attributes = channel.additional_attributes or {}
            columns["channel_attributes"] = ops.json_column(attributes)
            columns["reply_time_window_hours"] = _reply_window(attributes)
    return name, columns


def _reply_window(attributes: dict[str, Any]) -> int | None:
    raw = attributes.get("agent_reply_time_window")
    if raw in (None, ""):
        return None
    # ASCII digits within 64 bits, as every number (``int()`` takes "1_0" and 10**30 alike)
    hours = inputs.parse_id(raw) or 0
    if hours <= 0:
        raise InvalidAttribute(
            "Additional attributes agent_reply_time_window must be greater than 0",
            ["additional_attributes"],
        )
    return hours


def _availability(req: p.AgentRequest) -> str | None:
    value = req.availability or req.availability_status
    if value is None:
        return None
    value = "online" if value == "available" else value  # seed 003's name for "online"
    if value not in AVAILABILITIES:
        raise invalid_enum(value, "availability")
    return value


def _role(value: str | None) -> str | None:
    if value is not None and value not in ROLES:
        raise invalid_enum(value, "role")
    return value


class InboxAdminService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def _reachable(self, columns: dict[str, Any]) -> None:
        """The inbox's webhook_url gets the events, so it passes the webhooks' address guard
        (no loopback or private networks unless the setting allows them)."""
        url = columns.get("webhook_url")
        if not url:
            return
        try:
            await guard.check(url, allow_private=self.ctx.settings.webhook_allow_private)
        except guard.UrlUnresolvable:
            pass  # no address yet: every delivery checks again
        except guard.UrlRefused as exc:
            raise InvalidAttribute(f"Webhook url is not allowed: {exc}", ["webhook_url"]) from None

    async def _visible(self, actor: Actor, inbox_id: int) -> AdminInbox:
        """404 for another account's inbox, then 401 for an agent who is not a member."""
        found = await self.ctx.store.read(ops.get_inbox, actor.account_id, inbox_id)
        actor.require_inbox(inbox_id)
        return found

    async def list_inboxes(self, actor: Actor) -> p.InboxList:
        found = await self.ctx.store.read(ops.list_inboxes, actor.account_id, actor.inbox_ids)
        return p.InboxList(payload=[present.inbox(i, actor.administrator) for i in found])

    async def show(self, actor: Actor, inbox_id: int) -> p.AgentInbox:
        return present.inbox(await self._visible(actor, inbox_id), actor.administrator)

    async def create(self, actor: Actor, req: p.InboxRequest) -> p.AgentInbox:
        actor.require_administrator()
        if req.channel is None:
            raise param_missing("channel")
        kind = (req.channel.type or "").strip()
        if kind not in CHANNEL_TYPES:
            raise InvalidAttribute("Channel must exist", ["channel"])
        if kind != "api":
            raise InvalidAttribute(
                f"Channel type {kind} is not supported: inboxgate has API inboxes only",
                ["channel"],
            )
        name, columns = inbox_columns(req, None)
        columns.pop("name", None)
        await self._reachable(columns)
        new = NewInbox(account_id=actor.account_id, name=name or "")
        created = await self.ctx.store.write(ops.create_admin_inbox, new, columns, self.ctx.now())
        return present.inbox(created, administrator=True)

    async def update(self, actor: Actor, inbox_id: int, req: p.InboxRequest) -> p.AgentInbox:
        current = await self.ctx.store.read(ops.get_inbox, actor.account_id, inbox_id)
        actor.require_administrator()
        _name, columns = inbox_columns(req, current)
        await self._reachable(columns)
        updated = await self.ctx.store.write(
            ops.update_inbox, actor.account_id, inbox_id, columns, self.ctx.now()
        )
        self.ctx.invalidate_inbox(updated.inbox.identifier)
        return present.inbox(updated, administrator=True)

    # -- members -----------------------------------------------------------------------------

    async def members(self, actor: Actor, inbox_id: int) -> p.AgentList:
        await self._visible(actor, inbox_id)
        found = await self.ctx.store.read(ops.inbox_members, actor.account_id, inbox_id)
        return p.AgentList(payload=[present.agent(m, actor.account_id) for m in found])

    async def change_members(
        self,
        actor: Actor,
        req: p.InboxMembersRequest,
        mode: Literal["add", "replace", "remove"],
    ) -> p.AgentList:
        if req.inbox_id is None:
            raise resource_not_found()
        await self.ctx.store.read(ops.get_inbox, actor.account_id, req.inbox_id)
        actor.require_administrator()
        if req.user_ids is None:
            raise param_missing("user_ids")
        found = await self.ctx.store.write(
            ops.change_inbox_members, actor.account_id, req.inbox_id, req.user_ids, mode,
            self.ctx.now(),
        )  # fmt: skip
        return p.AgentList(payload=[present.agent(m, actor.account_id) for m in found])


class AgentAdminService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def list_agents(self, actor: Actor) -> list[p.Agent]:
        found = await self.ctx.store.read(ops.list_agents, actor.account_id)
        return [present.agent(m, actor.account_id) for m in found]

    async def create(self, actor: Actor, req: p.AgentRequest) -> p.CreatedAgent:
        actor.require_administrator()
        email = (req.email or "").strip().lower()
        if not email:
            raise InvalidAttribute("Email can't be blank", ["email"])
        validation.email(email)
        name = (req.name or "").strip()
        validation.length("name", name, validation.MAX_NAME)
        role = _role(req.role) or AGENT
        availability = _availability(req) or "online"
        token = secrets.token_urlsafe(24)
        member, created = await self.ctx.store.write(
            ops.create_agent, actor.account_id, name or email.partition("@")[0], email, role,
            availability, True if req.auto_offline is None else req.auto_offline, token,
            self.ctx.now(),
        )  # fmt: skip
        return present.created_agent(member, actor.account_id, token if created else None)

    async def update(self, actor: Actor, user_id: int, req: p.AgentRequest) -> p.Agent:
        actor.require_administrator()  # before the lookup, as Chatwoot's AgentsController
        name = (req.name or "").strip() or None
        validation.length("name", name, validation.MAX_NAME)
        member = await self.ctx.store.write(
            ops.update_agent, actor.account_id, user_id, name, _role(req.role),
            _availability(req), req.auto_offline, self.ctx.now(),
        )  # fmt: skip
        return present.agent(member, actor.account_id)

    async def delete(self, actor: Actor, user_id: int) -> None:
        actor.require_administrator()
        await self.ctx.store.write(ops.remove_agent, actor.account_id, user_id, self.ctx.now())
