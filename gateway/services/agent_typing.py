"""An agent's typing indicator (``POST .../conversations/{id}/toggle_typing_status``,
reference agent §3.1.10): relayed at once, never logged, through the same typing relay as the
contact's (which also sends the ``typing_off`` nobody sent).

Who hears it (Chatwoot's ``ActionCableListener``): the agents of the inbox, and the contact's
sessions unless the agent is typing a private note.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from client_sdk import protocol as p

from ..domain import events, notify
from ..store.records import Conversation
from ..views import public as presenters
from .agent_auth import Actor
from .context import Context


def _truthy(value: Any) -> bool:
    """``is_private`` as JSON (true) or a form field ("true", "1")."""
    return str(value).strip().lower() in ("true", "1", "on")


class AgentTypingService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def toggle(
        self, actor: Actor, conversation: Conversation, req: p.AgentTypingRequest, base_url: str
    ) -> None:
        """``typing_status`` on or off; any other value changes nothing (200, as Chatwoot)."""
        if req.typing_status not in ("on", "off") or self.ctx.typing is None:
            return
        private = _truthy(req.is_private)
        link = self.ctx.files.link_builder(self.ctx.settings.public_url or base_url)

        def gather() -> Any:
            data = yield from notify.conversation_data(conversation, link)
            streams = [events.inbox_stream(conversation.inbox_id)]
            if not private:
                streams += yield from events.contact_streams(conversation)
            return data, streams

        data, streams = await self.ctx.store.read(gather)
        data.account_id = UNSET  # the typing payload's conversation has none (§6.6)
        user = presenters.user_sender(actor.user)

        def payload(name: str) -> bytes:
            typing = p.TypingEventData(
                conversation=data, user=user, is_private=private,
                account_id=conversation.account_id,
            )  # fmt: skip
            return p.encode(p.Event(event=name, data=typing))

        await self.ctx.typing(
            ("user", conversation.id, actor.user.id),
            req.typing_status == "on",
            streams,
            payload("conversation.typing_on"),
            payload("conversation.typing_off"),
        )
