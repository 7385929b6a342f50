"""The Platform API (reference agent §1.5, §4): a platform app provisions accounts and users
and may then read and change only what it created (its *permissibles*).

Platform app tokens are stored as SHA-256 hashes, like user tokens; a user's access token is
shown only in the answer that created or rotated it (``POST /users``, ``POST /users/{id}/token``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping

from msgspec import UNSET, UnsetType

from client_sdk import protocol as p

from ..domain import platform as ops
from ..domain import validation
from ..domain.errors import InvalidAttribute
from ..domain.models import AccountDetails, UserDetails
from ..errors import ApiError
from ..views import admin as present
from .agent_admin import invalid_enum
from .agent_auth import ADMINISTRATOR, AGENT, access_token
from .context import Context

MIN_PASSWORD = 6
_PASSWORD_RULES = (re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"\d"),
                   re.compile(r"[^A-Za-z0-9]"))  # fmt: skip


def invalid_token() -> ApiError:
    return ApiError.error(401, "Invalid access_token")  # sic: lower-case, as Chatwoot


def non_permissible() -> ApiError:
    return ApiError.error(401, "Non permissible resource")


def hash_password(password: str) -> str:
    """scrypt with a random salt. Stored for a later sign-in; nothing reads it back yet."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def _password(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) < MIN_PASSWORD:
        raise InvalidAttribute(
            f"Password is too short (minimum is {MIN_PASSWORD} characters)", ["password"]
        )
    if not all(rule.search(value) for rule in _PASSWORD_RULES):
        raise InvalidAttribute(
            "Password must contain uppercase, lowercase letters, number and a special character",
            ["password"],
        )
    return hash_password(value)


def _required(attribute: str, value: str | UnsetType | None) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidAttribute(f"{attribute.capitalize()} can't be blank", [attribute])
    validation.length(attribute, text, validation.MAX_NAME)
    return text


def _account_changes(req: p.PlatformAccountRequest, creating: bool) -> ops.AccountChanges:
    validation.attributes_size(req.custom_attributes)
    changes = ops.AccountChanges(
        features=req.features, limits=req.limits, custom_attributes=req.custom_attributes
    )
    if creating or req.name is not UNSET:
        changes.name = _required("name", req.name)
    if isinstance(req.locale, str) and req.locale.strip():
        changes.locale = req.locale.strip()
    for field in ("domain", "support_email"):
        value = getattr(req, field)
        if value is not UNSET:
            setattr(changes, field, (value or "").strip() or None)
    if isinstance(req.support_email, str):
        validation.email(req.support_email)
    if isinstance(req.status, str):
        if req.status not in ("active", "suspended"):
            raise invalid_enum(req.status, "status")
        changes.status = req.status
    return changes


def _user_changes(req: p.PlatformUserRequest, creating: bool) -> ops.UserChanges:
    validation.attributes_size(req.custom_attributes)
    changes = ops.UserChanges(
        password_hash=_password(req.password), custom_attributes=req.custom_attributes
    )
    if creating or req.name is not UNSET:
        changes.name = _required("name", req.name)
    if creating or req.email is not UNSET:
        email = _required("email", req.email).lower()
        validation.email(email)
        changes.email = email
    if req.display_name is not UNSET:
        changes.display_name = (req.display_name or "").strip() or None
    return changes


