"""The ``inboxgate`` command line: migrations, provisioning, the demo, and clean errors."""

from __future__ import annotations

import contextlib
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway import cli
from gateway.settings import Settings
from tests.postgres_helpers import fresh_database_sync


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "INBOXGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'inboxgate.db'}",
        "INBOXGATE_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def invoke(env: dict[str, str]) -> Any:
    runner = CliRunner()

    def run(command: str, **extra_env: str) -> Result:
        return runner.invoke(
            cli.main, shlex.split(command), env={**env, **extra_env}, catch_exceptions=False
        )

    return run


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def make_account(invoke: Any, name: str = "Acme") -> int:
    return int(as_json(invoke(f"account create {shlex.quote(name)} --json"))["id"])


# -- migrate ---------------------------------------------------------------------------------


def test_migrate_applies_then_reports_up_to_date(invoke: Any) -> None:
    first = invoke("migrate")
    assert first.exit_code == 0
    assert "applied migrations: 1" in first.stdout
    second = invoke("migrate")
    assert second.exit_code == 0
    assert "up to date" in second.stdout


def test_bad_database_url_is_a_clean_error(invoke: Any) -> None:
    result = invoke("migrate", INBOXGATE_DATABASE_URL="mysql://nope")
    assert result.exit_code == 1
    assert "INBOXGATE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_postgres_is_a_clean_error(invoke: Any) -> None:
    url = "postgresql://postgres@127.0.0.1:1/db"  # nothing listens on port 1
    result = invoke("account create X", INBOXGATE_DATABASE_URL=url)
    assert result.exit_code == 1
    assert "StoreUnavailable" in result.stderr and "postgresql unreachable" in result.stderr
    assert "Traceback" not in result.output


# -- account ---------------------------------------------------------------------------------


def test_account_create_summary(invoke: Any) -> None:
    result = invoke("account create Acme")
    assert result.exit_code == 0
    assert "Created account 1: Acme" in result.stdout


def test_account_create_json(invoke: Any) -> None:
    payload = as_json(invoke("account create Acme --json"))
    assert payload["id"] == 1
    assert payload["name"] == "Acme"


def test_account_create_blank_name(invoke: Any) -> None:
    result = invoke("account create '  '")
    assert result.exit_code != 0
    assert "must not be blank" in result.stderr


# -- inbox -----------------------------------------------------------------------------------


def test_inbox_create_summary(invoke: Any) -> None:
    account_id = make_account(invoke)
    result = invoke(f"inbox create --account {account_id} --name Web")
    assert result.exit_code == 0
    assert "Created inbox 1: Web" in result.stdout
    assert "identifier:" in result.stdout
    assert "hmac_token:" in result.stdout


def test_inbox_create_json_with_options(invoke: Any) -> None:
    account_id = make_account(invoke)
    payload = as_json(
        invoke(
            f"inbox create --account {account_id} --name Web --hmac-mandatory --csat"
            " --csat-message 'How did we do?' --csat-display-type star"
            " --webhook-url https://hooks.example.com/in --lock-to-single-conversation"
            " --allowed-origin https://shop.example.com/ --allowed-origin http://localhost:3000"
            " --json"
        )
    )
    assert payload["id"] == 1
    assert payload["account_id"] == account_id
    assert len(payload["identifier"]) == 24
    assert len(payload["hmac_token"]) == 24
    assert payload["hmac_mandatory"] is True
    assert payload["csat_survey_enabled"] is True
    assert payload["csat_message"] == "How did we do?"
    assert payload["csat_display_type"] == "star"
    assert payload["webhook_url"] == "https://hooks.example.com/in"
    assert payload["lock_to_single_conversation"] is True
    assert payload["allowed_origins"] == ["https://shop.example.com", "http://localhost:3000"]
    assert payload["public_api_path"] == f"/public/api/v1/inboxes/{payload['identifier']}"


def test_inbox_create_unknown_account(invoke: Any) -> None:
    make_account(invoke)
    result = invoke("inbox create --account 42 --name Web --json")
    assert result.exit_code == 1
    assert "account 42 not found" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("option", "value"),
    [("--webhook-url", "ftp://example.com"), ("--webhook-url", "not a url"),
     ("--allowed-origin", "https://shop.example.com/path")],
)  # fmt: skip
def test_inbox_create_bad_url(invoke: Any, option: str, value: str) -> None:
    account_id = make_account(invoke)
    result = invoke(f"inbox create --account {account_id} --name W {option} {shlex.quote(value)}")
    assert result.exit_code == 2
    assert option in result.stderr


# -- user ------------------------------------------------------------------------------------


def test_user_create_summary(invoke: Any) -> None:
    account_id = make_account(invoke)
    result = invoke(f"user create --account {account_id} --email Ann@Example.com --name Ann")
    assert result.exit_code == 0
    assert "Created user 1: Ann <ann@example.com> (agent of account 1)" in result.stdout
    assert "access token:" in result.stdout


