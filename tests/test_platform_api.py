"""The Platform API (reference agent §1.5, §4): platform app tokens, accounts, users, account
users, permissibles; and ``inboxgate platform-app create``."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli
from gateway.domain import platform as platform_ops
from tests.admin_helpers import (
    ADMIN_TOKEN,
    PLATFORM_NOT_FOUND,
    PLATFORM_TOKEN,
    account_url,
    admin,
    auth,
    platform_app,
)
from tests.routes_helpers import Env

PLATFORM = "/platform/api/v1"
INVALID = {"error": "Invalid access_token"}
NON_PERMISSIBLE = {"error": "Non permissible resource"}
OTHER_TOKEN = "other-platform-token-01234"
ACCOUNT_KEYS = {
    "id",
    "name",
    "locale",
    "domain",
    "support_email",
    "features",
    "custom_attributes",
    "limits",
    "status",
}
USER_KEYS = {
    "account_id",
    "available_name",
    "avatar_url",
    "confirmed",
    "display_name",
    "message_signature",
    "email",
    "id",
    "name",
    "provider",
    "pubsub_token",
    "custom_attributes",
    "role",
    "ui_settings",
    "uid",
    "accounts",
}


async def call(env: Env, method: str, path: str, token: str = PLATFORM_TOKEN, **body: Any) -> Any:
    return await env.client.request(
        method, PLATFORM + path, headers=auth(token), json=body if body else None
    )


async def ok(env: Env, method: str, path: str, token: str = PLATFORM_TOKEN, **body: Any) -> Any:
    r = await call(env, method, path, token, **body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.anyio
async def test_only_platform_tokens_get_in(env: Env) -> None:
    await admin(env)
    await platform_app(env)
    r = await env.client.post(PLATFORM + "/accounts", json={"name": "X"})
    assert (r.status_code, r.json()) == (401, INVALID)
    for token in ("unknown-token", ADMIN_TOKEN):  # a user token is no platform token
        r = await call(env, "POST", "/accounts", token, name="X")
        assert (r.status_code, r.json()) == (401, INVALID)
    # ...and a platform token is no user token on the application API.
    r = await env.client.get(account_url(env, "/agents"), headers=auth(PLATFORM_TOKEN))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})
    r = await env.client.get("/api/v1/profile", headers=auth(PLATFORM_TOKEN))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})


@pytest.mark.anyio
async def test_accounts(env: Env) -> None:
    await platform_app(env)
    await platform_app(env, OTHER_TOKEN, "Other")
    created = await ok(
        env,
        "POST",
        "/accounts",
        name="Globex",
        locale="fr",
        support_email="help@globex.test",
        features={"inbound_emails": True},
        limits={"agents": 5},
        custom_attributes={"plan": "pro"},
    )
    assert set(created) == ACCOUNT_KEYS
    assert (created["name"], created["locale"], created["status"]) == ("Globex", "fr", "active")
    assert created["limits"] == {"agents": 5}
    url = f"/accounts/{created['id']}"
    assert await ok(env, "GET", url) == created
    updated = await ok(env, "PATCH", url, name="Globex Inc", custom_attributes={"tier": 2})
    assert updated["name"] == "Globex Inc"
    assert updated["custom_attributes"] == {"plan": "pro", "tier": 2}
    assert updated["locale"] == "fr"
    # Another app's account exists, but is not this app's to see or change.
    for method in ("GET", "PATCH"):
        r = await call(env, method, url, OTHER_TOKEN, name="Mine")
        assert (r.status_code, r.json()) == (401, NON_PERMISSIBLE)
    for path in ("/accounts/999", "/accounts/abc"):
        r = await call(env, "GET", path)
        assert (r.status_code, r.json()) == (404, PLATFORM_NOT_FOUND)
    r = await call(env, "POST", "/accounts", locale="en")
    assert (r.status_code, r.json()) == (
        422,
        {"message": "Name can't be blank", "attributes": ["name"]},
    )
    r = await call(env, "PATCH", url, status="closed")
    assert (r.status_code, r.json()) == (422, {"error": "'closed' is not a valid status"})


@pytest.mark.anyio
async def test_users_and_account_users(env: Env) -> None:
    await platform_app(env)
    account = await ok(env, "POST", "/accounts", name="Globex")
    user = await ok(
        env,
        "POST",
        "/users",
        name="Gina",
        email="Gina@Globex.test",
        password="Secr3t!pass",
        custom_attributes={"crm_id": "u-1"},
    )
    assert set(user) == USER_KEYS | {"access_token"}
    assert (user["email"], user["uid"], user["account_id"], user["accounts"]) == (
        "gina@globex.test",
        "gina@globex.test",
        None,
        [],
    )
    token = user["access_token"]
    member = await ok(
        env,
        "POST",
        f"/accounts/{account['id']}/account_users",
        user_id=user["id"],
        role="administrator",
    )
    assert (member["account_id"], member["user_id"], member["role"]) == (
        account["id"],
        user["id"],
        "administrator",
    )
    assert isinstance(member["id"], int) and member["created_at"].endswith("Z")
    # The token from the create works on the application API of the new account.
    r = await env.client.get(account_url(env, "/agents", account["id"]), headers=auth(token))
    assert r.status_code == 200 and r.json()[0]["role"] == "administrator"
    shown = await ok(env, "GET", f"/users/{user['id']}")
    assert set(shown) == USER_KEYS  # only the answer that made the token shows it
    assert (shown["account_id"], shown["role"]) == (account["id"], "administrator")
    assert shown["accounts"] == [
        {"id": account["id"], "name": "Globex", "active_at": None, "role": "administrator"}
    ]
    listed = await ok(env, "GET", f"/accounts/{account['id']}/account_users")
    assert [m["user_id"] for m in listed] == [user["id"]]
    again = await ok(
        env, "POST", f"/accounts/{account['id']}/account_users", user_id=user["id"], role="agent"
    )
    assert (again["id"], again["role"]) == (member["id"], "agent")  # an upsert
    r = await call(env, "DELETE", f"/accounts/{account['id']}/account_users", user_id=user["id"])
    assert (r.status_code, r.content) == (200, b"")
    r = await call(env, "DELETE", f"/accounts/{account['id']}/account_users", user_id=user["id"])
    assert r.status_code == 200  # a no-op when absent
    r = await env.client.get(account_url(env, "/agents", account["id"]), headers=auth(token))
    assert r.json() == {"error": "You are not authorized to access this account"}


@pytest.mark.anyio
async def test_user_update_token_and_reuse(env: Env) -> None:
    await platform_app(env)
    await platform_app(env, OTHER_TOKEN, "Other")
    user = await ok(
        env, "POST", "/users", name="Gina", email="gina@globex.test", custom_attributes={"a": 1}
    )
    url = f"/users/{user['id']}"
    updated = await ok(
        env, "PATCH", url, email="g@globex.test", display_name="G", custom_attributes={"b": 2}
    )
    assert (updated["email"], updated["display_name"], updated["available_name"]) == (
        "g@globex.test",
        "G",
        "G",
    )
    assert updated["custom_attributes"] == {"a": 1, "b": 2}
    # Creating the same e-mail again returns the app's own user, without a token.
    again = await ok(env, "POST", "/users", name="Other name", email="g@globex.test")
    assert again["id"] == user["id"] and "access_token" not in again
    assert again["name"] == "Gina"
    # Another app can neither see that user nor claim them by e-mail.
    r = await call(env, "GET", url, OTHER_TOKEN)
    assert (r.status_code, r.json()) == (401, NON_PERMISSIBLE)
    r = await call(env, "POST", "/users", OTHER_TOKEN, name="X", email="g@globex.test")
    assert (r.status_code, r.json()) == (
        422,
        {"message": "Email has already been taken", "attributes": ["email"]},
    )
    rotated = await ok(env, "POST", url + "/token")
    assert set(rotated) == {"access_token", "expiry", "user"}
    assert rotated["user"]["pubsub_token"] == user["pubsub_token"]
    r = await env.client.get("/api/v1/profile", headers=auth(rotated["access_token"]))
    assert r.status_code == 200 and r.json()["id"] == user["id"]
    r = await env.client.get("/api/v1/profile", headers=auth(user["access_token"]))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid Access Token"})
    for path in ("/users/999", "/users/999/token"):
        r = await call(env, "GET" if path.endswith("999") else "POST", path)
        assert (r.status_code, r.json()) == (404, PLATFORM_NOT_FOUND)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"email": "x@x.test"}, {"message": "Name can't be blank", "attributes": ["name"]}),
        ({"name": "X"}, {"message": "Email can't be blank", "attributes": ["email"]}),
        (
            {"name": "X", "email": "nope"},
            {"message": "Email Invalid email", "attributes": ["email"]},
        ),
        (
            {"name": "X", "email": "x@x.test", "password": "password"},
            {
                "message": "Password must contain uppercase, lowercase letters, number and a "
                "special character",
                "attributes": ["password"],
            },
        ),
        (
            {"name": "X", "email": "x@x.test", "password": "A1!a"},
            {
                "message": "Password is too short (minimum is 6 characters)",
                "attributes": ["password"],
            },
        ),
    ],
)
async def test_user_create_errors(env: Env, body: dict[str, Any], expected: Any) -> None:
    await platform_app(env)
    r = await call(env, "POST", "/users", **body)
    assert (r.status_code, r.json()) == (422, expected)


@pytest.mark.anyio
async def test_account_users_need_the_apps_account_and_user(env: Env) -> None:
    await platform_app(env)
    await platform_app(env, OTHER_TOKEN, "Other")
    mine = await ok(env, "POST", "/accounts", name="Mine")
    theirs = await ok(env, "POST", "/accounts", OTHER_TOKEN, name="Theirs")
    their_user = await ok(env, "POST", "/users", OTHER_TOKEN, name="T", email="t@x.test")
    path = f"/accounts/{mine['id']}/account_users"
    r = await call(env, "POST", path, user_id=their_user["id"])
    assert (r.status_code, r.json()) == (401, NON_PERMISSIBLE)
    r = await call(env, "POST", path, role="agent")
    assert (r.status_code, r.json()) == (
        422,
        {"message": "User must exist", "attributes": ["user"]},
    )
    for method in ("GET", "POST", "DELETE"):
        r = await call(env, method, f"/accounts/{theirs['id']}/account_users", user_id=1)
        assert (r.status_code, r.json()) == (401, NON_PERMISSIBLE), method
    r = await call(env, "GET", "/accounts/999/account_users")
    assert (r.status_code, r.json()) == (404, PLATFORM_NOT_FOUND)


@pytest.mark.anyio
async def test_a_suspended_account_is_closed_on_the_application_api(env: Env) -> None:
    await admin(env)
    await platform_app(env)
    await env.store.write(platform_ops.permit, 1, "Account", env.account_id, env.clock())
    await ok(env, "PATCH", f"/accounts/{env.account_id}", status="suspended")
    r = await env.client.get(account_url(env, "/agents"), headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.json()) == (401, {"error": "Account is suspended"})
    await ok(env, "PATCH", f"/accounts/{env.account_id}", status="active")
    r = await env.client.get(account_url(env, "/agents"), headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200


def test_cli_platform_app_create(tmp_path: Path) -> None:
    env = {
        "INBOXGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'inboxgate.db'}",
        "INBOXGATE_DATA_DIR": str(tmp_path / "data"),
    }
    runner = CliRunner()
    result = runner.invoke(
        cli.main,
        shlex.split("platform-app create --name CRM --json"),
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert set(created) == {"id", "name", "access_token"}
    assert (created["id"], created["name"]) == (1, "CRM")
    text = runner.invoke(cli.main, ["platform-app", "create", "--name", "ERP"], env=env)
    assert text.exit_code == 0 and "shown only once" in text.stdout
    blank = runner.invoke(cli.main, ["platform-app", "create", "--name", " "], env=env)
    assert blank.exit_code == 2
