"""The public client API (§3): ``/public/api/v1/...``. Handlers only move bytes: most return
the protocol Struct to answer, which :class:`gateway.fastpath.JsonRoute` encodes straight to
the response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from client_sdk import protocol as p

from .. import file_types, presenters
from ..fastpath import JsonHandler, JsonRoute
from ..http import Params, base_url, empty_response, int_param, query_int, read_params
from ..services.contacts import ContactService
from ..services.context import Context
from ..services.conversations import ConversationService
from ..services.csat import CsatService
from ..store.ops.agent_admin import get_inbox
from ..store.records import Inbox

Handler = Callable[[Request], Awaitable[Response]]

INBOX = "/public/api/v1/inboxes/{inbox}"
CONTACT = INBOX + "/contacts/{source_id}"
CONVERSATION = CONTACT + "/conversations/{conversation_id}"
MAX_INBOX_VIEWS = 10_000


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
    return Route(path, _closing(handler), methods=methods)


def _json(path: str, handler: JsonHandler, methods: list[str]) -> Route:
    return JsonRoute(path, handler, methods)


def public_routes(ctx: Context) -> list[BaseRoute]:
    contacts = ContactService(ctx)
    conversations = ConversationService(ctx, contacts)
    csat = CsatService(ctx)
    s = ctx.settings

    async def params(request: Request) -> Params:
        return await read_params(request, max_json=s.max_json_bytes, max_files=s.max_attachments)

    def ids(request: Request) -> tuple[str, str, int]:
        path = request.path_params
        return path["inbox"], path["source_id"], int_param(path["conversation_id"], "conversation")

    # An inbox's public view, kept while the context hands out the same inbox record: an
    # update through this process replaces the record at once, one by another process within
    # the context's cache time, as for every other inbox setting (Context.inbox).
    inbox_views: dict[str, tuple[Inbox, p.PublicInbox]] = {}

    async def show_inbox(request: Request) -> p.PublicInbox:
        identifier = request.path_params["inbox"]
        inbox = await ctx.inbox(identifier)
        held = inbox_views.get(identifier)
        if held is not None and held[0] is inbox:
            return held[1]
        admin = await ctx.store.read(get_inbox, inbox.account_id, inbox.id)
        view = presenters.public_inbox(inbox, admin.settings.channel_attributes)
        if len(inbox_views) >= MAX_INBOX_VIEWS:
            inbox_views.clear()
        inbox_views[identifier] = (inbox, view)
        return view

    async def create_contact(request: Request) -> p.PublicContact:
        req = (await params(request)).to(p.ContactCreateRequest)
        return await contacts.create(request.path_params["inbox"], req)

    async def show_contact(request: Request) -> p.PublicContact:
        values = (await params(request)).values
        identifier, given = values.get("identifier"), values.get("identifier_hash")
        contact = await contacts.show(
            request.path_params["inbox"], request.path_params["source_id"],
            str(identifier) if identifier is not None else None,
            str(given) if given is not None else None,
        )  # fmt: skip
        return contact

    async def update_contact(request: Request) -> p.Contact:
        req = (await params(request)).to(p.ContactUpdateRequest)
        path = request.path_params
        return await contacts.update(path["inbox"], path["source_id"], req)

    async def list_conversations(request: Request) -> list[p.PublicConversation]:
        path = request.path_params
        return await conversations.list_conversations(
            path["inbox"], path["source_id"], base_url(request)
        )

    async def create_conversation(request: Request) -> p.PublicConversation:
        req = (await params(request)).to(p.ConversationCreateRequest)
        path = request.path_params
        return await conversations.create(path["inbox"], path["source_id"], req, base_url(request))

    async def show_conversation(request: Request) -> p.PublicConversation:
        return await conversations.show(*ids(request), base_url(request))

    async def toggle_status(request: Request) -> p.PublicConversation:
        return await conversations.resolve(*ids(request), base_url(request))

    async def toggle_typing(request: Request) -> Response:
        req = (await params(request)).to(p.ToggleTypingRequest)
        await conversations.toggle_typing(*ids(request), req.typing_status, base_url(request))
        return empty_response()

    async def update_last_seen(request: Request) -> Response:
        await conversations.update_last_seen(*ids(request), base_url(request))
        return empty_response()

    async def list_messages(request: Request) -> list[p.PublicMessage]:
        got = await params(request)
        return await conversations.messages(
            *ids(request), query_int(got, "before", "a message id"),
            query_int(got, "after", "a message id"),
            base_url(request),
        )  # fmt: skip

    async def create_message(request: Request) -> p.PublicMessage:
        got = await params(request)
        req = got.to(p.MessageCreateRequest)
        return await conversations.send(*ids(request), req, got.files, base_url(request))

    async def update_message(request: Request) -> p.PublicMessage:
        req = (await params(request)).to(p.MessageUpdateRequest)
        message_id = int_param(request.path_params["message_id"], "message")
        return await conversations.update_message(*ids(request), message_id, req, base_url(request))

    async def show_csat(request: Request) -> p.CsatSurvey:
        return await csat.show(request.path_params["uuid"])

    async def update_csat(request: Request) -> p.CsatSurvey:
        req = (await params(request)).to(p.CsatSurveyUpdateRequest)
        return await csat.submit(request.path_params["uuid"], req, base_url(request))

    async def attachment(request: Request) -> Response:
        path, content_type, file_name = ctx.files.resolve(request.path_params["token"])
        media_type, disposition = file_types.serving(content_type)
        return FileResponse(
            path, media_type=media_type, filename=file_name, content_disposition_type=disposition,
            headers=dict(file_types.ATTACHMENT_HEADERS),
        )  # fmt: skip

    update = ["PATCH", "PUT"]
    return [
        _json(INBOX, show_inbox, methods=["GET"]),
        _json(INBOX + "/contacts", create_contact, methods=["POST"]),
        _json(CONTACT, show_contact, methods=["GET"]),
        _json(CONTACT, update_contact, methods=update),
        _json(CONTACT + "/conversations", list_conversations, methods=["GET"]),
        _json(CONTACT + "/conversations", create_conversation, methods=["POST"]),
        _json(CONVERSATION, show_conversation, methods=["GET"]),
        _json(CONVERSATION + "/toggle_status", toggle_status, methods=["POST"]),
        _route(CONVERSATION + "/toggle_typing", toggle_typing, methods=["POST"]),
        _route(CONVERSATION + "/update_last_seen", update_last_seen, methods=["POST"]),
        _json(CONVERSATION + "/messages", list_messages, methods=["GET"]),
        _json(CONVERSATION + "/messages", create_message, methods=["POST"]),
        _json(CONVERSATION + "/messages/{message_id}", update_message, methods=update),
        _json("/public/api/v1/csat_survey/{uuid}", show_csat, methods=["GET"]),
        _json("/public/api/v1/csat_survey/{uuid}", update_csat, methods=update),
        _route("/attachments/{token}/{name}", attachment, methods=["GET"]),
    ]
