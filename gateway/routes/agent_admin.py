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
from .agent import account_route

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


def admin_routes(ctx: Context) -> list[Route]:
    contacts = ContactAdminService(ctx)
    inboxes = InboxAdminService(ctx)
    agents = AgentAdminService(ctx)
    s = ctx.settings

    async def params(request: Request) -> Params:
        return await read_params(request, max_json=s.max_json_bytes, max_files=0)

    async def body(request: Request, struct: type[S], key: str | None = None) -> S:
        got = await params(request)
        if key is not None:
            got = Params(unwrap(got.values, key), got.files)
        return got.to(struct)

    def path_id(request: Request, name: str) -> int:
        return int_param(request.path_params[name], name)

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    # -- contacts ---------------------------------------------------------------------------

    async def list_contacts(request: Request, actor: Actor) -> Response:
        got = await params(request)
        sort = got.values.get("sort")
        found = await contacts.list_contacts(
            actor, page_of(got), str(sort) if sort else None,
            include_inboxes(got),
        )  # fmt: skip
        return json_response(found)

    async def search_contacts(request: Request, actor: Actor) -> Response:
        got = await params(request)
        query, sort = got.values.get("q"), got.values.get("sort")
        found = await contacts.search(
            actor, str(query) if query is not None else None, page_of(got),
            str(sort) if sort else None, include_inboxes(got),
        )  # fmt: skip
        return json_response(found)

    async def create_contact(request: Request, actor: Actor) -> Response:
        req = await body(request, p.AgentContactRequest, "contact")
        return json_response(await contacts.create(actor, req))

    async def show_contact(request: Request, actor: Actor) -> Response:
        return json_response(await contacts.show(actor, path_id(request, "contact_id")))

    async def update_contact(request: Request, actor: Actor) -> Response:
        contact_id = path_id(request, "contact_id")
        req = await body(request, p.AgentContactRequest, "contact")
        return json_response(await contacts.update(actor, contact_id, req))

    async def contact_conversations(request: Request, actor: Actor) -> Response:
        contact_id = path_id(request, "contact_id")
        return json_response(await contacts.conversations(actor, contact_id, base_url(request)))

    async def create_contact_inbox(request: Request, actor: Actor) -> Response:
        contact_id = path_id(request, "contact_id")
        req = await body(request, p.ContactInboxesRequest)
        return json_response(await contacts.add_inbox(actor, contact_id, req))

    # -- inboxes ----------------------------------------------------------------------------

    async def inbox_request(request: Request) -> p.InboxRequest:
        got = await params(request)
        return Params(nulls(unwrap(got.values, "inbox")), []).to(p.InboxRequest)

    async def list_inboxes(request: Request, actor: Actor) -> Response:
        return json_response(await inboxes.list_inboxes(actor))

    async def show_inbox(request: Request, actor: Actor) -> Response:
        return json_response(await inboxes.show(actor, path_id(request, "inbox_id")))

    async def create_inbox(request: Request, actor: Actor) -> Response:
        return json_response(await inboxes.create(actor, await inbox_request(request)))

    async def update_inbox(request: Request, actor: Actor) -> Response:
        inbox_id = path_id(request, "inbox_id")
        return json_response(await inboxes.update(actor, inbox_id, await inbox_request(request)))

    async def inbox_members(request: Request, actor: Actor) -> Response:
        return json_response(await inboxes.members(actor, path_id(request, "inbox_id")))

    def change_members(mode: Literal["add", "replace", "remove"]) -> Any:
        async def handler(request: Request, actor: Actor) -> Response:
            req = await body(request, p.InboxMembersRequest, "inbox_member")
            found = await inboxes.change_members(actor, req, mode)
            return empty_response() if mode == "remove" else json_response(found)

        return handler

    # -- agents -----------------------------------------------------------------------------

    async def agent_request(request: Request) -> p.AgentRequest:
        got = await params(request)
        values = unwrap(got.values, "agent")
        if not any(values.get(key) is not None for key in AGENT_KEYS):
            raise param_missing("agent")
        return Params(values, []).to(p.AgentRequest)

    async def list_agents(request: Request, actor: Actor) -> Response:
        return json_response(await agents.list_agents(actor))

    async def create_agent(request: Request, actor: Actor) -> Response:
        actor.require_administrator()  # Chatwoot authorizes before it reads the body
        return json_response(await agents.create(actor, await agent_request(request)))

    async def update_agent(request: Request, actor: Actor) -> Response:
        user_id = path_id(request, "user_id")
        return json_response(await agents.update(actor, user_id, await agent_request(request)))

    async def delete_agent(request: Request, actor: Actor) -> Response:
        await agents.delete(actor, path_id(request, "user_id"))
        return empty_response()

    contact = "/contacts/{contact_id}"
    inbox = "/inboxes/{inbox_id}"
    return [
        account_route(ctx, "/contacts", list_contacts, ["GET"]),
        account_route(ctx, "/contacts", create_contact, ["POST"]),
        account_route(ctx, "/contacts/search", search_contacts, ["GET"]),
        account_route(ctx, contact, show_contact, ["GET"]),
        account_route(ctx, contact, update_contact, UPDATE),
        account_route(ctx, contact + "/conversations", contact_conversations, ["GET"]),
        account_route(ctx, contact + "/contact_inboxes", create_contact_inbox, ["POST"]),
        account_route(ctx, "/inboxes", list_inboxes, ["GET"]),
        account_route(ctx, "/inboxes", create_inbox, ["POST"]),
        account_route(ctx, inbox, show_inbox, ["GET"]),
        account_route(ctx, inbox, update_inbox, UPDATE),
        account_route(ctx, "/inbox_members/{inbox_id}", inbox_members, ["GET"]),
        account_route(ctx, "/inbox_members", change_members("add"), ["POST"]),
        account_route(ctx, "/inbox_members", change_members("replace"), UPDATE),
        account_route(ctx, "/inbox_members", change_members("remove"), ["DELETE"]),
        account_route(ctx, "/agents", list_agents, ["GET"]),
        account_route(ctx, "/agents", create_agent, ["POST"]),
        account_route(ctx, "/agents/{user_id}", update_agent, UPDATE),
        account_route(ctx, "/agents/{user_id}", delete_agent, ["DELETE"]),
    ]
