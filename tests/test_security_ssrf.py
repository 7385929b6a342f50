"""The SSRF guard at save time, everywhere a URL receives events: agent bots' outgoing_url (the
application API and the Platform API), the command line's ``--webhook-url``; and the address
forms that carry an IPv4 address inside IPv6 (mapped, NAT64, compatible, translated, 6to4)."""

from __future__ import annotations

import ipaddress
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway import cli
from gateway.webhooks import guard
from tests.admin_helpers import ADMIN_TOKEN, PLATFORM_TOKEN, account_url, admin, auth, platform_app
from tests.routes_helpers import Env, EnvFactory

pytestmark = pytest.mark.anyio

PLATFORM = "/platform/api/v1"
# Every one reaches the gateway's own host, its network or the cloud metadata service.
REFUSED = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",  # a name: judged by what it resolves to
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::808:808]/hook",  # local-use NAT64: refused outright
    "http://[::7f00:1]/hook",  # IPv4-compatible
    "http://[::808:808]/hook",  # IPv4-compatible, even of a public address (deprecated)
    "http://[::ffff:0:7f00:1]/hook",  # IPv4-translated
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[fd00::1]/hook",
    "http://[fec0::1]/hook",  # site-local
]


# -- the guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: what a DNS64 resolver answers
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::a00:1", False),
        ("64:ff9b::c0a8:1", False),
        ("64:ff9b::6440:1", False),  # 100.64.0.1, shared address space
        ("64:ff9b:1::808:808", False),
        ("64:ff9b:1:ffff::1", False),
        ("::7f00:1", False),
        ("::808:808", False),
        ("::ffff:808:808", True),
        ("::ffff:7f00:1", False),
        ("::ffff:a9fe:a9fe", False),
        ("::ffff:0:808:808", False),
        ("::ffff:0:7f00:1", False),
        ("2002:808:808::1", True),
        ("2002:a00:1::1", False),
        ("fec0::1", False),
        ("100::1", False),  # discard-only
        ("4000::1", False),  # reserved, outside 2000::/3
        ("2606:4700:4700::1111", True),
        ("2001:db8::1", False),
        ("8.8.8.8", True),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert guard.is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize("url", REFUSED)
async def test_check_refuses(url: str) -> None:
    with pytest.raises(guard.UrlRefused):
        await guard.check(url, allow_private=False)
    with pytest.raises(guard.UrlRefused):
        await guard.check_saved(url, allow_private=False)
    assert (await guard.check(url, allow_private=True)).url == url


async def test_a_name_resolving_to_nat64_of_a_private_address_is_refused() -> None:
    async def dns64(host: str, port: int) -> list[str]:
        return ["64:ff9b::a00:5"]  # 10.0.0.5, through the NAT64 gateway

    with pytest.raises(guard.UrlRefused, match="non-public"):
        await guard.check("https://hooks.example/x", allow_private=False, resolver=dns64)

    async def public(host: str, port: int) -> list[str]:
        return ["64:ff9b::808:808"]

    target = await guard.check("https://hooks.example/x", allow_private=False, resolver=public)
    assert target.url == "https://[64:ff9b::808:808]/x"


async def test_check_saved_lets_an_unresolvable_name_pass() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        raise guard.UrlUnresolvable(f"cannot resolve {host}")

    await guard.check_saved("https://later.example/x", allow_private=False, resolver=nothing)
    with pytest.raises(guard.UrlRefused, match="not an http"):
        await guard.check_saved("ftp://later.example/x", allow_private=False, resolver=nothing)


# -- agent bots: the application API and the Platform API -------------------------------------


async def _create(env: Env, outgoing_url: str) -> Any:
    return await env.client.post(
        account_url(env, "/agent_bots"), headers=auth(ADMIN_TOKEN),
        json={"name": "Triage", "outgoing_url": outgoing_url},
    )  # fmt: skip


