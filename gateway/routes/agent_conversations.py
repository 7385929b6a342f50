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
from .agent_routing import account_route

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


class AgentConversationApi:
    """The agent API's conversation, message and typing handlers (reference agent §3.1-3.4)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.conversations = AgentConversationService(self.ctx)
        self.messages = AgentMessageService(self.ctx)
        self.typing = AgentTypingService(self.ctx)
        self.settings = self.ctx.settings

    async def params(self, request: Request) -> Params:
        return await read_params(
            request, max_json=self.settings.max_json_bytes, max_files=self.settings.max_attachments
        )

    # -- self.conversations -------------------------------------------------------------------

    async def list_conversations(self, request: Request, actor: Actor) -> Response:
        values = (await self.params(request)).values
        return json_response(
            await self.conversations.list_conversations(actor, values, _base_url(request))
        )

    async def counts(self, request: Request, actor: Actor) -> Response:
        values = (await self.params(request)).values
        return json_response(await self.conversations.counts(actor, values))

    async def create(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.AgentConversationCreateRequest)
        return json_response(await self.conversations.create(actor, req, _base_url(request)))

    async def show(self, request: Request, actor: Actor) -> Response:
        view = await self.conversations.show(actor, _display_id(request), _base_url(request))
        return json_response(view)

    async def update(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.ConversationUpdateRequest)
        view = await self.conversations.update(actor, _display_id(request), req, _base_url(request))
        return json_response(view)

    async def delete(self, request: Request, actor: Actor) -> Response:
        await self.conversations.delete(actor, _display_id(request))
        return empty_response()

    async def toggle_status(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.ToggleStatusRequest)
        result = await self.conversations.toggle_status(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    async def toggle_priority(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.TogglePriorityRequest)
        await self.conversations.set_priority(
            actor, _display_id(request), req.priority, _base_url(request)
        )
        return empty_response()

    async def custom_attributes(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.CustomAttributesRequest)
        result = await self.conversations.custom_attributes(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    async def update_last_seen(self, request: Request, actor: Actor) -> Response:
        view = await self.conversations.update_last_seen(
            actor, _display_id(request), _base_url(request)
        )
        return json_response(view)

    async def assignments(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.AssignmentRequest)
        result = await self.conversations.assign(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    async def labels(self, request: Request, actor: Actor) -> Response:
        return json_response(await self.conversations.labels(actor, _display_id(request)))

    async def set_labels(self, request: Request, actor: Actor) -> Response:
        req = (await self.params(request)).to(p.LabelsRequest)
        result = await self.conversations.set_labels(
            actor, _display_id(request), req, _base_url(request)
        )
        return json_response(result)

    # -- self.messages ------------------------------------------------------------------------

    async def list_messages(self, request: Request, actor: Actor) -> Response:
        conversation = await self.conversations.conversation(actor, _display_id(request))
        values = (await self.params(request)).values
        return json_response(
            await self.messages.list_messages(actor, conversation, values, _base_url(request))
        )

    async def create_message(self, request: Request, actor: Actor) -> Response:
        conversation = await self.conversations.conversation(actor, _display_id(request))
        try:
            got = await self.params(request)
            req = got.to(p.AgentMessageInput)
        except ValidationFailed as exc:  # message self.create answers every failure as {"error"}
            raise ApiError.error(422, exc.message) from None
        view = await self.messages.create(actor, conversation, req, got.files, _base_url(request))
        return json_response(view)

    def message_id(self, request: Request) -> int:
        return int_param(request.path_params["message_id"], "message")

    async def delete_message(self, request: Request, actor: Actor) -> Response:
        conversation = await self.conversations.conversation(actor, _display_id(request))
        view = await self.messages.delete(
            actor, conversation, self.message_id(request), _base_url(request)
        )
        return json_response(view)

    async def update_message(self, request: Request, actor: Actor) -> Response:
        conversation = await self.conversations.conversation(actor, _display_id(request))
        req = (await self.params(request)).to(p.MessageStatusRequest)
        view = await self.messages.update_status(
            actor, conversation, self.message_id(request), req, _base_url(request)
        )
        return json_response(view)

    async def toggle_typing(self, request: Request, actor: Actor) -> Response:
        conversation = await self.conversations.conversation(actor, _display_id(request))
        req = (await self.params(request)).to(p.AgentTypingRequest)
        await self.typing.toggle(actor, conversation, req, _base_url(request))
        return empty_response()

    def route(
        self, path: str, handler: Handler, methods: list[str], *, bots: bool = False
    ) -> Route:
        return account_route(self.ctx, path, _closing(handler), methods, bots=bots)

    def routes(self) -> list[Route]:
        return [
            # Fixed paths before the {conversation_id} ones. ``bots=True``: the only routes an
            # agent bot's token may use (Chatwoot's BOT_ACCESSIBLE_ENDPOINTS, reference §1.3).
            self.route(CONVERSATIONS, self.list_conversations, ["GET"]),
            self.route(CONVERSATIONS, self.create, ["POST"], bots=True),
            self.route(CONVERSATIONS + "/meta", self.counts, ["GET"]),
            self.route(CONVERSATION, self.show, ["GET"]),
            self.route(CONVERSATION, self.update, ["PATCH", "PUT"], bots=True),
            self.route(CONVERSATION, self.delete, ["DELETE"]),
            self.route(CONVERSATION + "/toggle_status", self.toggle_status, ["POST"], bots=True),
            self.route(
                CONVERSATION + "/toggle_priority", self.toggle_priority, ["POST"], bots=True
            ),
            self.route(
                CONVERSATION + "/custom_attributes", self.custom_attributes, ["POST"], bots=True
            ),
            self.route(CONVERSATION + "/update_last_seen", self.update_last_seen, ["POST"]),
            self.route(CONVERSATION + "/toggle_typing_status", self.toggle_typing, ["POST"]),
            self.route(CONVERSATION + "/assignments", self.assignments, ["POST"], bots=True),
            self.route(CONVERSATION + "/labels", self.labels, ["GET"]),
            self.route(CONVERSATION + "/labels", self.set_labels, ["POST"]),
            self.route(CONVERSATION + "/messages", self.list_messages, ["GET"]),
            self.route(CONVERSATION + "/messages", self.create_message, ["POST"], bots=True),
            self.route(MESSAGE, self.update_message, ["PATCH", "PUT"]),
            self.route(MESSAGE, self.delete_message, ["DELETE"]),
        ]


def conversation_routes(ctx: Context) -> list[Route]:
    return AgentConversationApi(ctx).routes()
