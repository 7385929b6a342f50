"""Settings come from INBOXGATE_* variables, in one place, with clear errors."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import msgspec
import pytest

from gateway.settings import Settings, SettingsError, stored_secret_key, variable


def test_defaults_are_chatwoot_limits(tmp_path: Path) -> None:
    s = Settings.from_env({"INBOXGATE_DATA_DIR": str(tmp_path)})
    assert s.database_url == "sqlite:///./inboxgate.db"
    assert s.rate_limit_per_ip == 3000
    assert s.messages_per_minute == 200
    assert s.max_attachments == 15
    assert s.max_attachment_bytes == 40 * 1024 * 1024
    assert s.cors_origins == ("*",)
    assert s.sqlite_synchronous == "full"
    assert s.header_timeout == 10.0
    assert s.max_connections == 0  # derived from the file descriptor limit
    assert s.cable_transport == "lean"
    assert s.cable_connects_per_ip == 300
    assert s.forwarded_allow_ips == ()  # X-Forwarded-For is believed from nobody


def test_forwarded_allow_ips_are_normalised_as_uvicorn_compares_them(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "INBOXGATE_DATA_DIR": str(tmp_path),
            "INBOXGATE_FORWARDED_ALLOW_IPS": "127.0.0.1, 10.1.2.3/8,::1,*",
            "INBOXGATE_HEADER_TIMEOUT": "2.5",
            "INBOXGATE_MAX_CONNECTIONS": "500",
            "INBOXGATE_CABLE_CONNECTS_PER_IP": "0",
        }
    )
    assert s.forwarded_allow_ips == ("127.0.0.1", "10.0.0.0/8", "::1", "*")
    assert (s.header_timeout, s.max_connections, s.cable_connects_per_ip) == (2.5, 500, 0)


def test_values_are_read_and_parsed(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "INBOXGATE_DATA_DIR": str(tmp_path),
            "INBOXGATE_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
            "INBOXGATE_RATE_LIMIT_PER_IP": "10",
            "INBOXGATE_CORS_ORIGINS": "https://a.example, https://b.example",
            "INBOXGATE_SQLITE_SYNCHRONOUS": "NORMAL",
            "INBOXGATE_PUBLIC_URL": "https://chat.example/",
            "INBOXGATE_CABLE_TRANSPORT": "ASGI",
            "INBOXGATE_DATABASE_POOL_SIZE": "3",
        }
    )
    assert s.cable_transport == "asgi"
    assert s.database_pool_size == 3
    assert s.sqlite_path == f"{tmp_path}/x.db"
    assert s.rate_limit_per_ip == 10
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.sqlite_synchronous == "normal"
    assert s.public_url == "https://chat.example"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("INBOXGATE_RATE_LIMIT_PER_IP", "lots", "must be an integer >= 0, got 'lots'"),
        ("INBOXGATE_MAX_ATTACHMENTS", "-1", "must be an integer >= 0, got '-1'"),
        ("INBOXGATE_SQLITE_SYNCHRONOUS", "off", "full or normal"),
        ("INBOXGATE_DATABASE_URL", "mysql://x", "sqlite:///PATH"),
        ("INBOXGATE_FORWARDED_ALLOW_IPS", "proxy.internal", "IP addresses, networks"),
        ("INBOXGATE_HEADER_TIMEOUT", "soon", "must be a finite number >= 0"),
        ("INBOXGATE_HEADER_TIMEOUT", "inf", "must be a finite number >= 0"),
        ("INBOXGATE_MAX_CONNECTIONS", "-5", "must be an integer >= 0"),
        ("INBOXGATE_CABLE_TRANSPORT", "uvicorn", "must be lean or asgi"),
        ("INBOXGATE_DATABASE_POOL_SIZE", "0", "must be an integer >= 1"),
        ("INBOXGATE_DATABASE_POOL_SIZE", "many", "must be an integer"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, needle: str) -> None:
    with pytest.raises(SettingsError, match=needle):
        Settings.from_env({"INBOXGATE_DATA_DIR": str(tmp_path), name: value})


def test_documented_fallbacks_and_flag_words(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "INBOXGATE_DATA_DIR": str(tmp_path),
            "INBOXGATE_RATE_LIMIT_WINDOW": "0",  # 0 means 60
            "INBOXGATE_HEADER_TIMEOUT": "0",  # 0 means 10
            "INBOXGATE_CABLE_SEND_BUFFER_BYTES": "10",  # at least 4096
            "INBOXGATE_API_DOCS": "Off",
            "INBOXGATE_WEBHOOK_ALLOW_PRIVATE": "yes",
            "INBOXGATE_DEMO_INBOX": "abc",  # set by serve --demo only
            "INBOXGATE_METRICS_PATH": "/healthz",
        }
    )
    assert (s.rate_limit_window, s.header_timeout, s.cable_send_buffer_bytes) == (60, 10, 4096)
    assert (s.api_docs, s.webhook_allow_private, s.demo_inbox) == (False, True, "")
    assert s.metrics_path == "/healthz"


def test_a_database_url_in_an_error_shows_only_its_scheme(tmp_path: Path) -> None:
    env = {"INBOXGATE_DATA_DIR": str(tmp_path), "INBOXGATE_DATABASE_URL": "mysql://u:pw@db/x"}
    with pytest.raises(SettingsError, match="INBOXGATE_DATABASE_URL must be sqlite") as err:
        Settings.from_env(env)
    assert "pw" not in str(err.value) and "'mysql'" in str(err.value)


def test_secret_key_is_generated_once_and_shared(tmp_path: Path) -> None:
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(stored_secret_key(tmp_path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temp files left
    explicit = Settings.from_env(
        {"INBOXGATE_DATA_DIR": str(tmp_path), "INBOXGATE_SECRET_KEY": "k" * 32}
    )
    assert explicit.secret_key == "k" * 32


def test_operations_settings(tmp_path: Path) -> None:
    base = {"INBOXGATE_DATA_DIR": str(tmp_path)}
    s = Settings.from_env(base)
    assert (s.metrics_enabled, s.metrics_path, s.metrics_token) == (True, "/metrics", "")
    assert (s.log_format, s.log_level, s.access_log, s.drain_seconds) == ("text", "info", False, 0)
    s = Settings.from_env(
        {
            **base,
            "INBOXGATE_METRICS": "0",
            "INBOXGATE_METRICS_PATH": "/internal/metrics",
            "INBOXGATE_METRICS_TOKEN": "t0ken",
            "INBOXGATE_LOG_FORMAT": "JSON",
            "INBOXGATE_LOG_LEVEL": "Warning",
            "INBOXGATE_ACCESS_LOG": "1",
            "INBOXGATE_NODE_ID": "node-a",
            "INBOXGATE_DRAIN_SECONDS": "2.5",
        }
    )
    assert (s.metrics_enabled, s.metrics_path, s.metrics_token) == (
        False, "/internal/metrics", "t0ken",
    )  # fmt: skip
    assert (s.log_format, s.log_level, s.access_log) == ("json", "warning", True)
    assert (s.node_id, s.drain_seconds) == ("node-a", 2.5)
    for name, value, needle in [
        ("INBOXGATE_METRICS_PATH", "metrics", "a path like /metrics"),
        ("INBOXGATE_METRICS_PATH", "/ready", "a path like /metrics"),
        ("INBOXGATE_LOG_FORMAT", "xml", "text or json"),
        ("INBOXGATE_LOG_LEVEL", "loud", "one of debug"),
        ("INBOXGATE_DRAIN_SECONDS", "-1", "finite number"),
    ]:
        with pytest.raises(SettingsError, match=needle):
            Settings.from_env({**base, name: value})


# -- the docs' settings tables ----------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs"
ROW = re.compile(r"^\| `(INBOXGATE_\w+)` \| ([^|]*) \|", re.MULTILINE)
# Defaults the table says in words: a key generated and kept, the host name.
IN_WORDS = {"INBOXGATE_SECRET_KEY", "INBOXGATE_NODE_ID"}


def documented(page: str) -> dict[str, str]:
    """The variables of a page's settings tables, each with its Default cell."""
    return {name: cell.strip() for name, cell in ROW.findall((DOCS / page).read_text())}