class PlatformService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def authenticate(self, headers: Mapping[str, str]) -> ops.PlatformApp:
        """The platform app behind ``api_access_token``; user and bot tokens are refused."""
        token = access_token(headers)
        app = await self.ctx.store.read(ops.find_app_by_token, token) if token else None
        if app is None:
            raise invalid_token()
        return app

    async def _permitted(self, app: ops.PlatformApp, kind: ops.Permissible, target: int) -> None:
        if not await self.ctx.store.read(ops.permitted, app.id, kind, target):
            raise non_permissible()

    # -- accounts ----------------------------------------------------------------------------

    async def create_account(
        self, app: ops.PlatformApp, req: p.PlatformAccountRequest
    ) -> p.PlatformAccount:
        changes = _account_changes(req, creating=True)
        account = await self.ctx.store.write(ops.create_account, app.id, changes, self.ctx.now())
        return present.platform_account(account)

    async def _account(self, app: ops.PlatformApp, account_id: int) -> AccountDetails:
        """404 for an unknown account, then 401 for one this app did not create."""
        account = await self.ctx.store.read(ops.get_account, account_id)
        await self._permitted(app, "Account", account_id)
        return account

    async def show_account(self, app: ops.PlatformApp, account_id: int) -> p.PlatformAccount:
        return present.platform_account(await self._account(app, account_id))

    async def update_account(
        self, app: ops.PlatformApp, account_id: int, req: p.PlatformAccountRequest
    ) -> p.PlatformAccount:
        await self._account(app, account_id)
        changes = _account_changes(req, creating=False)
        account = await self.ctx.store.write(
            ops.update_account, account_id, changes, self.ctx.now()
        )
        return present.platform_account(account)

    async def account_users(
        self, app: ops.PlatformApp, account_id: int
    ) -> list[p.AccountUserRecord]:
        await self._account(app, account_id)
        found = await self.ctx.store.read(ops.account_users, account_id)
        return [present.account_user(row) for row in found]

    async def add_account_user(
        self, app: ops.PlatformApp, account_id: int, req: p.AccountUserRequest
    ) -> p.AccountUserRecord:
        """Only users this app created (or claimed) can join its accounts: an app must not
        learn about, or reach, users that are not its own."""
        await self._account(app, account_id)
        if req.user_id is None:
            raise InvalidAttribute("User must exist", ["user"])
        role = req.role or AGENT
        if role not in (AGENT, ADMINISTRATOR):
            raise invalid_enum(role, "role")
        await self._permitted(app, "User", req.user_id)
        row = await self.ctx.store.write(
            ops.upsert_account_user, account_id, req.user_id, role, self.ctx.now()
        )
        return present.account_user(row)

    async def remove_account_user(
        self, app: ops.PlatformApp, account_id: int, req: p.AccountUserRequest
    ) -> None:
        await self._account(app, account_id)
        if req.user_id is not None:
            await self.ctx.store.write(ops.remove_account_user, account_id, req.user_id)

    # -- users -------------------------------------------------------------------------------

    async def create_user(self, app: ops.PlatformApp, req: p.PlatformUserRequest) -> p.PlatformUser:
        changes = _user_changes(req, creating=True)
        token = secrets.token_urlsafe(24)
        details, created = await self.ctx.store.write(
            ops.create_user, app.id, changes, token, self.ctx.now()
        )
        return present.platform_user(details, token if created else None)

    async def _user(self, app: ops.PlatformApp, user_id: int) -> UserDetails:
        details = await self.ctx.store.read(ops.get_user, user_id)
        await self._permitted(app, "User", user_id)
        return details

    async def show_user(self, app: ops.PlatformApp, user_id: int) -> p.PlatformUser:
        return present.platform_user(await self._user(app, user_id))

    async def update_user(
        self, app: ops.PlatformApp, user_id: int, req: p.PlatformUserRequest
    ) -> p.PlatformUser:
        await self._user(app, user_id)
        changes = _user_changes(req, creating=False)
        details = await self.ctx.store.write(ops.update_user, user_id, changes, self.ctx.now())
        return present.platform_user(details)

    async def user_token(self, app: ops.PlatformApp, user_id: int) -> p.UserToken:
        """A new access token for the user; the previous one stops working (only hashes are
        stored, so the current one cannot be shown)."""
        await self._user(app, user_id)
        token = secrets.token_urlsafe(24)
        details = await self.ctx.store.write(ops.rotate_token, user_id, token, self.ctx.now())
        return present.user_token(details, token)
