"""The public client API (§3): ``/public/api/v1/...``. Handlers only move bytes: most return
the protocol Struct to answer, which :class:`gateway.fastpath.JsonRoute` encodes straight to
the response; every domain error they let out is answered once, by ``public_error``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from client_sdk import protocol as p

from .. import file_types
from ..fastpath import JsonHandler, JsonRoute
from ..http import Params, base_url, empty_response, int_param, query_int, read_params
from ..services.contacts import ContactService
from ..services.context import Context
from ..services.conversations import ConversationService
from ..services.csat import CsatService
from .errors import answering, public_error

Handler = Callable[[Request], Awaitable[Response]]

INBOX = "/public/api/v1/inboxes/{inbox}"
CONTACT = INBOX + "/contacts/{source_id}"
CONVERSATION = CONTACT + "/conversations/{conversation_id}"
UPDATE = ["PATCH", "PUT"]


def _closing(handler: Handler) -> Handler:
    """Uploaded files are spooled to temporary files that Starlette leaves open; close them
    when the handler is done, whatever happened."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        finally:
            await request.close()

    return run


def _route(path: str, handler: Handler, methods: list[str]) -> Route:
    return Route(path, _closing(answering(public_error, handler)), methods=methods)


def _json(path: str, handler: JsonHandler, methods: list[str]) -> Route:
    return JsonRoute(path, answering(public_error, handler), methods)


class PublicApi:
    """The public client API's handlers (§3): each reads the request, calls a service and
    returns its answer."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.contacts = ContactService(self.ctx)
        self.conversations = ConversationService(self.ctx, self.contacts)
        self.csat = CsatService(self.ctx)
        self.settings = self.ctx.settings

    async def params(self, request: Request) -> Params:
        return await read_params(
            request, max_json=self.settings.max_json_bytes, max_files=self.settings.max_attachments
        )

    def ids(self, request: Request) -> tuple[str, str, int]:
        path = request.path_params
        return path["inbox"], path["source_id"], int_param(path["conversation_id"], "conversation")

    async def show_inbox(self, request: Request) -> p.PublicInbox:
        return await self.contacts.inbox(request.path_params["inbox"])

    async def create_contact(self, request: Request) -> p.PublicContact:
        req = (await self.params(request)).to(p.ContactCreateRequest)
        return await self.contacts.create(request.path_params["inbox"], req)

    async def show_contact(self, request: Request) -> p.PublicContact | msgspec.Raw:
        values = (await self.params(request)).values
        identifier, given = values.get("identifier"), values.get("identifier_hash")
        return await self.contacts.show(
            request.path_params["inbox"], request.path_params["source_id"],
            str(identifier) if identifier is not None else None,
            str(given) if given is not None else None,
        )  # fmt: skip

    async def update_contact(self, request: Request) -> p.Contact:
        req = (await self.params(request)).to(p.ContactUpdateRequest)
        path = request.path_params
        return await self.contacts.update(path["inbox"], path["source_id"], req)

    async def list_conversations(self, request: Request) -> list[p.PublicConversation]:
        path = request.path_params
        return await self.conversations.list_conversations(
            path["inbox"], path["source_id"], base_url(request)
        )

    async def create_conversation(self, request: Request) -> p.PublicConversation:
        req = (await self.params(request)).to(p.ConversationCreateRequest)
        path = request.path_params
        return await self.conversations.create(
            path["inbox"], path["source_id"], req, base_url(request)
        )

    async def show_conversation(self, request: Request) -> p.PublicConversation | msgspec.Raw:
        path = request.path_params
        return await self.conversations.show(
            path["inbox"], path["source_id"], path["conversation_id"], lambda: base_url(request)
        )

    async def toggle_status(self, request: Request) -> p.PublicConversation:
        return await self.conversations.resolve(*self.ids(request), base_url(request))

    async def toggle_typing(self, request: Request) -> Response:
        req = (await self.params(request)).to(p.ToggleTypingRequest)
        await self.conversations.toggle_typing(
            *self.ids(request), req.typing_status, base_url(request)
        )
        return empty_response()

    async def update_last_seen(self, request: Request) -> Response:
        await self.conversations.update_last_seen(*self.ids(request), base_url(request))
        return empty_response()

    async def list_messages(self, request: Request) -> list[p.PublicMessage] | msgspec.Raw:
        got = await self.params(request)
        return await self.conversations.messages(
            *self.ids(request), query_int(got, "before", "a message id"),
            query_int(got, "after", "a message id"),
            base_url(request),
        )  # fmt: skip

    async def create_message(self, request: Request) -> p.PublicMessage:
        got = await self.params(request)
        req = got.to(p.MessageCreateRequest)
        return await self.conversations.send(*self.ids(request), req, got.files, base_url(request))

    async def update_message(self, request: Request) -> p.PublicMessage:
        req = (await self.params(request)).to(p.MessageUpdateRequest)
        message_id = int_param(request.path_params["message_id"], "message")
        return await self.conversations.update_message(
            *self.ids(request), message_id, req, base_url(request)
        )

    async def show_csat(self, request: Request) -> p.CsatSurvey:
        return await self.csat.show(request.path_params["uuid"])

    async def update_csat(self, request: Request) -> p.CsatSurvey:
        req = (await self.params(request)).to(p.CsatSurveyUpdateRequest)
        return await self.csat.submit(request.path_params["uuid"], req, base_url(request))

    async def attachment(self, request: Request) -> Response:
        path, content_type, file_name = self.ctx.files.resolve(request.path_params["token"])
        media_type, disposition = file_types.serving(content_type)
        return FileResponse(
            path, media_type=media_type, filename=file_name, content_disposition_type=disposition,
            headers=dict(file_types.ATTACHMENT_HEADERS),
        )  # fmt: skip

    def routes(self) -> list[BaseRoute]:
        return [
            _json(INBOX, self.show_inbox, methods=["GET"]),
            _json(INBOX + "/contacts", self.create_contact, methods=["POST"]),
            _json(CONTACT, self.show_contact, methods=["GET"]),
            _json(CONTACT, self.update_contact, methods=UPDATE),
            _json(CONTACT + "/conversations", self.list_conversations, methods=["GET"]),
            _json(CONTACT + "/conversations", self.create_conversation, methods=["POST"]),
            _json(CONVERSATION, self.show_conversation, methods=["GET"]),
            _json(CONVERSATION + "/toggle_status", self.toggle_status, methods=["POST"]),
            _route(CONVERSATION + "/toggle_typing", self.toggle_typing, methods=["POST"]),
            _route(CONVERSATION + "/update_last_seen", self.update_last_seen, methods=["POST"]),
            _json(CONVERSATION + "/messages", self.list_messages, methods=["GET"]),
            _json(CONVERSATION + "/messages", self.create_message, methods=["POST"]),
            _json(CONVERSATION + "/messages/{message_id}", self.update_message, methods=UPDATE),
            _json("/public/api/v1/csat_survey/{uuid}", self.show_csat, methods=["GET"]),
            _json("/public/api/v1/csat_survey/{uuid}", self.update_csat, methods=UPDATE),
            _route("/attachments/{token}/{name}", self.attachment, methods=["GET"]),
        ]


def public_routes(ctx: Context) -> list[BaseRoute]:
    return PublicApi(ctx).routes()
