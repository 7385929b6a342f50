"""RoomChannel (reference §6.4): who may subscribe to what, and presence.

A contact subscribes with its session's ``pubsub_token`` and hears that session's stream. An
agent subscribes with their own ``pubsub_token``, ``account_id`` and ``user_id`` and hears the
streams of the inboxes they answer (all of the account's for an administrator), the account
stream and their own user stream. Anything else is rejected.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, NamedTuple

from client_sdk import protocol as p

from ..domain import events, grants
from ..inputs import parse_id
from ..store import Store
from .presence import Presence

log = logging.getLogger("inboxgate.cable")

CHANNEL = "RoomChannel"


class Grant(NamedTuple):
    """An authorized subscription: its streams and whom it speaks for."""

    kind: Literal["contact", "user"]
    subject_id: int  # contact id or user id
    account_id: int
    streams: tuple[str, ...]
    own_stream: str  # where this subscriber's presence.update goes
    availability: str = "online"

    @property
    def principal(self) -> str:
        return f"{self.kind}:{self.subject_id}@{self.account_id}"


def _blank(value: object) -> bool:
    return value is None or value == ""


def _int(value: object) -> int | None:
    """An id as clients send it: a JSON number or a string of ASCII digits (``isdigit``
    would take an Arabic-Indic 1 for user 1), within 64 bits."""
    return parse_id(value)


class RoomChannel:
    def __init__(self, store: Store, presence: Presence) -> None:
        self.store = store
        self.presence = presence

    async def authorize(self, params: dict[str, Any]) -> Grant | None:
        """The grant for a subscribe identifier's params, None to reject."""
        token = params.get("pubsub_token")
        if params.get("channel") != CHANNEL or not isinstance(token, str) or not token:
            return None
        if len(token) > 128 or "\x00" in token:  # PostgreSQL text cannot hold a NUL
            return None
        if _blank(params.get("user_id")):
            contact = await self.store.read(grants.contact_by_pubsub_token, token)
            if contact is None:
                return None
            own = events.session_stream(contact.contact_inbox_id)
            return Grant("contact", contact.contact_id, contact.account_id, (own,), own)
        user_id, account_id = _int(params.get("user_id")), _int(params.get("account_id"))
        if user_id is None or account_id is None:
            return None
        agent = await self.store.read(grants.agent_by_pubsub_token, token, user_id, account_id)
        if agent is None:
            return None
        own = events.user_stream(user_id)
        streams = (
            *(events.inbox_stream(i) for i in agent.inbox_ids),
            events.account_stream(account_id),
            own,
        )
        return Grant("user", user_id, account_id, streams, own, agent.availability)

    async def joined(self, grant: Grant) -> bytes:
        """After the confirm: mark the subscriber present; returns the ``presence.update``
        payload for it."""
        return await self.update_presence(grant)

    async def perform(self, grant: Grant, action: str, data: dict[str, Any]) -> bytes | None:
        """The ``message`` command; returns a payload for the performing subscription, if any."""
        if action == "update_presence":
            return await self.update_presence(grant)
        log.debug("RoomChannel: ignored action %r", action)
        return None

    async def update_presence(self, grant: Grant) -> bytes:
        """Chatwoot broadcasts this to the subscriber's whole token stream, so a contact with N
        tabs open causes N² frames; only the subscription that asked needs the answer (every
        tab refreshes its own presence every 20 s)."""
        if grant.kind == "contact":
            await self.presence.seen_contact(grant.account_id, grant.subject_id)
            data = await self.presence.for_contact(grant.account_id)
        else:
            await self.presence.seen_user(grant.account_id, grant.subject_id, grant.availability)
            data = await self.presence.for_agent(grant.account_id)
        return p.encode(p.Event(event="presence.update", data=data))