def test_user_create_summary_prints_what_the_readme_promises(
    invoke: Any, settings: Settings
) -> None:
    from gateway.domain.provisioning import find_user_by_token

    account_id = make_account(invoke)
    inbox_id = int(as_json(invoke(f"inbox create --account {account_id} --name Web --json"))["id"])
    result = invoke(
        f"user create --account {account_id} --email bob@example.com --name Bob --inbox {inbox_id}"
    )
    assert result.exit_code == 0, result.output
    fields = dict(
        line.strip().split(": ", 1) for line in result.stdout.splitlines() if line.startswith("  ")
    )
    token = fields["access token"]
    user = cli._run(settings, lambda store: store.read(find_user_by_token, token))
    assert user is not None
    # The pubsub_token printed is the user's own, which subscribes the agent on /cable.
    assert fields["pubsub_token"] == user.pubsub_token
    assert f'"account_id":{account_id},"user_id":{user.id}' in result.stdout
    assert fields["hears"] == f"inbox {inbox_id}"

    admin = invoke(
        f"user create --account {account_id} --email a@b.co --name A --role administrator"
    )
    assert "  hears: every inbox of the account" in admin.stdout


def test_user_create_json_token_authenticates(invoke: Any, settings: Settings) -> None:
    from gateway.domain.provisioning import find_user_by_token, user_role

    account_id = make_account(invoke)
    payload = as_json(
        invoke(
            f"user create --account {account_id} --email bob@example.com --name Bob"
            " --role administrator --json"
        )
    )
    assert payload["id"] == 1
    assert payload["role"] == "administrator"
    assert payload["email"] == "bob@example.com"
    token = payload["access_token"]

    async def check(store: Any) -> tuple[Any, Any]:
        user = await store.read(find_user_by_token, token)
        return user, await store.read(user_role, account_id, user.id)

    user, role = cli._run(settings, check)
    assert user.id == payload["id"]
    assert role == "administrator"


def test_user_create_unknown_account(invoke: Any) -> None:
    result = invoke("user create --account 7 --email a@b.co --name A")
    assert result.exit_code == 1
    assert "account 7 not found" in result.stderr


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_user_create_duplicate_email(invoke: Any, engine: str) -> None:
    # The unique index is what refuses the second user (as when two creates race), so each
    # engine's violation must come out as the same one line.
    with contextlib.ExitStack() as stack:
        url = {}
        if engine == "postgresql":
            url["INBOXGATE_DATABASE_URL"] = stack.enter_context(fresh_database_sync())
        account_id = int(as_json(invoke("account create Acme --json", **url))["id"])
        first = invoke(f"user create --account {account_id} --email a@b.co --name A", **url)
        assert first.exit_code == 0, first.output
        again = invoke(f"user create --account {account_id} --email A@B.CO --name B", **url)
        assert again.exit_code == 1
        assert again.stderr == "Error: a user with e-mail a@b.co already exists\n"


def test_user_create_bad_email(invoke: Any) -> None:
    account_id = make_account(invoke)
    result = invoke(f"user create --account {account_id} --email nope --name A")
    assert result.exit_code == 2
    assert "--email" in result.stderr


# -- the demo --------------------------------------------------------------------------------


def test_provision_demo_is_idempotent(settings: Settings) -> None:
    first = cli.provision_demo(settings)
    second = cli.provision_demo(settings)
    assert second == first
    saved = json.loads((settings.data_dir / "demo.json").read_text())
    assert saved["inbox_identifier"] == first.inbox_identifier
    assert saved["access_token"] == first.access_token


def test_provision_demo_without_saved_file_keeps_inbox_and_rotates_token(
    settings: Settings,
) -> None:
    from gateway.domain.provisioning import find_user_by_token, list_inboxes

    first = cli.provision_demo(settings)
    (settings.data_dir / "demo.json").unlink()
    second = cli.provision_demo(settings)
    assert (second.account_id, second.inbox_id, second.user_id) == (
        first.account_id,
        first.inbox_id,
        first.user_id,
    )
    assert second.inbox_identifier == first.inbox_identifier
    assert second.hmac_token == first.hmac_token
    assert second.access_token != first.access_token
    assert cli.provision_demo(settings) == second

    async def check(store: Any) -> tuple[Any, Any, Any]:
        return (
            await store.read(find_user_by_token, first.access_token),
            await store.read(find_user_by_token, second.access_token),
            await store.read(list_inboxes, second.account_id),
        )

    old, new, inboxes = cli._run(settings, check)
    assert old is None
    assert new is not None and new.id == second.user_id
    assert [i.name for i in inboxes] == ["Demo inbox"]
    assert inboxes[0].csat_survey_enabled