def _assert_refused(r: Any) -> None:
    """422 with Chatwoot's validation error body, naming the attribute."""
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"message", "attributes"}
    assert body["attributes"] == ["outgoing_url"]
    assert body["message"].startswith("Outgoing url is not allowed: ")


@pytest.mark.parametrize("url", REFUSED)
async def test_account_bot_refuses_private_outgoing_url(env: Env, url: str) -> None:
    await admin(env)
    _assert_refused(await _create(env, url))


async def test_account_bot_update_is_checked_too(env: Env) -> None:
    await admin(env)
    r = await _create(env, "https://bot.invalid/hook")  # no address yet: accepted, as webhooks
    assert r.status_code == 200, r.text
    bot_url = account_url(env, f"/agent_bots/{r.json()['id']}")
    r = await env.client.patch(
        bot_url, headers=auth(ADMIN_TOKEN),
        json={"agent_bot": {"outgoing_url": "http://[64:ff9b::7f00:1]:8080/"}},
    )  # fmt: skip
    _assert_refused(r)
    r = await env.client.patch(bot_url, headers=auth(ADMIN_TOKEN), json={"name": "Renamed"})
    assert r.status_code == 200 and r.json()["outgoing_url"] == "https://bot.invalid/hook"
    r = await env.client.patch(bot_url, headers=auth(ADMIN_TOKEN), json={"outgoing_url": ""})
    assert r.status_code == 200 and r.json()["outgoing_url"] is None


async def test_the_setting_allows_loopback_bots(make_env: EnvFactory) -> None:
    async with make_env(webhook_allow_private=True) as env:
        await admin(env)
        r = await _create(env, "http://127.0.0.1:9/hook")
        assert r.status_code == 200, r.text
        assert r.json()["outgoing_url"] == "http://127.0.0.1:9/hook"


async def test_platform_bot_refuses_private_outgoing_url(env: Env) -> None:
    await platform_app(env)
    platform = auth(PLATFORM_TOKEN)
    for url in ("http://169.254.169.254/", "http://[::ffff:10.0.0.1]/"):
        r = await env.client.post(
            PLATFORM + "/agent_bots", headers=platform, json={"name": "G", "outgoing_url": url}
        )
        _assert_refused(r)
    r = await env.client.post(
        PLATFORM + "/agent_bots", headers=platform,
        json={"name": "G", "outgoing_url": "https://bot.invalid/ok"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = await env.client.patch(
        f"{PLATFORM}/agent_bots/{r.json()['id']}", headers=platform,
        json={"outgoing_url": "http://[::7f00:1]/"},
    )  # fmt: skip
    _assert_refused(r)


# -- the command line --------------------------------------------------------------------------


def _inbox_create(tmp_path: Path, webhook_url: str, **extra: str) -> Result:
    env = {
        "INBOXGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'inboxgate.db'}",
        "INBOXGATE_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }
    runner = CliRunner()
    made = runner.invoke(cli.main, ["account", "create", "Acme"], env=env)
    assert made.exit_code == 0, made.output
    command = f"inbox create --account 1 --name Web --webhook-url {shlex.quote(webhook_url)}"
    return runner.invoke(cli.main, shlex.split(command), env=env, catch_exceptions=False)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/in", "http://[64:ff9b::a00:1]/in", "http://localhost/in"]
)
def test_cli_refuses_a_private_webhook_url(tmp_path: Path, url: str) -> None:
    result = _inbox_create(tmp_path, url)
    assert result.exit_code == 2
    assert "--webhook-url" in result.stderr and "is not allowed" in result.stderr
    assert "INBOXGATE_WEBHOOK_ALLOW_PRIVATE=1" in result.stderr
    assert result.stdout == ""


def test_cli_allows_loopback_with_the_setting(tmp_path: Path) -> None:
    result = _inbox_create(tmp_path, "http://127.0.0.1:9/in", INBOXGATE_WEBHOOK_ALLOW_PRIVATE="1")
    assert result.exit_code == 0, result.output
    assert "Created inbox 1" in result.stdout
