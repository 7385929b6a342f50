"""Agent API conversation and message routes (reference agent §3.1-3.4): bytes to Structs, a
service call, Structs to bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from client_sdk import protocol as p

from ..errors import ApiError, ValidationFailed
from ..http import Params, empty_response, int_param, json_response, read_params
from ..services.agent_auth import Actor
from ..services.agent_conversations import AgentConversationService
from ..services.agent_messages import AgentMessageService
from ..services.agent_typing import AgentTypingService
from ..services.context import Context
from .agent import account_route

CONVERSATIONS = "/conversations"
CONVERSATION = CONVERSATIONS + "/{conversation_id}"
MESSAGE = CONVERSATION + "/messages/{message_id}"

Handler = Callable[[Request, Actor], Awaitable[Response]]


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _display_id(request: Request) -> int:
    return int_param(request.path_params["conversation_id"], "conversation")


def _closing(handler: Handler) -> Handler:
    """Uploaded files are spooled to temporary files: close them whatever happened."""

    async def run(request: Request, actor: Actor) -> Response:
        try:
            return await handler(request, actor)
        finally:
            await request.close()

    return run


def conversation_routes(ctx: Context) -> list[Route]:
    conversations = AgentConversationService(ctx)
    messages = AgentMessageService(ctx)
    typing = AgentTypingService(ctx)
    s = ctx.settings

    async def params(request: Request) -> Params:
        return await read_params(request, max_json=s.max_json_bytes, max_files=s.max_attachments)

    # -- conversations -------------------------------------------------------------------

    async def list_conversations(request: Request, actor: Actor) -> Response:
        values = (await params(request)).values
        return json_response(
            await conversations.list_conversations(actor, values, _base_url(request))
        )

    async def counts(request: Request, actor: Actor) -> Response:
        values = (await params(request)).values
        return json_response(await conversations.counts(actor, values))

    async def create(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.AgentConversationCreateRequest)
        return json_response(await conversations.create(actor, req, _base_url(request)))

    async def show(request: Request, actor: Actor) -> Response:
        view = await conversations.show(actor, _display_id(request), _base_url(request))
        return json_response(view)

    async def update(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.ConversationUpdateRequest)
        view = await conversations.update(actor, _display_id(request), req, _base_url(request))
        return json_response(view)

    async def delete(request: Request, actor: Actor) -> Response:
        await conversations.delete(actor, _display_id(request))
        return empty_response()

    async def toggle_status(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.ToggleStatusRequest)
        result = await conversations.toggle_status(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    async def toggle_priority(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.TogglePriorityRequest)
        await conversations.set_priority(
            actor, _display_id(request), req.priority, _base_url(request)
        )
        return empty_response()

    async def custom_attributes(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.CustomAttributesRequest)
        result = await conversations.custom_attributes(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    async def update_last_seen(request: Request, actor: Actor) -> Response:
        view = await conversations.update_last_seen(actor, _display_id(request), _base_url(request))
        return json_response(view)

    async def assignments(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.AssignmentRequest)
        result = await conversations.assign(actor, _display_id(request), req, _base_url(request))
        return json_response(result)

    async def labels(request: Request, actor: Actor) -> Response:
        return json_response(await conversations.labels(actor, _display_id(request)))

    async def set_labels(request: Request, actor: Actor) -> Response:
        req = (await params(request)).to(p.LabelsRequest)
        result = await conversations.set_labels(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    # -- messages ------------------------------------------------------------------------

    async def list_messages(request: Request, actor: Actor) -> Response:
        conversation = await conversations.conversation(actor, _display_id(request))
        values = (await params(request)).values
        return json_response(
            await messages.list_messages(actor, conversation, values, _base_url(request))
        )

    async def create_message(request: Request, actor: Actor) -> Response:
        conversation = await conversations.conversation(actor, _display_id(request))
        try:
            got = await params(request)
            req = got.to(p.AgentMessageInput)
        except ValidationFailed as exc:  # message create answers every failure as {"error"}
            raise ApiError.error(422, exc.message) from None
        view = await messages.create(actor, conversation, req, got.files, _base_url(request))
        return json_response(view)

    def message_id(request: Request) -> int:
        return int_param(request.path_params["message_id"], "message")

    async def delete_message(request: Request, actor: Actor) -> Response:
        conversation = await conversations.conversation(actor, _display_id(request))
        view = await messages.delete(actor, conversation, message_id(request), _base_url(request))
        return json_response(view)

    async def update_message(request: Request, actor: Actor) -> Response:
        conversation = await conversations.conversation(actor, _display_id(request))
        req = (await params(request)).to(p.MessageStatusRequest)
        view = await messages.update_status(
            actor, conversation, message_id(request), req, _base_url(request)
        )
        return json_response(view)

    async def toggle_typing(request: Request, actor: Actor) -> Response:
        conversation = await conversations.conversation(actor, _display_id(request))
        req = (await params(request)).to(p.AgentTypingRequest)
        await typing.toggle(actor, conversation, req, _base_url(request))
        return empty_response()

    def route(path: str, handler: Handler, methods: list[str], *, bots: bool = False) -> Route:
        return account_route(ctx, path, _closing(handler), methods, bots=bots)

    return [
        # Fixed paths before the {conversation_id} ones. ``bots=True``: the only routes an
        # agent bot's token may use (Chatwoot's BOT_ACCESSIBLE_ENDPOINTS, reference §1.3).
        route(CONVERSATIONS, list_conversations, ["GET"]),
        route(CONVERSATIONS, create, ["POST"], bots=True),
        route(CONVERSATIONS + "/meta", counts, ["GET"]),
        route(CONVERSATION, show, ["GET"]),
        route(CONVERSATION, update, ["PATCH", "PUT"], bots=True),
        route(CONVERSATION, delete, ["DELETE"]),
        route(CONVERSATION + "/toggle_status", toggle_status, ["POST"], bots=True),
        route(CONVERSATION + "/toggle_priority", toggle_priority, ["POST"], bots=True),
        route(CONVERSATION + "/custom_attributes", custom_attributes, ["POST"], bots=True),
        route(CONVERSATION + "/update_last_seen", update_last_seen, ["POST"]),
        route(CONVERSATION + "/toggle_typing_status", toggle_typing, ["POST"]),
        route(CONVERSATION + "/assignments", assignments, ["POST"], bots=True),
        route(CONVERSATION + "/labels", labels, ["GET"]),
        route(CONVERSATION + "/labels", set_labels, ["POST"]),
        route(CONVERSATION + "/messages", list_messages, ["GET"]),
        route(CONVERSATION + "/messages", create_message, ["POST"], bots=True),
        route(MESSAGE, update_message, ["PATCH", "PUT"]),
        route(MESSAGE, delete_message, ["DELETE"]),
    ]
