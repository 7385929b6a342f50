"""Agent bots through the application API (reference agent §3.8, §3.6 ``set_agent_bot``) and
the Platform API (§4).

Anyone in the account may list and show its bots (and the system bots); only administrators
create, change, delete, rotate tokens and attach bots to inboxes. A bot's token is shown once,
in the answer that created or rotated it: only its SHA-256 is kept. Its ``secret`` (which
signs the deliveries to ``outgoing_url``) is shown to the administrators of its account and
to the platform app that made it.

Departures from Chatwoot, for safety: ``set_agent_bot`` attaches only the account's bots and
system bots (Chatwoot takes any bot id); a platform app creates bots only in accounts it may
reach, and sees only the bots it created; an ``outgoing_url`` on a loopback or private address
is refused when saved (422), as a webhook's is.
"""

from __future__ import annotations

from msgspec import UNSET

from client_sdk import protocol as p

from ..domain import agent_bots as ops
from ..domain import platform as platform_ops
from ..domain import validation
from ..domain.errors import InvalidAttribute, NotFound
from ..domain.tokens import secure_token
from ..store.records import AgentBot
from ..webhooks import guard
from .agent_admin import invalid_enum
from .agent_auth import Actor
from .agent_conversations import record_id
from .context import Context
from .platform import non_permissible

MAX_URL = 2048
BOT_TYPES = ("webhook",)


def new_token() -> str:
    """24 base58 characters, as Rails' ``has_secure_token`` makes Chatwoot's."""
    return secure_token()


def _url(value: str | None, attribute: str) -> str | None:
    """An http(s) URL, or None for an empty one (a bot without an outgoing_url hears
    nothing)."""
    value = (value or "").strip() or None
    if value is None:
        return None
    validation.length(attribute, value, MAX_URL)
    try:
        guard.parse(value)
    except guard.UrlRefused:
        label = attribute.replace("_", " ").capitalize()
        raise InvalidAttribute(f"{label} is invalid", [attribute]) from None
    return value


async def reachable(ctx: Context, changes: ops.BotChanges) -> None:
    """The bot's outgoing_url receives the events, so it passes the webhooks' address guard
    when it is saved (no loopback or private networks unless the setting allows them)."""
    url = changes.outgoing_url
    if not isinstance(url, str):
        return  # unchanged or cleared
    try:
        await guard.check_saved(url, allow_private=ctx.settings.webhook_allow_private)
    except guard.UrlRefused as exc:
        raise InvalidAttribute(f"Outgoing url is not allowed: {exc}", ["outgoing_url"]) from None


def bot_changes(req: p.AgentBotRequest, creating: bool) -> ops.BotChanges:
    changes = ops.BotChanges()
    if creating or req.name is not UNSET:
        name = req.name.strip() if isinstance(req.name, str) else ""
        if not name:
            raise InvalidAttribute("Name can't be blank", ["name"])
        validation.length("name", name, validation.MAX_NAME)
        changes.name = name
    if req.description is not UNSET:
        changes.description = req.description or None
    if req.outgoing_url is not UNSET:
        changes.outgoing_url = _url(req.outgoing_url, "outgoing_url")
    if req.avatar_url is not UNSET:
        changes.avatar_url = _url(req.avatar_url, "avatar_url")
    if req.bot_type is not UNSET and req.bot_type not in (None, ""):
        if req.bot_type not in BOT_TYPES:
            raise invalid_enum(req.bot_type, "bot_type")
        changes.bot_type = req.bot_type
    if req.bot_config is not UNSET:
        changes.bot_config = req.bot_config or {}
    return changes


def bot_view(
    bot: AgentBot, account_id: int, *, token: str | None = None, secret: bool = False
) -> p.AgentBot:
    """§2.4: ``outgoing_url`` is not shown for system bots; the token only when just made;
    the secret only to administrators of the bot's own account."""
    own = bot.account_id == account_id
    return p.AgentBot(
        id=bot.id, name=bot.name, description=bot.description, thumbnail=bot.avatar_url or "",
        outgoing_url=bot.outgoing_url if bot.account_id is not None else UNSET,
        bot_type=bot.bot_type, bot_config=bot.bot_config, account_id=bot.account_id,
        access_token=token if token and own else UNSET,
        secret=bot.secret if secret and own else UNSET, system_bot=bot.account_id is None,
    )  # fmt: skip


def platform_bot_view(bot: AgentBot, token: str | None = None) -> p.PlatformAgentBot:
    return p.PlatformAgentBot(
        id=bot.id, name=bot.name, description=bot.description, outgoing_url=bot.outgoing_url,
        account_id=bot.account_id, thumbnail=bot.avatar_url or "",
        access_token=token if token else UNSET, secret=bot.secret,
    )  # fmt: skip


