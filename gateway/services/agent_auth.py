"""Who is calling the agent API: the ``api_access_token`` header resolved to an :class:`Actor`,
checked in Chatwoot's order (reference agent §1.2) with its exact error bodies.

Tokens are stored as SHA-256 hashes and looked up by hash (an indexed equality on a digest: no
timing signal about the token itself). Roles: ``administrator`` sees and manages every inbox of
the account; ``agent`` only the inboxes they are a member of (§1.4).

An agent bot's token (§1.3) is accepted only by the routes that say so (Chatwoot's
``BOT_ACCESSIBLE_ENDPOINTS``; any other answers 401 "not authorized for bots", before the
account is even looked at), in the bot's own account or one where an inbox has it. A bot has
no role and reaches every conversation of the account (Chatwoot's policies pass any bot).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from client_sdk import protocol as p

from ..domain import agent_bots, platform, provisioning
from ..errors import (
    ApiError,
    invalid_access_token,
    not_account_member,
    not_authorized,
    resource_not_found,
    sign_in_required,
)
from ..store import Store
from ..store.records import Account, AgentBot, Performer, User
from ..views import public as presenters

ADMINISTRATOR = "administrator"
AGENT = "agent"


def access_token(headers: Mapping[str, str]) -> str | None:
    """The token from ``api_access_token`` or ``Api-Access-Token`` (Rack maps both to the same
    variable; header names arrive lower-cased)."""
    value = headers.get("api_access_token") or headers.get("api-access-token")
    return value.strip() if value and value.strip() else None


def not_for_bots() -> ApiError:
    return ApiError.error(401, "Access to this endpoint is not authorized for bots")


def bot_not_in_account() -> ApiError:
    return ApiError.error(401, "Bot is not authorized to access this account")


def _stand_in(bot: AgentBot) -> User:
    """The ``user`` of a bot's Actor: id 0 belongs to no user, so what is computed "for the
    requesting user" (team membership, "mine") finds nothing for a bot."""
    return User(
        id=0, name=bot.name, email="", pubsub_token="", availability="online",
        created_at=bot.created_at,
    )  # fmt: skip


@dataclass(frozen=True)
class Actor:
    """An authenticated user (or agent bot: ``bot`` set) acting in one account."""

    user: User
    token: str  # as presented: the profile echoes it (only its hash is stored)
    account: Account | None = None
    role: str | None = None
    inbox_ids: tuple[int, ...] = ()
    bot: AgentBot | None = None

    @property
    def performer(self) -> Performer:
        """Who acts: the bot, or the user (message sender, activity texts, performer)."""
        return self.bot if self.bot is not None else self.user

    @property
    def account_id(self) -> int:
        if self.account is None:
            raise RuntimeError("actor has no account scope")
        return self.account.id

    @property
    def administrator(self) -> bool:
        return self.role == ADMINISTRATOR

    def require_administrator(self) -> None:
        if not self.administrator:
            raise not_authorized()

    def can_see_inbox(self, inbox_id: int) -> bool:
        return inbox_id in self.inbox_ids

    def require_inbox(self, inbox_id: int) -> None:
        """Access to one inbox's conversations (a member agent, or any administrator)."""
        if not self.can_see_inbox(inbox_id):
            raise not_authorized()


async def authenticate(store: Store, headers: Mapping[str, str], *, bots: bool = False) -> Actor:
    """The user (or, where ``bots`` allows, the agent bot) behind the token, not yet scoped
    to an account (``/api/v1/profile``)."""
    token = access_token(headers)
    if token is None:
        raise sign_in_required()
    user = await store.read(provisioning.find_user_by_token, token)
    if user is not None:
        return Actor(user=user, token=token)
    bot = await store.read(agent_bots.find_bot_by_token, token)
    if bot is None:
        raise invalid_access_token()
    if not bots:
        raise not_for_bots()
    return Actor(user=_stand_in(bot), token=token, bot=bot)


async def authenticate_in_account(
    store: Store, headers: Mapping[str, str], account_id: int, *, bots: bool = False
) -> Actor:
    """The user behind the token, as a member of ``account_id`` (401/404 as Chatwoot); or
    the agent bot, where ``bots`` allows, when it may act in that account."""
    actor = await authenticate(store, headers, bots=bots)
    found = await store.read(platform.account_with_status, account_id)
    if found is None:
        raise resource_not_found()
    account, status = found
    if status == "suspended":  # set through the Platform API
        raise ApiError.error(401, "Account is suspended")
    if actor.bot is not None:
        if not await store.read(agent_bots.bot_in_account, actor.bot, account_id):
            raise bot_not_in_account()
        inbox_ids = await store.read(agent_bots.account_inbox_ids, account_id)
        return Actor(
            user=actor.user, token=actor.token, account=account, inbox_ids=tuple(inbox_ids),
            bot=actor.bot,
        )  # fmt: skip
    role = await store.read(provisioning.user_role, account_id, actor.user.id)
    if role is None:
        raise not_account_member()
    inboxes = await store.read(provisioning.agent_inbox_ids, account_id, actor.user.id)
    return Actor(
        user=actor.user, token=actor.token, account=account, role=role,
        inbox_ids=tuple(inboxes or ()),
    )  # fmt: skip


async def profile_of(store: Store, actor: Actor) -> p.Profile:
    """``GET /api/v1/profile``: the user and the accounts they belong to."""
    memberships = await store.read(provisioning.user_accounts, actor.user.id)
    user = actor.user
    accounts = [
        p.ProfileAccount(
            id=account.id,
            name=account.name,
            role=role,
            permissions=[role],
            availability=user.availability,
            availability_status=user.availability,
            active_at=presenters.iso(account.created_at),
        )
        for account, role in memberships
    ]
    current = accounts[0] if accounts else None
    return p.Profile(
        access_token=actor.token, account_id=current.id if current else None,
        available_name=user.name, email=user.email, id=user.id, name=user.name,
        pubsub_token=user.pubsub_token, role=current.role if current else None, uid=user.email,
        accounts=accounts,
    )  # fmt: skip
