"""Messages on the agent API (reference agent §3.4): list, create (seed 002), delete, delivery
status.

Message create answers every failure as 422 ``{"error": "<message>"}`` (Chatwoot rescues any
exception there), with Chatwoot's texts; the ``content_attributes`` of interactive content types
are checked as its ``ContentAttributeValidator`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from client_sdk import protocol as p

from .. import inputs, metrics
from ..attachments import Upload
from ..domain import agent_messages as ops
from ..domain import validation
from ..domain.errors import InvalidAttribute
from ..domain.messages import NewAttachment
from ..errors import ApiError, BadRequest, ValidationFailed
from ..store.records import AgentBot, Attachment, Conversation, Performer
from ..store.sql import Op
from ..views import public as presenters
from ..views.agent_conversations import messages_page, render_messages
from .agent_auth import Actor
from .context import Context

ITEM_KEYS = {
    "input_select": ("title", "value"),
    "cards": ("title", "description", "media_url", "actions"),
    "form": (
        "type", "placeholder", "label", "name", "options", "default", "required", "pattern",
        "title", "pattern_error",
    ),
    "article": ("title", "description", "link"),
}  # fmt: skip
ACTION_KEYS = ("text", "type", "payload", "uri")


def invalid(message: str) -> ApiError:
    return ApiError.error(422, message)


def count_created(performer: Performer, message_type: int) -> None:
    """A message created through the agent API: an incoming one is a customer's, posted by
    an integrator (an API channel); the others are the bot's or the agent's."""
    if message_type == p.MESSAGE_TYPE_INCOMING:
        metrics.message_created("api")
    else:
        metrics.message_created("bot" if isinstance(performer, AgentBot) else "agent")


def _symbols(keys: list[str]) -> str:
    """Ruby's inspect of a symbol array, as Chatwoot's messages show it."""
    return "[" + ", ".join(f":{k}" for k in keys) + "]"


def check_content_attributes(content_type: str, attributes: dict[str, Any]) -> None:
    allowed = ITEM_KEYS.get(content_type)
    if allowed is None:
        return
    items = attributes.get("items")
    if not isinstance(items, list) or not items:
        raise invalid("Validation failed: Content attributes At least one item is required.")
    if not all(isinstance(item, dict) for item in items):
        raise invalid("Validation failed: Content attributes Items should be a hash.")
    errors: list[str] = []
    unknown = [key for item in items for key in item if key not in allowed]
    if unknown:
        errors.append(f"Content attributes contains invalid keys for items : {_symbols(unknown)}")
    if content_type == "cards":
        if any(not item.get("actions") for item in items):
            errors.append("Content attributes contains items missing actions")
        else:
            actions = [a for item in items for a in item["actions"]]
            if not all(isinstance(a, dict) for a in actions):
                errors.append("Content attributes contains invalid actions")
            else:
                bad = [key for a in actions for key in a if key not in ACTION_KEYS]
                if bad:
                    errors.append(
                        f"Content attributes contains invalid keys for actions:  {_symbols(bad)}"
                    )
    if errors:
        raise invalid("Validation failed: " + ", ".join(errors))


def _content_attributes(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = inputs.decode_json(value, "content_attributes")
            inputs.check_value("content_attributes", value)
        except msgspec.DecodeError:
            raise invalid(f"unexpected token at '{value[:100]}'") from None
        except (BadRequest, ValidationFailed) as exc:
            raise invalid(str(exc)) from None
    if not isinstance(value, dict):
        raise invalid("Validation failed: Content attributes must be an object")
    return value


def new_message(
    req: p.AgentMessageInput, attachments: list[NewAttachment], *, files: int = 0
) -> ops.NewAgentMessage:
    """Validate a message create (``files``: uploads still to be saved as ``attachments``);
    raises 422 ``{"error"}`` with Chatwoot's wording."""
    message_type = req.message_type or "outgoing"
    if message_type not in p.MESSAGE_TYPE_NAMES:
        raise invalid(f"'{message_type}' is not a valid message_type")
    content_type = req.content_type or "text"
    if content_type not in p.CONTENT_TYPES:
        raise invalid(f"'{content_type}' is not a valid content_type")
    if req.content is not None and len(req.content) > validation.MAX_CONTENT:
        raise invalid(
            f"Validation failed: Content is too long (maximum is {validation.MAX_CONTENT} "
            "characters)"
        )
    if req.echo_id is not None and len(req.echo_id) > validation.MAX_ECHO_ID:
        raise invalid(
            f"Validation failed: Echo id is too long (maximum is {validation.MAX_ECHO_ID} "
            "characters)"
        )
    attributes = _content_attributes(req.content_attributes)
    check_content_attributes(content_type, attributes)
    blank = not (req.content or "").strip()
    if content_type == "text" and blank and not attachments and not files:
        # Chatwoot does not require content (an input_select or cards message carries its
        # items instead), but a text message with neither content nor a file shows nothing.
        raise invalid("Validation failed: Content can't be blank")
    if req.external_created_at not in (None, ""):
        attributes["external_created_at"] = req.external_created_at
    return ops.NewAgentMessage(
        content=req.content, message_type=p.MESSAGE_TYPE_NAMES.index(message_type),
        private=bool(req.private), content_type=content_type, content_attributes=attributes,
        echo_id=req.echo_id or None, source_id=req.source_id or None, attachments=attachments,
    )  # fmt: skip


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    number = inputs.parse_id(value)
    if number is None:
        raise InvalidAttribute(f"{name.capitalize()} must be a message id", [name])
    return number