class AgentBotService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def list(self, actor: Actor) -> list[p.AgentBot]:
        bots = await self.ctx.store.read(ops.list_bots, actor.account_id)
        return [bot_view(b, actor.account_id, secret=actor.administrator) for b in bots]

    async def show(self, actor: Actor, bot_id: int) -> p.AgentBot:
        bot = await self.ctx.store.read(ops.visible_bot, actor.account_id, bot_id)
        return bot_view(bot, actor.account_id, secret=actor.administrator)

    async def _own(self, actor: Actor, bot_id: int) -> AgentBot:
        """Changes are for administrators, on the account's own bots (a system bot is 404)."""
        actor.require_administrator()
        bot = await self.ctx.store.read(ops.get_bot, bot_id)
        if bot.account_id != actor.account_id:
            raise NotFound("agent bot")
        return bot

    async def create(self, actor: Actor, req: p.AgentBotRequest) -> p.AgentBot:
        actor.require_administrator()
        changes = bot_changes(req, creating=True)
        await reachable(self.ctx, changes)
        token = new_token()
        bot = await self.ctx.store.write(
            ops.create_bot, actor.account_id, changes, token, self.ctx.now()
        )
        return bot_view(bot, actor.account_id, token=token, secret=True)

    async def update(self, actor: Actor, bot_id: int, req: p.AgentBotRequest) -> p.AgentBot:
        await self._own(actor, bot_id)
        changes = bot_changes(req, creating=False)
        await reachable(self.ctx, changes)
        bot = await self.ctx.store.write(ops.update_bot, bot_id, changes, self.ctx.now())
        return bot_view(bot, actor.account_id, secret=True)

    async def delete(self, actor: Actor, bot_id: int) -> None:
        await self._own(actor, bot_id)
        await self.ctx.store.write(ops.delete_bot, bot_id, self.ctx.now())

    async def reset_token(self, actor: Actor, bot_id: int) -> p.AgentBot:
        await self._own(actor, bot_id)
        token = new_token()
        bot = await self.ctx.store.write(ops.rotate_token, bot_id, token, self.ctx.now())
        return bot_view(bot, actor.account_id, token=token, secret=True)

    async def remove_avatar(self, actor: Actor, bot_id: int) -> p.AgentBot:
        await self._own(actor, bot_id)
        changes = ops.BotChanges(avatar_url=None)
        bot = await self.ctx.store.write(ops.update_bot, bot_id, changes, self.ctx.now())
        return bot_view(bot, actor.account_id, secret=True)

    # -- inboxes ---------------------------------------------------------------------------

    async def inbox_bot(self, actor: Actor, inbox_id: int) -> p.InboxAgentBot:
        """Without its token (Chatwoot leaks it here, gotcha 9); ``{}`` when there is none."""
        bot = await self.ctx.store.read(ops.account_inbox_bot, actor.account_id, inbox_id)
        actor.require_inbox(inbox_id)
        return p.InboxAgentBot(agent_bot=bot_view(bot, actor.account_id) if bot else {})

    async def set_inbox_bot(self, actor: Actor, inbox_id: int, req: p.SetAgentBotRequest) -> None:
        actor.require_administrator()
        bot_id = None if req.agent_bot in (UNSET, None, "") else record_id(req.agent_bot, "bot")
        await self.ctx.store.write(
            ops.set_inbox_bot, actor.account_id, inbox_id, bot_id, self.ctx.now()
        )


class PlatformBotService:
    """``/platform/api/v1/agent_bots``: an app sees and changes only the bots it created."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def list(self, app: platform_ops.PlatformApp) -> list[p.PlatformAgentBot]:
        bots = await self.ctx.store.read(ops.list_app_bots, app.id)
        return [platform_bot_view(b) for b in bots]

    async def _bot(self, app: platform_ops.PlatformApp, bot_id: int) -> AgentBot:
        bot = await self.ctx.store.read(ops.get_bot, bot_id)
        if not await self.ctx.store.read(platform_ops.permitted, app.id, "AgentBot", bot_id):
            raise non_permissible()
        return bot

    async def create(
        self, app: platform_ops.PlatformApp, req: p.AgentBotRequest
    ) -> p.PlatformAgentBot:
        changes = bot_changes(req, creating=True)
        account_id = None
        if req.account_id not in (UNSET, None, ""):
            account_id = record_id(req.account_id, "account")
            assert account_id is not None
            await self.ctx.store.read(platform_ops.get_account, account_id)
            if not await self.ctx.store.read(platform_ops.permitted, app.id, "Account", account_id):
                raise non_permissible()
        await reachable(self.ctx, changes)
        token = new_token()
        bot = await self.ctx.store.write(
            ops.create_app_bot, app.id, account_id, changes, token, self.ctx.now()
        )
        return platform_bot_view(bot, token)

    async def show(self, app: platform_ops.PlatformApp, bot_id: int) -> p.PlatformAgentBot:
        return platform_bot_view(await self._bot(app, bot_id))

    async def update(
        self, app: platform_ops.PlatformApp, bot_id: int, req: p.AgentBotRequest
    ) -> p.PlatformAgentBot:
        await self._bot(app, bot_id)
        changes = bot_changes(req, creating=False)
        await reachable(self.ctx, changes)
        bot = await self.ctx.store.write(ops.update_bot, bot_id, changes, self.ctx.now())
        return platform_bot_view(bot)

    async def remove_avatar(self, app: platform_ops.PlatformApp, bot_id: int) -> p.PlatformAgentBot:
        await self._bot(app, bot_id)
        changes = ops.BotChanges(avatar_url=None)
        bot = await self.ctx.store.write(ops.update_bot, bot_id, changes, self.ctx.now())
        return platform_bot_view(bot)

    async def delete(self, app: platform_ops.PlatformApp, bot_id: int) -> None:
        await self._bot(app, bot_id)
        await self.ctx.store.write(ops.delete_bot, bot_id, self.ctx.now())
