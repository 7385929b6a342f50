"""Settings, read from ``INBOXGATE_*`` environment variables in this one place.

:class:`Settings` declares every setting once: its field's name gives the variable
(``INBOXGATE_`` and the name in capitals, see ``_VARIABLES`` for the one exception), its type
and ``Meta`` constraints what the variable may hold, and :meth:`Settings.from_env` decodes the
environment with msgspec against that declaration. An error names the variable and says what
it takes (``tests/test_settings.py`` also holds docs/deployment.md's table to these fields).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import Meta, Struct, field
from msgspec import inspect as mi

from .errors import GatewayError

MB = 1024 * 1024
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# The longest number of seconds a setting takes: finite, so "inf" is refused (about 31 years).
FOREVER = 1e9

# What ``Meta.extra`` marks: a value an error must not echo (it may hold a password), and a
# setting where 0 means the default (a window or timeout of 0 would make no sense).
SECRET = "secret"
ZERO_MEANS_DEFAULT = "zero means default"

Count = Annotated[int, Meta(ge=0)]
PoolSize = Annotated[int, Meta(ge=1, le=1000)]
CountOrDefault = Annotated[int, Meta(ge=0, extra={ZERO_MEANS_DEFAULT: True})]
Seconds = Annotated[float, Meta(ge=0, le=FOREVER)]
SecondsOrDefault = Annotated[float, Meta(ge=0, le=FOREVER, extra={ZERO_MEANS_DEFAULT: True})]
Hidden = Annotated[str, Meta(extra={SECRET: True})]
DatabaseUrl = Annotated[
    str,
    Meta(
        pattern=r"^(sqlite:///|postgresql://|postgres://)",
        description="sqlite:///PATH or postgresql://...",
        extra={SECRET: True},
    ),
]
RedisUrl = Annotated[
    str,
    Meta(
        pattern=r"^((redis|rediss|unix)://.*)?$",
        description="redis://, rediss:// or unix://...",
        extra={SECRET: True},
    ),
]
# Not "/" and not a probe's path: those are answered before the metrics.
MetricsPath = Annotated[
    str,
    Meta(
        pattern=r"^/(?!(health|ready)?$)",
        description="a path like /metrics (not /, /health or /ready)",
    ),
]

# Variables not named after their field.
_VARIABLES = {"metrics_enabled": "INBOXGATE_METRICS"}
# Fields never read from the environment.
_NOT_FROM_ENV = frozenset({"demo_inbox"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def variable(name: str) -> str:
    """The environment variable of the setting ``name``."""
    return _VARIABLES.get(name, "INBOXGATE_" + name.upper())


class SettingsError(GatewayError):
    """An ``INBOXGATE_*`` variable holds a value that cannot be used. Raised at start; met in a
    request (it never is), it would be the server's fault: a 500."""


