"""The ``inboxgate`` command: ``serve``, ``migrate`` and provisioning (account, inbox, user).

Every command reads settings from the environment (``Settings.from_env``), runs its store work
under ``asyncio.run`` and turns every expected failure (bad settings, unknown account, duplicate
e-mail, bad URL) into one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from .domain.errors import DomainError, NotFound
from .domain.provisioning import (
    NewInbox,
    add_inbox_member,
    create_account,
    create_inbox,
    create_user,
    find_account_by_name,
    find_user_by_email,
    find_user_by_token,
    get_account,
    get_inbox,
    list_inboxes,
    rotate_user_token,
    user_role,
)
from .errors import GatewayError
from .settings import Settings, SettingsError
from .store import Store, StoreError, UniqueViolation, open_store
from .store.records import Account, Inbox, User
from .webhooks import guard

T = TypeVar("T")

DEMO_ACCOUNT = "Demo"
DEMO_INBOX = "Demo inbox"
DEMO_EMAIL = "demo-agent@inboxgate.local"
DEMO_FILE = "demo.json"


# -- plumbing ----------------------------------------------------------------------------------


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _run(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open and start the store (which applies migrations), run ``work``, close the store."""

    async def main() -> T:
        store = open_store(settings)
        await store.start()
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except click.ClickException:
        raise
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    except (DomainError, GatewayError, StoreError, SettingsError, sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def _migrate(settings: Settings) -> list[int]:
    """Apply pending migrations; ``start()`` would apply them too, but silently."""

    async def run() -> list[int]:
        store = open_store(settings)
        try:
            return await store.migrate()
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except (StoreError, SettingsError, sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None


def _report_migrations(applied: list[int]) -> None:
    if applied:
        click.echo("applied migrations: " + ", ".join(str(v) for v in applied))
    else:
        click.echo("database is up to date")


def _emit(as_json: bool, payload: dict[str, Any], summary: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(payload, sort_keys=True))
    else:
        click.echo("\n".join(summary))


def _check_url(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http(s) URL", param_hint=option)
    return value


def _check_reachable(url: str | None, option: str, settings: Settings) -> None:
    """The webhooks' address guard, as the API applies it when such a URL is saved."""
    if url is None:
        return
    try:
        asyncio.run(guard.check_saved(url, allow_private=settings.webhook_allow_private))
    except guard.UrlRefused as exc:
        raise click.BadParameter(
            f"{url!r} is not allowed: {exc} (INBOXGATE_WEBHOOK_ALLOW_PRIVATE=1 allows "
            "loopback and private addresses)",
            param_hint=option,
        ) from None


def _check_origin(value: str) -> str:
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise click.BadParameter(
            f"{value!r} is not an origin like https://shop.example.com",
            param_hint="--allowed-origin",
        )
    return value.rstrip("/")


async def _require_account(store: Store, account_id: int) -> Account:
    account = await store.read(get_account, account_id)
    if account is None:
        raise click.ClickException(f"account {account_id} not found")
    return account


def _inbox_payload(inbox: Inbox) -> dict[str, Any]:
    return {
        "id": inbox.id,
        "account_id": inbox.account_id,
        "name": inbox.name,
        "identifier": inbox.identifier,
        "hmac_token": inbox.hmac_token,
        "hmac_mandatory": inbox.hmac_mandatory,
        "csat_survey_enabled": inbox.csat_survey_enabled,
        "csat_display_type": inbox.csat_display_type,
        "csat_message": inbox.csat_message,
        "webhook_url": inbox.webhook_url,
        "lock_to_single_conversation": inbox.lock_to_single_conversation,
        "allowed_origins": list(inbox.allowed_origins),
        "public_api_path": f"/public/api/v1/inboxes/{inbox.identifier}",
    }


# -- the demo ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoInfo:
    """What ``serve --demo`` provisioned; kept in ``<data_dir>/demo.json`` because the database
    stores only a hash of the agent's access token."""

    account_id: int
    inbox_id: int
    inbox_identifier: str
    hmac_token: str
    user_id: int
    user_email: str
    access_token: str


def _load_demo(path: Path) -> DemoInfo | None:
    try:
        raw = json.loads(path.read_text())
        return DemoInfo(**{name: raw[name] for name in DemoInfo.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: provision again, never crash


def _save_demo(path: Path, info: DemoInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2, sort_keys=True) + "\n")
    tmp.chmod(0o600)  # it holds a credential
    tmp.replace(path)


async def _still_valid(store: Store, saved: DemoInfo, account: Account) -> bool:
    if saved.account_id != account.id:
        return False
    inbox = await store.read(get_inbox, saved.inbox_id)
    if inbox is None or inbox.identifier != saved.inbox_identifier:
        return False
    user = await store.read(find_user_by_token, saved.access_token)
    if user is None or user.id != saved.user_id:
        return False
    return await store.read(user_role, account.id, user.id) is not None


async def provision_demo_in(store: Store, data_dir: Path) -> DemoInfo:
    """Create (once) the demo account, inbox and agent; reuse what exists, rotate the agent's
    token only when the saved one is lost."""
    path = data_dir / DEMO_FILE
    saved = _load_demo(path)
    account = await store.read(find_account_by_name, DEMO_ACCOUNT)
    if account is not None and saved is not None and await _still_valid(store, saved, account):
        return saved

    now = store.clock()
    if account is None:
        account = await store.write(create_account, DEMO_ACCOUNT, now)
    inbox = next(
        (i for i in await store.read(list_inboxes, account.id) if i.name == DEMO_INBOX), None
    )
    if inbox is None:
        inbox = await store.write(
            create_inbox,
            NewInbox(account_id=account.id, name=DEMO_INBOX, csat_survey_enabled=True),
            now,
        )
    token = secrets.token_urlsafe(24)
    user: User | None = await store.read(find_user_by_email, DEMO_EMAIL)
    if user is None:
        user = await store.write(
            create_user, account.id, "Demo Agent", DEMO_EMAIL, "administrator", token, now
        )
    else:
        await store.write(rotate_user_token, account.id, user.id, "administrator", token, now)
    info = DemoInfo(
        account_id=account.id,
        inbox_id=inbox.id,
        inbox_identifier=inbox.identifier,
        hmac_token=inbox.hmac_token,
        user_id=user.id,
        user_email=user.email,
        access_token=token,
    )
    _save_demo(path, info)
    return info


def provision_demo(settings: Settings) -> DemoInfo:
    """``provision_demo_in`` on the configured database; idempotent across runs."""
    return _run(settings, lambda store: provision_demo_in(store, settings.data_dir))


def demo_banner(info: DemoInfo, host: str, port: int, saved_at: Path | None = None) -> str:
    """What a newcomer needs to try the demo inbox from a shell."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    base = f"http://{shown}:{port}"
    api = f"{base}/public/api/v1/inboxes/{info.inbox_identifier}"
    pick = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{}\"])'"
    json_header = "-H 'Content-Type: application/json'"
    return "\n".join(
        [
            "",
            "inboxgate demo",
            f"  public API (inbox):   {api}",
            f"  web widget demo:      {base}/demo",
            f"  agent console:        {base}/console   (sign in with the access token)",
            f"  account id:           {info.account_id}",
            f"  agent:                {info.user_email} (administrator)",
            f"  agent access token:   {info.access_token}   (header: api_access_token)",
            f"  inbox hmac_token:     {info.hmac_token}",
            f"  saved in:             {saved_at or DEMO_FILE}",
            "",
            "Try it (paste into a shell):",
            f"  API={shlex.quote(api)}",
            '  curl -s "$API"',
            f'  SOURCE_ID=$(curl -s -X POST "$API/contacts" {json_header} '
            f'-d \'{{"name":"Alice"}}\' | {pick.format("source_id")})',
            f'  CONV=$(curl -s -X POST "$API/contacts/$SOURCE_ID/conversations" '
            f"| {pick.format('id')})",
            f'  curl -s -X POST "$API/contacts/$SOURCE_ID/conversations/$CONV/messages" '
            f'{json_header} -d \'{{"content":"Hello!","echo_id":"demo-1"}}\'',
            '  curl -s "$API/contacts/$SOURCE_ID/conversations/$CONV/messages"',
            "",
        ]
    )


# -- commands ----------------------------------------------------------------------------------


@click.group()
@click.version_option(package_name="inboxgate")
def main() -> None:
    """inboxgate: a customer-side chat gateway, wire-compatible with Chatwoot's public API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="INBOXGATE_PORT",  # the port without changing the command (the quickstart's test)
    show_envvar=True,
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--demo", is_flag=True, help="Provision a demo account, inbox and agent first.")
def serve(host: str, port: int, workers: int, demo: bool) -> None:
    """Apply migrations, then run the gateway under uvicorn."""
    settings = _settings()
    _report_migrations(_migrate(settings))
    if demo:
        info = provision_demo(settings)
        click.echo(demo_banner(info, host, port, settings.data_dir / DEMO_FILE))
        settings = settings.with_(demo_inbox=info.inbox_identifier)
    if workers > 1 and not settings.redis_url:
        # Each worker would deliver realtime events only to its own sockets: the in-process
        # broker does not cross processes. Several processes need the shared broker.
        raise click.UsageError(
            "--workers > 1 needs a shared broker between processes (set INBOXGATE_REDIS_URL); "
            "with the in-process broker, run one worker per gateway"
        )
    if workers > 1 and settings.database_url.startswith("sqlite:"):
        # One SQLite file takes one writer at a time: several writing processes would only
        # queue on its lock. Several processes need PostgreSQL.
        raise click.UsageError(
            "--workers > 1 needs PostgreSQL (INBOXGATE_DATABASE_URL=postgresql://...); "
            "with SQLite, run one worker"
        )
    from . import server  # only this command needs uvicorn

    if workers > 1:
        _run_workers(settings, host, port, workers)
    else:
        server.run(settings, host, port)


def _run_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """Workers share one metrics directory, so that a scrape of any of them shows the sum
    (prometheus_client's multiprocess mode); it is emptied first, as counters start at 0."""
    from . import metrics, server

    path, created = metrics.prepare_multiprocess_dir()
    try:
        server.run_workers(settings, host, port, workers)
    finally:
        if created:
            metrics.remove_multiprocess_dir(path)


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    _report_migrations(_migrate(_settings()))


@main.command()
@click.argument("inbox_identifier")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="Gateway URL.")
@click.option("--name", default=None, help="Your name, for a new contact session.")
@click.option(
    "--session",
    "session_file",
    type=click.Path(path_type=Path),
    help="Keep the session in this file and resume it next time.",
)
@click.option(
    "--outbox",
    "outbox_file",
    type=click.Path(path_type=Path),
    help="Keep unsent messages in this SQLite file across runs.",
)
@click.option(
    "--conversation",
    "conversation_id",
    type=int,
    help="Continue this conversation (default: the session's last one, or a new one).",
)
def chat(
    inbox_identifier: str,
    url: str,
    name: str | None,
    session_file: Path | None,
    outbox_file: Path | None,
    conversation_id: int | None,
) -> None:
    """Chat with an inbox from this terminal, as a customer (built on client_sdk)."""
    from client_sdk.chat import run  # the SDK; the gateway's other commands do not need it

    raise SystemExit(
        run(
            url,
            inbox_identifier,
            name=name,
            session_file=session_file,
            outbox_file=outbox_file,
            conversation_id=conversation_id,
        )
    )


@main.group()
def account() -> None:
    """Manage accounts."""


@account.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def account_create(name: str, as_json: bool) -> None:
    """Create an account called NAME."""
    if not name.strip():
        raise click.BadParameter("must not be blank", param_hint="NAME")
    settings = _settings()

    async def work(store: Store) -> Account:
        return await store.write(create_account, name.strip(), store.clock())

    created = _run(settings, work)
    _emit(
        as_json,
        {"id": created.id, "name": created.name, "created_at": created.created_at},
        [f"Created account {created.id}: {created.name}"],
    )


@main.group()
def inbox() -> None:
    """Manage inboxes."""


@inbox.command("create")
@click.option("--account", "account_id", required=True, type=int, help="Account id.")
@click.option("--name", required=True)
@click.option("--hmac-mandatory", is_flag=True, help="Require identifier_hash on contacts.")
@click.option("--csat", is_flag=True, help="Send a CSAT survey when a conversation resolves.")
@click.option("--csat-message", default=None, help="Text of the CSAT survey message.")
@click.option(
    "--csat-display-type", type=click.Choice(["emoji", "star"]), default="emoji", show_default=True
)
@click.option("--webhook-url", default=None, help="Receives this inbox's events.")
@click.option("--lock-to-single-conversation", is_flag=True)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    help="Browser origin allowed to call this inbox (repeatable; default: any).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inbox_create(
    account_id: int,
    name: str,
    hmac_mandatory: bool,
    csat: bool,
    csat_message: str | None,
    csat_display_type: str,
    webhook_url: str | None,
    lock_to_single_conversation: bool,
    allowed_origins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create an API inbox; prints its public identifier and hmac_token."""
    if not name.strip():
        raise click.BadParameter("must not be blank", param_hint="--name")
    new = NewInbox(
        account_id=account_id,
        name=name.strip(),
        hmac_mandatory=hmac_mandatory,
        webhook_url=_check_url(webhook_url, "--webhook-url"),
        csat_survey_enabled=csat,
        csat_display_type=csat_display_type,
        csat_message=csat_message,
        lock_to_single_conversation=lock_to_single_conversation,
        allowed_origins=[_check_origin(o) for o in allowed_origins],
    )
    settings = _settings()
    _check_reachable(new.webhook_url, "--webhook-url", settings)

    async def work(store: Store) -> Inbox:
        await _require_account(store, account_id)
        return await store.write(create_inbox, new, store.clock())

    created = _run(settings, work)
    _emit(
        as_json,
        _inbox_payload(created),
        [
            f"Created inbox {created.id}: {created.name} (account {created.account_id})",
            f"  identifier:  {created.identifier}",
            f"  public API:  /public/api/v1/inboxes/{created.identifier}",
            f"  hmac_token:  {created.hmac_token}   (keep secret: signs identifier_hash)",
            f"  hmac mandatory: {'yes' if created.hmac_mandatory else 'no'}, "
            f"CSAT: {'yes' if created.csat_survey_enabled else 'no'}",
        ],
    )


@main.group()
def user() -> None:
    """Manage agent users."""


@user.command("create")
@click.option("--account", "account_id", required=True, type=int, help="Account id.")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    type=click.Choice(["administrator", "agent"]),
    default="agent",
    show_default=True,
)
@click.option(
    "--inbox",
    "inbox_ids",
    multiple=True,
    type=int,
    help="Inbox id the agent answers (repeatable; administrators hear every inbox).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def user_create(
    account_id: int, email: str, name: str, role: str, inbox_ids: tuple[int, ...], as_json: bool
) -> None:
    """Create an agent user; prints their access token (shown only once)."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise click.BadParameter(f"{email!r} is not an e-mail address", param_hint="--email")
    if not name.strip():
        raise click.BadParameter("must not be blank", param_hint="--name")
    settings = _settings()
    token = secrets.token_urlsafe(24)

    async def work(store: Store) -> User:
        await _require_account(store, account_id)
        for inbox_id in inbox_ids:
            inbox = await store.read(get_inbox, inbox_id)
            if inbox is None or inbox.account_id != account_id:
                raise click.ClickException(f"inbox {inbox_id} not found in account {account_id}")
        # The unique e-mail index decides, not a look-up first: a create racing this one (another
        # shell, another node) is reported the same way on either engine.
        try:
            created = await store.write(
                create_user, account_id, name.strip(), email, role, token, store.clock()
            )
        except UniqueViolation:
            raise click.ClickException(f"a user with e-mail {email} already exists") from None
        for inbox_id in inbox_ids:
            await store.write(add_inbox_member, inbox_id, created.id, store.clock())
        return created

    created = _run(settings, work)
    _emit(
        as_json,
        {
            "id": created.id,
            "account_id": account_id,
            "name": created.name,
            "email": created.email,
            "role": role,
            "access_token": token,
            "pubsub_token": created.pubsub_token,
            "inbox_ids": list(inbox_ids),
        },
        [
            f"Created user {created.id}: {created.name} <{created.email}> "
            f"({role} of account {account_id})",
            f"  access token: {token}",
            "  (shown only once: send it as the api_access_token header)",
            f"  pubsub_token: {created.pubsub_token}",
            f'  (subscribes on /cable: {{"channel":"RoomChannel","pubsub_token":"...",'
            f'"account_id":{account_id},"user_id":{created.id}}})',
            f"  hears: {_heard_inboxes(role, inbox_ids)}",
        ],
    )


def _heard_inboxes(role: str, inbox_ids: tuple[int, ...]) -> str:
    if role == "administrator":
        return "every inbox of the account"
    if not inbox_ids:
        return "no inbox yet (add one with --inbox, or through the agent API's inbox members)"
    return "inbox " + ", ".join(str(i) for i in inbox_ids)


@main.group("platform-app")
def platform_app() -> None:
    """Manage platform apps (the Platform API's callers)."""


@platform_app.command("create")
@click.option("--name", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def platform_app_create(name: str, as_json: bool) -> None:
    """Create a platform app; prints its access token (shown only once)."""
    from .domain.platform import PlatformApp, create_app
    from .domain.tokens import secure_token

    if not name.strip():
        raise click.BadParameter("must not be blank", param_hint="--name")
    settings = _settings()
    token = secure_token()

    async def work(store: Store) -> PlatformApp:
        return await store.write(create_app, name.strip(), token, store.clock())

    created = _run(settings, work)
    _emit(
        as_json,
        {"id": created.id, "name": created.name, "access_token": token},
        [
            f"Created platform app {created.id}: {created.name}",
            f"  access token: {token}",
            "  (shown only once: send it as the api_access_token header on /platform/api/v1)",
        ],
    )
