"""Agent API routes for contacts, inboxes, inbox members and agents (reference agent §3.5,
§3.6, §3.9). Handlers only move bytes: parameters in, a service call, the shape out."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..errors import param_missing
from ..http import Params, empty_response, int_param, json_response, read_params
from ..inputs import page_number
from ..services.agent_admin import AgentAdminService, InboxAdminService
from ..services.agent_auth import Actor
from ..services.agent_contacts import ContactAdminService
from ..services.context import Context
from .agent_routing import account_route

S = TypeVar("S")
UPDATE = ["PATCH", "PUT"]
AGENT_KEYS = ("name", "email", "role", "availability", "availability_status", "auto_offline")


def unwrap(values: dict[str, Any], key: str) -> dict[str, Any]:
    """Rails' ``wrap_parameters`` in reverse: ``{"agent": {...}}`` (what form bodies must send)
    and top-level keys (what JSON bodies may send) read the same."""
    nested = values.get(key)
    return {**values, **nested} if isinstance(nested, dict) else values


def nulls(value: Any) -> Any:
    """Chatwoot's inbox controller reads the string ``"null"`` as null."""
    if isinstance(value, dict):
        return {k: nulls(v) for k, v in value.items()}
    return None if value == "null" else value


def page_of(params: Params) -> int:
    return page_number(params.values.get("page"))


def include_inboxes(params: Params) -> bool:
    """``include_contact_inboxes``: on unless given as anything but ``true`` (as Chatwoot)."""
    raw = params.values.get("include_contact_inboxes")
    return raw is None or raw == "" or str(raw).strip().lower() == "true"