def _as_new(att: Attachment) -> NewAttachment:
    return NewAttachment(
        file_type=att.file_type, extension=att.extension, file_name=att.file_name,
        content_type=att.content_type, file_size=att.file_size, storage_key=att.storage_key,
    )  # fmt: skip


def _rendered(
    op: Callable[..., Op[ops.AgentMessageResult]], link: presenters.LinkBuilder, *args: Any
) -> Op[tuple[ops.AgentMessageResult, p.AgentMessage]]:
    """One transaction: the domain operation ``op(*args)``, then the agent view of the message
    it wrote."""
    result = yield from op(*args)
    views = yield from render_messages([result.message], result.conversation.display_id, link)
    return result, views[0]


def _page(
    conversation: Conversation,
    before: int | None,
    after: int | None,
    filter_internal: bool,
    link: presenters.LinkBuilder,
) -> Op[p.MessagesResponse]:
    found = yield from ops.list_messages(conversation, before, after, filter_internal)
    return (yield from messages_page(conversation, found, link))


class AgentMessageService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def link(self, base_url: str) -> presenters.LinkBuilder:
        return self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)

    async def list_messages(
        self, actor: Actor, conversation: Conversation, params: dict[str, Any], base_url: str
    ) -> p.MessagesResponse:
        before, after = _int(params.get("before"), "before"), _int(params.get("after"), "after")
        internal = str(params.get("filter_internal_messages", "")).lower() == "true"
        response: p.MessagesResponse = await self.ctx.store.read(
            _page, conversation, before, after, internal, self.link(base_url)
        )
        return response

    async def save_uploads(self, uploads: Sequence[Upload]) -> list[NewAttachment]:
        limit = self.ctx.settings.max_attachments
        if len(uploads) > limit:
            raise invalid(f"Too many attachments (maximum is {limit})")
        saved: list[NewAttachment] = []
        try:
            for upload in uploads:
                saved.append(
                    await self.ctx.files.save(
                        upload.file, upload.filename or "file", upload.content_type or ""
                    )
                )
        except BaseException:
            await self.ctx.files.discard(saved)
            raise
        return saved

    async def create(
        self,
        actor: Actor,
        conversation: Conversation,
        req: p.AgentMessageInput,
        uploads: Sequence[Upload],
        base_url: str,
    ) -> p.AgentMessage:
        new = new_message(req, [], files=len(uploads))
        saved = await self.save_uploads(uploads)
        new.attachments = saved
        try:
            link = self.link(base_url)
            _, view = await self.ctx.store.write_on_commit(
                self.ctx.emit_first, _rendered, ops.create_message, link, conversation.id, new,
                actor.performer, self.ctx.settings.messages_per_minute, link, self.ctx.now(),
            )  # fmt: skip
        except BaseException:
            await self.ctx.files.discard(saved)
            raise
        count_created(actor.performer, new.message_type)
        return view

    async def delete(
        self, actor: Actor, conversation: Conversation, message_id: int, base_url: str
    ) -> p.AgentMessage:
        link = self.link(base_url)
        result, view = await self.ctx.store.write_on_commit(
            self.ctx.emit_first, _rendered, ops.delete_message, link, conversation.id,
            message_id, actor.performer, link, self.ctx.now(),
        )  # fmt: skip
        await self.ctx.files.discard([_as_new(a) for a in result.removed])
        return view

    async def update_status(
        self,
        actor: Actor,
        conversation: Conversation,
        message_id: int,
        req: p.MessageStatusRequest,
        base_url: str,
    ) -> p.AgentMessage:
        link = self.link(base_url)
        _, view = await self.ctx.store.write_on_commit(
            self.ctx.emit_first, _rendered, ops.update_status, link, conversation.id,
            message_id, req.status, req.external_error, actor.performer, link, self.ctx.now(),
        )  # fmt: skip
        return view