def default_as_documented(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_every_setting_is_in_the_deployment_table_with_its_default() -> None:
    table = documented("deployment.md")
    settings = {
        variable(f.name): f.default
        for f in msgspec.structs.fields(Settings)
        if f.name != "demo_inbox"  # set by serve --demo, never from the environment
    }
    assert sorted(table) == sorted(settings)
    for name, cell in table.items():
        if name in IN_WORDS:
            continue
        shown = "" if cell.startswith("*(empty)*") else cell.split("`")[1]
        default = settings[name]
        if isinstance(default, Path):
            assert Path(shown) == default, name
        else:
            assert shown == default_as_documented(default), name


def test_every_documented_variable_is_a_setting_with_one_default() -> None:
    variables = {variable(f.name) for f in msgspec.structs.fields(Settings)}
    reference = documented("deployment.md")
    for page in DOCS.glob("*.md"):
        for name, cell in documented(page.name).items():
            assert name in variables, f"{page.name} documents {name}, which nothing reads"
            # Another page's table (operations.md) says the same default.
            assert cell.split("`")[:2] == reference[name].split("`")[:2], (page.name, name)


def test_a_postgresql_store_gets_the_pool_size(tmp_path: Path) -> None:
    from gateway.store import open_store
    from gateway.store.postgres import PostgresStore

    url = "postgresql://nobody@127.0.0.1:1/none"
    settings = Settings.from_env(
        {"INBOXGATE_DATA_DIR": str(tmp_path), "INBOXGATE_DATABASE_URL": url,
         "INBOXGATE_DATABASE_POOL_SIZE": "4"}
    )  # fmt: skip
    store = open_store(settings)
    assert isinstance(store, PostgresStore)
    assert store.pool_size == 4