class AgentAdminApi:
    """The agent API's contact, inbox, inbox member and agent handlers (§3.5, §3.6, §3.9)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.contacts = ContactAdminService(self.ctx)
        self.inboxes = InboxAdminService(self.ctx)
        self.agents = AgentAdminService(self.ctx)
        self.settings = self.ctx.settings

    async def params(self, request: Request) -> Params:
        return await read_params(request, max_json=self.settings.max_json_bytes, max_files=0)

    async def body(self, request: Request, struct: type[S], key: str | None = None) -> S:
        got = await self.params(request)
        if key is not None:
            got = Params(unwrap(got.values, key), got.files)
        return got.to(struct)

    def path_id(self, request: Request, name: str) -> int:
        return int_param(request.path_params[name], name)

    def base_url(self, request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # -- self.contacts ---------------------------------------------------------------------------

    async def list_contacts(self, request: Request, actor: Actor) -> Response:
        got = await self.params(request)
        sort = got.values.get("sort")
        found = await self.contacts.list_contacts(
            actor, page_of(got), str(sort) if sort else None,
            include_inboxes(got),
        )  # fmt: skip
        return json_response(found)

    async def search_contacts(self, request: Request, actor: Actor) -> Response:
        got = await self.params(request)
        query, sort = got.values.get("q"), got.values.get("sort")
        found = await self.contacts.search(
            actor, str(query) if query is not None else None, page_of(got),
            str(sort) if sort else None, include_inboxes(got),
        )  # fmt: skip
        return json_response(found)

    async def create_contact(self, request: Request, actor: Actor) -> Response:
        req = await self.body(request, p.AgentContactRequest, "contact")
        return json_response(await self.contacts.create(actor, req))

    async def show_contact(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.contacts.show(actor, self.path_id(request, "contact_id")))

    async def update_contact(self, request: Request, actor: Actor) -> Response:
        contact_id = self.path_id(request, "contact_id")
        req = await self.body(request, p.AgentContactRequest, "contact")
        return json_response(await self.contacts.update(actor, contact_id, req))

    async def contact_conversations(self, request: Request, actor: Actor) -> Response:
        contact_id = self.path_id(request, "contact_id")
        return json_response(
            await self.contacts.conversations(actor, contact_id, self.base_url(request))
        )

    async def create_contact_inbox(self, request: Request, actor: Actor) -> Response:
        contact_id = self.path_id(request, "contact_id")
        req = await self.body(request, p.ContactInboxesRequest)
        return json_response(await self.contacts.add_inbox(actor, contact_id, req))

    # -- self.inboxes ----------------------------------------------------------------------------

    async def inbox_request(self, request: Request) -> p.InboxRequest:
        got = await self.params(request)
        return Params(nulls(unwrap(got.values, "inbox")), []).to(p.InboxRequest)

    async def list_inboxes(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.inboxes.list_inboxes(actor))

    async def show_inbox(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.inboxes.show(actor, self.path_id(request, "inbox_id")))

    async def create_inbox(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.inboxes.create(actor, await self.inbox_request(request)))

    async def update_inbox(self, request: Request, actor: Actor) -> Response:
        inbox_id = self.path_id(request, "inbox_id")
        return json_response(
            await self.inboxes.update(actor, inbox_id, await self.inbox_request(request))
        )

    async def inbox_members(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.inboxes.members(actor, self.path_id(request, "inbox_id")))

    def change_members(self, mode: Literal["add", "replace", "remove"]) -> Any:
        async def handler(request: Request, actor: Actor) -> Response:
            req = await self.body(request, p.InboxMembersRequest, "inbox_member")
            found = await self.inboxes.change_members(actor, req, mode)
            return empty_response() if mode == "remove" else json_response(found)

        return handler

    # -- self.agents -----------------------------------------------------------------------------

    async def agent_request(self, request: Request) -> p.AgentRequest:
        got = await self.params(request)
        values = unwrap(got.values, "agent")
        if not any(values.get(key) is not None for key in AGENT_KEYS):
            raise param_missing("agent")
        return Params(values, []).to(p.AgentRequest)

    async def list_agents(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.agents.list_agents(actor))

    async def create_agent(self, request: Request, actor: Actor) -> Response:
        actor.require_administrator()  # Chatwoot authorizes before it reads the self.body
        return json_response(await self.agents.create(actor, await self.agent_request(request)))

    async def update_agent(self, request: Request, actor: Actor) -> Response:
        user_id = self.path_id(request, "user_id")
        return json_response(
            await self.agents.update(actor, user_id, await self.agent_request(request))
        )

    async def delete_agent(self, request: Request, actor: Actor) -> Response:
        await self.agents.delete(actor, self.path_id(request, "user_id"))
        return empty_response()

    def routes(self) -> list[Route]:
        contact = "/contacts/{contact_id}"
        inbox = "/inboxes/{inbox_id}"
        return [
            account_route(self.ctx, "/contacts", self.list_contacts, ["GET"]),
            account_route(self.ctx, "/contacts", self.create_contact, ["POST"]),
            account_route(self.ctx, "/contacts/search", self.search_contacts, ["GET"]),
            account_route(self.ctx, contact, self.show_contact, ["GET"]),
            account_route(self.ctx, contact, self.update_contact, UPDATE),
            account_route(
                self.ctx, contact + "/conversations", self.contact_conversations, ["GET"]
            ),
            account_route(
                self.ctx, contact + "/contact_inboxes", self.create_contact_inbox, ["POST"]
            ),
            account_route(self.ctx, "/inboxes", self.list_inboxes, ["GET"]),
            account_route(self.ctx, "/inboxes", self.create_inbox, ["POST"]),
            account_route(self.ctx, inbox, self.show_inbox, ["GET"]),
            account_route(self.ctx, inbox, self.update_inbox, UPDATE),
            account_route(self.ctx, "/inbox_members/{inbox_id}", self.inbox_members, ["GET"]),
            account_route(self.ctx, "/inbox_members", self.change_members("add"), ["POST"]),
            account_route(self.ctx, "/inbox_members", self.change_members("replace"), UPDATE),
            account_route(self.ctx, "/inbox_members", self.change_members("remove"), ["DELETE"]),
            account_route(self.ctx, "/agents", self.list_agents, ["GET"]),
            account_route(self.ctx, "/agents", self.create_agent, ["POST"]),
            account_route(self.ctx, "/agents/{user_id}", self.update_agent, UPDATE),
            account_route(self.ctx, "/agents/{user_id}", self.delete_agent, ["DELETE"]),
        ]


def admin_routes(ctx: Context) -> list[Route]:
    return AgentAdminApi(ctx).routes()
