"""A GoHighLevel-compatible conversation create (seed 004), for integrations written against
GoHighLevel's Conversations API: ``POST /conversations/`` with a Bearer token.

Mapping (docs/agent-api.md, "GoHighLevel-compatible conversation create"): the Bearer token
is an inboxgate user's access token; ``locationId`` is an inbox identifier, or an account id
meaning that account's default (oldest) inbox; ``contactId`` is a contact id of that account.
The user must have access to the inbox. The conversation is created exactly as a Chatwoot one
would be (events, webhooks), and ``conversation.id`` is its display id.
"""

from __future__ import annotations

from typing import Any

import msgspec

from client_sdk import protocol as p

from ..domain import conversations as conv_ops
from ..domain import highlevel, provisioning
from ..errors import ApiError
from ..views import public as presenters
from .context import Context

API_VERSION = "2021-07-28"


def _error(status: int, message: str | list[str], error: str | None) -> ApiError:
    body = p.HighLevelError(statusCode=status, message=message, error=error)
    encoded: dict[str, object] = msgspec.to_builtins(body)
    return ApiError(status, encoded)


def bad_request() -> ApiError:
    return _error(400, "Bad Request", None)


def unauthorized(message: str = "Invalid token: access token is invalid") -> ApiError:
    return _error(401, message, "Unauthorized")


def unprocessable(message: str = "Unprocessable Entity") -> ApiError:
    return _error(422, [message], "Unprocessable Entity")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class HighLevelService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def create_conversation(
        self, token: str | None, version: str | None, req: p.HighLevelConversationRequest,
        link_base: str,
    ) -> p.HighLevelConversationResponse:  # fmt: skip
        store = self.ctx.store
        if token is None:
            raise unauthorized()
        user = await store.read(provisioning.find_user_by_token, token)
        if user is None:
            raise unauthorized()
        if version != API_VERSION:
            raise bad_request()
        location, contact_id = req.locationId, req.contactId
        if not isinstance(location, str) or not location:
            raise unprocessable("locationId must be a non-empty string")
        if not isinstance(contact_id, str) or not contact_id:
            raise unprocessable("contactId must be a non-empty string")
        inbox = await store.read(highlevel.location_inbox, location)
        if inbox is None:
            raise unprocessable("locationId is not a known location")
        allowed = await store.read(provisioning.agent_inbox_ids, inbox.account_id, user.id)
        if allowed is None or inbox.id not in allowed:
            raise unauthorized("The token is not authorized for this location")
        contact = await store.read(highlevel.account_contact, inbox.account_id, contact_id)
        if contact is None:
            raise unprocessable("contactId is not a contact of this location")
        link = self.ctx.files.link_builder(self.ctx.settings.public_url or link_base)

        def create() -> Any:
            session = yield from highlevel.session_for(inbox, contact, self.ctx.now())
            return (yield from conv_ops.create(inbox, session, {}, link, self.ctx.now()))

        result: conv_ops.ConversationResult = await store.write_on_commit(
            self.ctx.emit_result, create
        )
        conversation = result.conversation
        return p.HighLevelConversationResponse(
            conversation=p.HighLevelConversation(
                id=str(conversation.display_id),
                dateUpdated=presenters.iso_required(conversation.updated_at),
                dateAdded=presenters.iso_required(conversation.created_at),
                contactId=contact_id,
                locationId=location,
                lastMessageDate=presenters.iso_required(conversation.last_activity_at),
                assignedTo=str(conversation.assignee_id) if conversation.assignee_id else "",
            )
        )