def test_provision_demo_survives_a_corrupt_file(settings: Settings) -> None:
    first = cli.provision_demo(settings)
    (settings.data_dir / "demo.json").write_text("{not json")
    second = cli.provision_demo(settings)
    assert second.inbox_identifier == first.inbox_identifier


def test_provision_demo_with_stale_file_from_another_database(
    settings: Settings, tmp_path: Path
) -> None:
    first = cli.provision_demo(settings)
    other = settings.with_(database_url=f"sqlite:///{tmp_path / 'other.db'}")
    second = cli.provision_demo(other)
    assert second.inbox_identifier != first.inbox_identifier
    assert cli.provision_demo(other) == second


def test_demo_banner_points_at_loopback_for_wildcard_host(settings: Settings) -> None:
    info = cli.provision_demo(settings)
    banner = cli.demo_banner(info, "0.0.0.0", 8123)
    url = f"http://127.0.0.1:8123/public/api/v1/inboxes/{info.inbox_identifier}"
    assert url in banner
    assert info.access_token in banner
    assert info.hmac_token in banner
    assert "/contacts" in banner
    assert "$CONV/messages" in banner


def test_serve_migrates_provisions_and_starts_uvicorn(
    invoke: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import server

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(server, "run", lambda *a: calls.append(a))
    result = invoke("serve --demo --host 0.0.0.0 --port 9001")
    assert result.exit_code == 0, result.output
    info = cli.provision_demo(settings)
    assert f"http://127.0.0.1:9001/public/api/v1/inboxes/{info.inbox_identifier}" in result.stdout
    (run_settings, host, port) = calls[0]
    assert (host, port) == ("0.0.0.0", 9001)
    assert run_settings.database_url == settings.database_url


def test_serve_takes_its_port_from_inboxgate_port_unless_given(
    invoke: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import server

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(server, "run", lambda *a: calls.append(a))
    demo = invoke("serve --demo", INBOXGATE_PORT="9003")
    assert demo.exit_code == 0 and "http://127.0.0.1:9003/demo" in demo.stdout
    assert invoke("serve --port 9004", INBOXGATE_PORT="9003").exit_code == 0
    assert [port for (_, _, port) in calls] == [9003, 9004]
    refused = invoke("serve", INBOXGATE_PORT="http")
    assert refused.exit_code == 2 and "INBOXGATE_PORT" in refused.output


def test_serve_refuses_several_workers_with_the_in_process_broker(invoke: Any) -> None:
    result = invoke("serve --workers 2")
    assert result.exit_code == 2
    assert "shared broker" in result.output


@pytest.mark.parametrize(
    ("transport", "ws"), [("lean", "LeanConnection"), ("asgi", "websockets-sansio")]
)
def test_server_config_takes_websockets_on_the_chosen_transport_without_deflate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, transport: str, ws: str
) -> None:
    from gateway import server

    configs: list[Any] = []
    monkeypatch.setattr(server.GatewayServer, "run", lambda self: configs.append(self.config))
    server.run(settings.with_(cable_transport=transport), "127.0.0.1", 9002)
    config = configs[0]
    assert getattr(config.ws, "__name__", config.ws) == ws
    assert config.ws_per_message_deflate is False
    assert (config.loop, config.http) == ("uvloop", server.GuardedHttpProtocol)


def test_server_config_believes_forwarded_headers_only_from_configured_proxies(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import server

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own variable is not consulted
    configs: list[Any] = []
    monkeypatch.setattr(server.GatewayServer, "run", lambda self: configs.append(self.config))
    server.run(settings, "127.0.0.1", 9002)
    proxies = settings.with_(forwarded_allow_ips=("10.0.0.0/8", "127.0.0.1"))
    server.run(proxies, "127.0.0.1", 9002)
    server.run(settings.with_(forwarded_allow_ips=("*", "10.0.0.1")), "127.0.0.1", 9002)
    default, configured, everyone = configs
    assert default.proxy_headers is False
    assert (configured.proxy_headers, configured.forwarded_allow_ips) == (
        True, ["10.0.0.0/8", "127.0.0.1"],
    )  # fmt: skip
    assert everyone.forwarded_allow_ips == ["*"]


def test_server_config_carries_the_connection_limits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import connections, server

    configs: list[Any] = []
    monkeypatch.setattr(server.GatewayServer, "run", lambda self: configs.append(self.config))
    server.run(settings.with_(max_connections=50, header_timeout=2.5), "127.0.0.1", 9002)
    server.run(settings, "127.0.0.1", 9002)
    configured, derived = (c.connection_guard for c in configs)
    assert (configured.max_connections, configured.header_timeout) == (50, 2.5)
    assert derived.max_connections == connections.connection_cap(0)
    assert derived.header_timeout == 10.0
    workers = server.WorkerConfig(settings.with_(max_connections=7), "127.0.0.1", 9003, 2)
    assert workers.connection_guard.max_connections == 7
    assert workers.http is server.GuardedHttpProtocol