class Settings(Struct, frozen=True, kw_only=True, rename=variable):
    database_url: DatabaseUrl = "sqlite:///./inboxgate.db"
    # PostgreSQL: connections each process keeps to the database, at most.
    database_pool_size: PoolSize = 10
    # Several nodes or worker processes share realtime fan-out, cable sessions, presence and
    # rate limits through Redis (redis://, rediss:// or unix://); empty: all in-process.
    redis_url: RedisUrl = ""
    # Namespace of every Redis key and channel, so deployments can share one Redis.
    redis_prefix: str = "inboxgate"
    data_dir: Path = Path("./data")
    # Public base URL used in attachment links; empty means "from the request's Host".
    public_url: str = ""
    # Signs attachment URLs and keys stream ids. Unset: generated once and kept, so links and
    # ids survive restarts and every process signs alike: with SQLite in DATA_DIR/secret_key;
    # with PostgreSQL in the database, so nodes sharing it need no other setting. Empty means
    # "the database's": the app reads (or creates) it there when it starts.
    secret_key: Hidden = field(default_factory=lambda: secrets.token_urlsafe(32))
    # "full" survives power loss; "normal" survives a process crash (WAL) and is faster.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    max_body_bytes: Count = 45 * MB
    max_json_bytes: Count = 1 * MB
    max_attachment_bytes: Count = 40 * MB
    max_attachments: Count = 15
    attachment_url_ttl: Count = 3600
    rate_limit_per_ip: Count = 3000
    rate_limit_window: CountOrDefault = 60
    rate_limit_safelist: tuple[str, ...] = ()
    # Websocket upgrades on /cable per client IP per rate-limit window; over it is a 429 before
    # the upgrade. 0 disables.
    cable_connects_per_ip: Count = 300
    # Client addresses (IPs or networks, or "*") whose X-Forwarded-For / X-Forwarded-Proto are
    # believed: the reverse proxies in front. Empty: nobody's, the peer address is the client.
    forwarded_allow_ips: tuple[str, ...] = ()
    # Connections. One that has not sent complete request headers this many seconds after it
    # opened (or after its previous response) is closed.
    header_timeout: SecondsOrDefault = 10.0
    # Open connections (HTTP and websocket) per process; one more is answered 503 and closed.
    # 0: derived from the process's file descriptor limit (gateway.connections).
    max_connections: Count = 0
    messages_per_minute: Count = 200
    cors_origins: tuple[str, ...] = ("*",)
    csat_lock_days: Count = 14
    event_retention_days: Count = 30
    # Realtime (/cable). A dropped extended-protocol client can restore its session (its
    # subscriptions) for this long after the socket closed; 0 disables restore.
    cable_session_ttl: Count = 300
    # Per connection: frames waiting to be written beyond this are a slow consumer, which is
    # disconnected (reconnect: true) and catches up through history. At least 4096.
    cable_send_buffer_bytes: Count = 1 * MB
    # Every this many seconds the hub compares each listened stream with its log head and heals
    # the ones behind: a broadcast lost with no later event to reveal it (a node killed between
    # commit and publish) still arrives. 0 disables.
    cable_reconcile_seconds: Seconds = 5.0
    # How /cable sockets are carried: "lean" (the gateway's own protocol on uvicorn's port: no
    # task per socket, frames framed once) or "asgi" (uvicorn's websocket protocol and ASGI, the
    # fallback for one release).
    cable_transport: Literal["lean", "asgi"] = "lean"
    # Typing indicators clear themselves when not renewed for this long (the widget's 30 s).
    typing_timeout: CountOrDefault = 30
    # presence.update lists who was seen within this window (Chatwoot's PRESENCE_DURATION).
    presence_window: CountOrDefault = 20
    # Webhooks. A delivery is tried up to ``webhook_max_attempts`` times, then dead-lettered;
    # retry n waits base * 2**(n-1) seconds (capped), randomised between half and all of it.
    webhook_max_attempts: CountOrDefault = 12
    webhook_backoff_base: Seconds = 2.0
    webhook_backoff_max: Seconds = 3600.0
    # Per request (connect, write, read): Chatwoot's WEBHOOK_TIMEOUT default.
    webhook_timeout: SecondsOrDefault = 5.0
    webhook_concurrency: CountOrDefault = 8
    # Receivers on loopback, private or link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    # Operations (docs/operations.md). Prometheus metrics at ``metrics_path``; a token, when
    # set, is required as ``Authorization: Bearer``. Off: no /metrics and no HTTP timing.
    metrics_enabled: bool = True
    metrics_path: MetricsPath = "/metrics"
    metrics_token: Hidden = ""
    # Logs: "text" or "json" (one object per line), at this level; the access log is one line
    # per request through the same formatter (off by default: it costs a line per request).
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    access_log: bool = False
    # Names this node in JSON log lines; empty means the host name.
    node_id: str = ""
    # At shutdown /ready answers 503 this long before websockets are told to reconnect, so a
    # load balancer stops sending new clients first.
    drain_seconds: Seconds = 0.0
    # /openapi.json and the /docs page that renders it (docs/api.md). They describe the code,
    # not the deployment's data; off hides them.
    api_docs: bool = True
    # Set by ``serve --demo`` (never from the environment): the inbox the /demo page chats with.
    demo_inbox: str = ""

    def with_(self, **changes: Any) -> Settings:
        return msgspec.structs.replace(self, **changes)

    @property
    def sqlite_path(self) -> str:
        if not self.database_url.startswith("sqlite:///"):
            raise SettingsError(f"not a sqlite URL: {self.database_url!r}")
        return self.database_url[len("sqlite:///") :]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the ``INBOXGATE_*`` variables of ``env`` (default: the process's) give;
        an empty variable counts as unset. Raises :class:`SettingsError` naming the variable."""
        env = os.environ if env is None else env
        given = {
            f.encode_name: _raw(f.type, env[f.encode_name])
            for f in _FIELDS
            if f.name not in _NOT_FROM_ENV and env.get(f.encode_name)
        }
        try:
            settings = msgspec.convert(given, cls, strict=False, dec_hook=_path)
        except msgspec.ValidationError as exc:
            raise _error(exc, env) from None
        changes: dict[str, Any] = {
            f.name: f.default
            for f in _FIELDS
            if _marked(f.type, ZERO_MEANS_DEFAULT) and getattr(settings, f.name) == 0
        }
        changes["public_url"] = settings.public_url.rstrip("/")
        changes["cable_send_buffer_bytes"] = max(4096, settings.cable_send_buffer_bytes)
        changes["forwarded_allow_ips"] = _addresses(settings.forwarded_allow_ips)
        if variable("secret_key") not in given:
            changes["secret_key"] = (
                "" if settings.database_url.startswith("postgres")
                else stored_secret_key(settings.data_dir)
            )  # fmt: skip
        return settings.with_(**changes)


_FIELDS = cast(mi.StructType, mi.type_info(Settings)).fields
_HINTS = typing.get_type_hints(Settings)


def _raw(kind: mi.Type, value: str) -> Any:
    """An environment string as msgspec's lax decoding takes it for ``kind``: lists are
    comma-separated, choices and flags are not case-sensitive, flags also read yes/no, on/off."""
    kind = kind.type if isinstance(kind, mi.Metadata) else kind
    if isinstance(kind, mi.VarTupleType):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(kind, mi.LiteralType):
        return value.lower()
    if isinstance(kind, mi.BoolType) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    return value


def _path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _marked(kind: mi.Type, mark: str) -> bool:
    return isinstance(kind, mi.Metadata) and bool((kind.extra or {}).get(mark))


def _expected(f: mi.Field) -> str:
    """What the variable of ``f`` takes, as an error says it."""
    kind = f.type
    if isinstance(kind, mi.Metadata):
        if "description" in (kind.extra_json_schema or {}):
            return str((kind.extra_json_schema or {})["description"])
        kind = kind.type
    if isinstance(kind, mi.IntType):
        return f"an integer >= {kind.ge}"
    if isinstance(kind, mi.FloatType):
        return f"a finite number >= {kind.ge:g} (at most {kind.le:g})"
    if isinstance(kind, mi.BoolType):
        return "1 or 0 (or true/false, yes/no, on/off)"
    if isinstance(kind, mi.LiteralType):  # in the declared order (msgspec sorts them)
        values = [str(v) for v in typing.get_args(_HINTS[f.name])]
        if len(values) == 2:
            return " or ".join(values)
        return "one of " + ", ".join(values)
    return "a valid value"


def _error(exc: msgspec.ValidationError, env: Mapping[str, str]) -> SettingsError:
    found = re.search(r"at `\$\.(\w+)", str(exc))
    f = next((f for f in _FIELDS if found and f.encode_name == found.group(1)), None)
    if f is None:
        return SettingsError(str(exc))
    value = env[f.encode_name]
    shown = repr(value)
    if _marked(f.type, SECRET):
        shown = f"{value.partition(':')[0]!r} (it may hold a password, so only its scheme is shown)"
    return SettingsError(f"{f.encode_name} must be {_expected(f)}, got {shown}")


def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    # Normalised as uvicorn compares them: it would silently never match a network written
    # with host bits (10.0.0.1/8) or a misspelt address.
    normalised = []
    for value in values:
        try:
            if value != "*":
                value = str(
                    ipaddress.ip_network(value, strict=False)
                    if "/" in value
                    else ipaddress.ip_address(value)
                )
        except ValueError:
            raise SettingsError(
                f"{variable('forwarded_allow_ips')} must list IP addresses, networks (CIDR) or "
                f"*, got {value!r}"
            ) from None
        normalised.append(value)
    return tuple(normalised)


def stored_secret_key(data_dir: Path) -> str:
    """The key kept in ``data_dir/secret_key``, created (mode 0600) on first use. Written to a
    temporary file and hard-linked into place, so concurrent workers all end up reading one
    complete key."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another worker won the race: use its key
    finally:
        tmp.unlink()
    return path.read_text().strip()
