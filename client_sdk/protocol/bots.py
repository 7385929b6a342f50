"""Agent bots (reference agent §2.4, §3.6, §3.8, §4, §6) on the application and Platform
APIs, and an inbox's bot.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET, Struct, UnsetType

from .public import JSONObject

__all__ = [
    "AgentBot",
    "AgentBotRequest",
    "InboxAgentBot",
    "PlatformAgentBot",
    "SetAgentBotRequest",
]


class AgentBotRequest(Struct, kw_only=True):
    """Body of ``POST|PATCH .../agent_bots[/{id}]`` (account or platform), at the top level or
    under ``agent_bot``; UNSET means "not given". ``account_id`` is read by the Platform API
    only (none: a system bot, usable in every account)."""

    name: str | UnsetType | None = UNSET
    description: str | UnsetType | None = UNSET
    outgoing_url: str | UnsetType | None = UNSET
    avatar_url: str | UnsetType | None = UNSET
    bot_type: str | UnsetType | None = UNSET
    bot_config: JSONObject | UnsetType | None = UNSET
    account_id: Any = UNSET


class AgentBot(Struct, kw_only=True):
    """An agent bot as the application API shows it. ``outgoing_url`` is absent for system
    bots; ``access_token`` only in the answer that created or rotated it (only its hash is
    kept); ``secret`` (signs the deliveries to ``outgoing_url``) only to administrators of
    the bot's own account."""

    id: int
    name: str
    description: str | None = None
    thumbnail: str = ""
    outgoing_url: str | UnsetType | None = UNSET
    bot_type: str = "webhook"
    bot_config: JSONObject = {}
    account_id: int | None = None
    access_token: str | UnsetType = UNSET
    secret: str | UnsetType = UNSET
    system_bot: bool = False


class InboxAgentBot(Struct, kw_only=True):
    """``GET .../inboxes/{id}/agent_bot``: the bot (no token), or ``{}`` without one."""

    agent_bot: Any


class SetAgentBotRequest(Struct, kw_only=True):
    """``POST .../inboxes/{id}/set_agent_bot``: a bot id attaches, null detaches."""

    agent_bot: Any = UNSET


class PlatformAgentBot(Struct, kw_only=True):
    """An agent bot as the Platform API shows it (with the real ``outgoing_url``, not
    Chatwoot's name-in-the-url bug)."""

    id: int
    name: str
    description: str | None = None
    outgoing_url: str | None = None
    account_id: int | None = None
    thumbnail: str = ""
    access_token: str | UnsetType = UNSET
    secret: str
