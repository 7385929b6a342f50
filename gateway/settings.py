"""Settings, read from ``INBOXGATE_*`` environment variables in this one place."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

MB = 1024 * 1024
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """An ``INBOXGATE_*`` variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./inboxgate.db"
    # Several nodes or worker processes share realtime fan-out, cable sessions, presence and
    # rate limits through Redis (redis://, rediss:// or unix://); empty: all in-process.
    redis_url: str = ""
    # Namespace of every Redis key and channel, so deployments can share one Redis.
    redis_prefix: str = "inboxgate"
    data_dir: Path = Path("./data")
    # Public base URL used in attachment links; empty means "from the request's Host".
    public_url: str = ""
    # Signs attachment URLs and keys stream ids. Unset: generated once and kept, so links and
    # ids survive restarts and every process signs alike: with SQLite in DATA_DIR/secret_key;
    # with PostgreSQL in the database, so nodes sharing it need no other setting. Empty means
    # "the database's": the app reads (or creates) it there when it starts.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # "full" survives power loss; "normal" survives a process crash (WAL) and is faster.
    sqlite_synchronous: str = "full"
    max_body_bytes: int = 45 * MB
    max_json_bytes: int = 1 * MB
    max_attachment_bytes: int = 40 * MB
    max_attachments: int = 15
    attachment_url_ttl: int = 3600
    rate_limit_per_ip: int = 3000
    rate_limit_window: int = 60
    rate_limit_safelist: tuple[str, ...] = ()
    # Websocket upgrades on /cable per client IP per rate-limit window; over it is a 429 before
    # the upgrade. 0 disables.
    cable_connects_per_ip: int = 300
    # Client addresses (IPs or networks, or "*") whose X-Forwarded-For / X-Forwarded-Proto are
    # believed: the reverse proxies in front. Empty: nobody's, the peer address is the client.
    forwarded_allow_ips: tuple[str, ...] = ()
    # Connections. One that has not sent complete request headers this many seconds after it
    # opened (or after its previous response) is closed.
    header_timeout: float = 10.0
    # Open connections (HTTP and websocket) per process; one more is answered 503 and closed.
    # 0: derived from the process's file descriptor limit (gateway.connections).
    max_connections: int = 0
    messages_per_minute: int = 200
    cors_origins: tuple[str, ...] = ("*",)
    csat_lock_days: int = 14
    event_retention_days: int = 30
    # Realtime (/cable). A dropped extended-protocol client can restore its session (its
    # subscriptions) for this long after the socket closed; 0 disables restore.
    cable_session_ttl: int = 300
    # Per connection: frames waiting to be written beyond this are a slow consumer, which is
    # disconnected (reconnect: true) and catches up through history.
    cable_send_buffer_bytes: int = 1 * MB
    # Every this many seconds the hub compares each listened stream with its log head and heals
    # the ones behind: a broadcast lost with no later event to reveal it (a node killed between
    # commit and publish) still arrives. 0 disables.
    cable_reconcile_seconds: float = 5.0
    # How /cable sockets are carried: "lean" (the gateway's own protocol on uvicorn's port: no
    # task per socket, frames framed once) or "asgi" (uvicorn's websocket protocol and ASGI, the
    # fallback for one release).
    cable_transport: str = "lean"
    # Typing indicators clear themselves when not renewed for this long (the widget's 30 s).
    typing_timeout: int = 30
    # presence.update lists who was seen within this window (Chatwoot's PRESENCE_DURATION).
    presence_window: int = 20
    # Webhooks. A delivery is tried up to ``webhook_max_attempts`` times, then dead-lettered;
    # retry n waits base * 2**(n-1) seconds (capped), randomised between half and all of it.
    webhook_max_attempts: int = 12
    webhook_backoff_base: float = 2.0
    webhook_backoff_max: float = 3600.0
    # Per request (connect, write, read): Chatwoot's WEBHOOK_TIMEOUT default.
    webhook_timeout: float = 5.0
    webhook_concurrency: int = 8
    # Receivers on loopback, private or link-local addresses are refused unless allowed.
    webhook_allow_private: bool = False
    # Operations (docs/operations.md). Prometheus metrics at ``metrics_path``; a token, when
    # set, is required as ``Authorization: Bearer``. Off: no /metrics and no HTTP timing.
    metrics_enabled: bool = True
    metrics_path: str = "/metrics"
    metrics_token: str = ""
    # Logs: "text" or "json" (one object per line), at this level; the access log is one line
    # per request through the same formatter (off by default: it costs a line per request).
    log_format: str = "text"
    log_level: str = "info"
    access_log: bool = False
    # Names this node in JSON log lines; empty means the host name.
    node_id: str = ""
    # At shutdown /ready answers 503 this long before websockets are told to reconnect, so a
    # load balancer stops sending new clients first.
    drain_seconds: float = 0.0
    # /openapi.json and the /docs page that renders it (docs/api.md). They describe the code,
    # not the deployment's data; off hides them.
    api_docs: bool = True
    # Set by ``serve --demo`` (never from the environment): the inbox the /demo page chats with.
    demo_inbox: str = ""

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def sqlite_path(self) -> str:
        if not self.database_url.startswith("sqlite:///"):
            raise SettingsError(f"not a sqlite URL: {self.database_url!r}")
        return self.database_url[len("sqlite:///") :]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = e.get("INBOXGATE_" + name)
            return value if value not in (None, "") else None

        def integer(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"INBOXGATE_{name} must be an integer, got {raw!r}") from None
            if value < 0:
                raise SettingsError(f"INBOXGATE_{name} must be >= 0, got {value}")
            return value

        def number(name: str, default: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"INBOXGATE_{name} must be a number, got {raw!r}") from None
            if not value >= 0 or value == float("inf"):
                raise SettingsError(f"INBOXGATE_{name} must be a finite number >= 0, got {raw!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = get(name)
            if raw is None:
                return default
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"INBOXGATE_{name} must be 1 or 0, got {raw!r}")

        def listing(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = get(name)
            if raw is None:
                return default
            return tuple(p.strip() for p in raw.split(",") if p.strip())

        def addresses(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            # Normalised as uvicorn compares them: it would silently never match a network
            # written with host bits (10.0.0.1/8) or a misspelt address.
            normalised = []
            for value in listing(name, default):
                try:
                    if value != "*":
                        value = str(
                            ipaddress.ip_network(value, strict=False)
                            if "/" in value
                            else ipaddress.ip_address(value)
                        )
                except ValueError:
                    raise SettingsError(
                        f"INBOXGATE_{name} must list IP addresses, networks (CIDR) or *, "
                        f"got {value!r}"
                    ) from None
                normalised.append(value)
            return tuple(normalised)

        base = cls()
        sync = (get("SQLITE_SYNCHRONOUS") or base.sqlite_synchronous).lower()
        if sync not in ("full", "normal"):
            raise SettingsError(
                f"INBOXGATE_SQLITE_SYNCHRONOUS must be full or normal, got {sync!r}"
            )
        url = get("DATABASE_URL") or base.database_url
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError(
                f"INBOXGATE_DATABASE_URL must be sqlite:///PATH or postgresql://..., got {url!r}"
            )
        redis_url = get("REDIS_URL") or base.redis_url
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                "INBOXGATE_REDIS_URL must be redis://, rediss:// or unix://... (it may hold a "
                f"password, so only its scheme is shown: {redis_url.partition(':')[0]!r})"
            )
        data_dir = Path(get("DATA_DIR") or base.data_dir)
        metrics_path = get("METRICS_PATH") or base.metrics_path
        if not metrics_path.startswith("/") or metrics_path in ("/", "/health", "/ready"):
            raise SettingsError(
                f"INBOXGATE_METRICS_PATH must be a path like /metrics, got {metrics_path!r}"
            )
        transport = (get("CABLE_TRANSPORT") or base.cable_transport).lower()
        if transport not in ("lean", "asgi"):
            raise SettingsError(
                f"INBOXGATE_CABLE_TRANSPORT must be lean or asgi, got {transport!r}"
            )
        log_format = (get("LOG_FORMAT") or base.log_format).lower()
        if log_format not in LOG_FORMATS:
            raise SettingsError(f"INBOXGATE_LOG_FORMAT must be text or json, got {log_format!r}")
        log_level = (get("LOG_LEVEL") or base.log_level).lower()
        if log_level not in LOG_LEVELS:
            raise SettingsError(
                f"INBOXGATE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}"
            )
        secret_key = get("SECRET_KEY")
        if secret_key is None:
            secret_key = "" if url.startswith("postgres") else stored_secret_key(data_dir)
        return cls(
            database_url=url,
            redis_url=redis_url,
            redis_prefix=get("REDIS_PREFIX") or base.redis_prefix,
            data_dir=data_dir,
            public_url=(get("PUBLIC_URL") or "").rstrip("/"),
            secret_key=secret_key,
            sqlite_synchronous=sync,
            max_body_bytes=integer("MAX_BODY_BYTES", base.max_body_bytes),
            max_json_bytes=integer("MAX_JSON_BYTES", base.max_json_bytes),
            max_attachment_bytes=integer("MAX_ATTACHMENT_BYTES", base.max_attachment_bytes),
            max_attachments=integer("MAX_ATTACHMENTS", base.max_attachments),
            attachment_url_ttl=integer("ATTACHMENT_URL_TTL", base.attachment_url_ttl),
            rate_limit_per_ip=integer("RATE_LIMIT_PER_IP", base.rate_limit_per_ip),
            rate_limit_window=integer("RATE_LIMIT_WINDOW", base.rate_limit_window) or 60,
            rate_limit_safelist=listing("RATE_LIMIT_SAFELIST", base.rate_limit_safelist),
            cable_connects_per_ip=integer("CABLE_CONNECTS_PER_IP", base.cable_connects_per_ip),
            forwarded_allow_ips=addresses("FORWARDED_ALLOW_IPS", base.forwarded_allow_ips),
            header_timeout=number("HEADER_TIMEOUT", base.header_timeout) or base.header_timeout,
            max_connections=integer("MAX_CONNECTIONS", base.max_connections),
            messages_per_minute=integer("MESSAGES_PER_MINUTE", base.messages_per_minute),
            cors_origins=listing("CORS_ORIGINS", base.cors_origins),
            csat_lock_days=integer("CSAT_LOCK_DAYS", base.csat_lock_days),
            event_retention_days=integer("EVENT_RETENTION_DAYS", base.event_retention_days),
            cable_session_ttl=integer("CABLE_SESSION_TTL", base.cable_session_ttl),
            cable_send_buffer_bytes=max(
                4096, integer("CABLE_SEND_BUFFER_BYTES", base.cable_send_buffer_bytes)
            ),
            cable_reconcile_seconds=number("CABLE_RECONCILE_SECONDS", base.cable_reconcile_seconds),
            cable_transport=transport,
            typing_timeout=integer("TYPING_TIMEOUT", base.typing_timeout) or base.typing_timeout,
            presence_window=integer("PRESENCE_WINDOW", base.presence_window)
            or base.presence_window,
            webhook_max_attempts=integer("WEBHOOK_MAX_ATTEMPTS", base.webhook_max_attempts)
            or base.webhook_max_attempts,
            webhook_backoff_base=number("WEBHOOK_BACKOFF_BASE", base.webhook_backoff_base),
            webhook_backoff_max=number("WEBHOOK_BACKOFF_MAX", base.webhook_backoff_max),
            webhook_timeout=number("WEBHOOK_TIMEOUT", base.webhook_timeout) or base.webhook_timeout,
            webhook_concurrency=integer("WEBHOOK_CONCURRENCY", base.webhook_concurrency)
            or base.webhook_concurrency,
            webhook_allow_private=flag("WEBHOOK_ALLOW_PRIVATE", base.webhook_allow_private),
            metrics_enabled=flag("METRICS", base.metrics_enabled),
            metrics_path=metrics_path,
            metrics_token=get("METRICS_TOKEN") or "",
            log_format=log_format,
            log_level=log_level,
            access_log=flag("ACCESS_LOG", base.access_log),
            node_id=get("NODE_ID") or "",
            drain_seconds=number("DRAIN_SECONDS", base.drain_seconds),
            api_docs=flag("API_DOCS", base.api_docs),
        )


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
