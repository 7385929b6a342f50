"""The public client API (§3): ``/public/api/v1/...``. Handlers only move bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from client_sdk import protocol as p

from .. import file_types
from ..http import Params, empty_response, int_param, json_response, query_int, read_params
from ..services.contacts import ContactService
from ..services.context import Context
from ..services.conversations import ConversationService
from ..services.csat import CsatService
from .errors import answering, public_error

Handler = Callable[[Request], Awaitable[Response]]

INBOX = "/public/api/v1/inboxes/{inbox}"
CONTACT = INBOX + "/contacts/{source_id}"
CONVERSATION = CONTACT + "/conversations/{conversation_id}"


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


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

    async def show_inbox(request: Request) -> Response:
        from ..domain.agent_admin import get_inbox
        from ..views import public as presenters

        inbox = await ctx.inbox(request.path_params["inbox"])
        admin = await ctx.store.read(get_inbox, inbox.account_id, inbox.id)
        return json_response(presenters.public_inbox(inbox, admin.settings.channel_attributes))

    async def create_contact(request: Request) -> Response:
        req = (await params(request)).to(p.ContactCreateRequest)
        return json_response(await contacts.create(request.path_params["inbox"], req))

    async def show_contact(request: Request) -> Response:
        values = (await params(request)).values
        identifier, given = values.get("identifier"), values.get("identifier_hash")
        contact = await contacts.show(
            request.path_params["inbox"], request.path_params["source_id"],
            str(identifier) if identifier is not None else None,
            str(given) if given is not None else None,
        )  # fmt: skip
        return json_response(contact)

    async def update_contact(request: Request) -> Response:
        req = (await params(request)).to(p.ContactUpdateRequest)
        path = request.path_params
        return json_response(await contacts.update(path["inbox"], path["source_id"], req))

    async def list_conversations(request: Request) -> Response:
        path = request.path_params
        found = await conversations.list_conversations(
            path["inbox"], path["source_id"], _base_url(request)
        )
        return json_response(found)

    async def create_conversation(request: Request) -> Response:
        req = (await params(request)).to(p.ConversationCreateRequest)
        path = request.path_params
        view = await conversations.create(path["inbox"], path["source_id"], req, _base_url(request))
        return json_response(view)

    async def show_conversation(request: Request) -> Response:
        return json_response(await conversations.show(*ids(request), _base_url(request)))

    async def toggle_status(request: Request) -> Response:
        return json_response(await conversations.resolve(*ids(request), _base_url(request)))

    async def toggle_typing(request: Request) -> Response:
        req = (await params(request)).to(p.ToggleTypingRequest)
        await conversations.toggle_typing(*ids(request), req.typing_status, _base_url(request))
        return empty_response()

    async def update_last_seen(request: Request) -> Response:
        await conversations.update_last_seen(*ids(request), _base_url(request))
        return empty_response()

    async def list_messages(request: Request) -> Response:
        got = await params(request)
        found = await conversations.messages(
            *ids(request), query_int(got, "before", "a message id"),
            query_int(got, "after", "a message id"),
            _base_url(request),
        )  # fmt: skip
        return json_response(found)

    async def create_message(request: Request) -> Response:
        got = await params(request)
        req = got.to(p.MessageCreateRequest)
        message = await conversations.send(*ids(request), req, got.files, _base_url(request))
        return json_response(message)

    async def update_message(request: Request) -> Response:
        req = (await params(request)).to(p.MessageUpdateRequest)
        message_id = int_param(request.path_params["message_id"], "message")
        message = await conversations.update_message(
            *ids(request), message_id, req, _base_url(request)
        )
        return json_response(message)

    async def show_csat(request: Request) -> Response:
        return json_response(await csat.show(request.path_params["uuid"]))

    async def update_csat(request: Request) -> Response:
        req = (await params(request)).to(p.CsatSurveyUpdateRequest)
        survey = await csat.submit(request.path_params["uuid"], req, _base_url(request))
        return json_response(survey)

    async def attachment(request: Request) -> Response:
        path, content_type, file_name = ctx.files.resolve(request.path_params["token"])
        media_type, disposition = file_types.serving(content_type)
        return FileResponse(
            path, media_type=media_type, filename=file_name, content_disposition_type=disposition,
            headers=dict(file_types.ATTACHMENT_HEADERS),
        )  # fmt: skip

    update = ["PATCH", "PUT"]
    return [
        _route(INBOX, show_inbox, methods=["GET"]),
        _route(INBOX + "/contacts", create_contact, methods=["POST"]),
        _route(CONTACT, show_contact, methods=["GET"]),
        _route(CONTACT, update_contact, methods=update),
        _route(CONTACT + "/conversations", list_conversations, methods=["GET"]),
        _route(CONTACT + "/conversations", create_conversation, methods=["POST"]),
        _route(CONVERSATION, show_conversation, methods=["GET"]),
        _route(CONVERSATION + "/toggle_status", toggle_status, methods=["POST"]),
        _route(CONVERSATION + "/toggle_typing", toggle_typing, methods=["POST"]),
        _route(CONVERSATION + "/update_last_seen", update_last_seen, methods=["POST"]),
        _route(CONVERSATION + "/messages", list_messages, methods=["GET"]),
        _route(CONVERSATION + "/messages", create_message, methods=["POST"]),
        _route(CONVERSATION + "/messages/{message_id}", update_message, methods=update),
        _route("/public/api/v1/csat_survey/{uuid}", show_csat, methods=["GET"]),
        _route("/public/api/v1/csat_survey/{uuid}", update_csat, methods=update),
        _route("/attachments/{token}/{name}", attachment, methods=["GET"]),
    ]
