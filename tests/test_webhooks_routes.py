"""Webhooks CRUD on the agent API (reference agent §3.7) and who may use it (§1.2, §1.4)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from client_sdk import protocol as p
from gateway.domain import provisioning as prov
from tests.routes_helpers import Env, EnvFactory
from tests.server_helpers import free_port

pytestmark = pytest.mark.anyio

ADMIN = "admin-token-0123456789abc"
AGENT = "agent-token-0123456789abc"
OUTSIDER = "other-token-0123456789abc"
HOOK = "https://93.184.216.34/cw"
WEBHOOK_KEYS = {"id", "name", "url", "account_id", "subscriptions", "secret"}
DELIVERY_KEYS = {
    "id", "event", "receiver", "webhook_id", "inbox_id", "url", "status", "attempts",
    "last_error", "last_status_code", "created_at", "next_attempt_at", "delivered_at",
}  # fmt: skip


class Api:
    """The env's client with a user token, on the env's account."""

    def __init__(self, env: Env, token: str, account_id: int | None = None) -> None:
        self.env = env
        self.token = token
        self.base = f"/api/v1/accounts/{account_id or env.account_id}"

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"api_access_token": self.token} if self.token else {}
        return await self.env.client.request(method, self.base + path, headers=headers, **kw)


@pytest.fixture
async def env(make_env: EnvFactory) -> Any:
    async with make_env() as e:
        await e.store.write(prov.create_user, e.account_id, "Ann", "ann@acme.test",
                            "administrator", ADMIN, e.clock())  # fmt: skip
        await e.store.write(prov.create_user, e.account_id, "Bob", "bob@acme.test", "agent",
                            AGENT, e.clock())  # fmt: skip
        other = await e.store.write(prov.create_account, "Other", e.clock())
        await e.store.write(prov.create_user, other.id, "Olga", "olga@other.test",
                            "administrator", OUTSIDER, e.clock())  # fmt: skip
        e.other_account_id = other.id  # type: ignore[attr-defined]
        yield e


async def create(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.request("POST", "/webhooks", json=body)
    assert r.status_code == 200, r.text
    webhook: dict[str, Any] = r.json()["payload"]["webhook"]
    return webhook


async def test_create_list_update_delete(env: Env) -> None:
    api = Api(env, ADMIN)
    created = await create(api, url=HOOK, name="CRM", subscriptions=["message_created"])
    assert set(created) == WEBHOOK_KEYS
    assert created["url"] == HOOK and created["name"] == "CRM"
    assert created["account_id"] == env.account_id
    assert created["subscriptions"] == ["message_created"]
    assert len(created["secret"]) == 24

    r = await api.request("GET", "/webhooks")
    assert r.status_code == 200
    assert r.json() == {"payload": {"webhooks": [created]}}

    r = await api.request(
        "PATCH", f"/webhooks/{created['id']}",
        json={"webhook": {"subscriptions": ["conversation_created", "message_updated"],
                          "inbox_id": env.inbox.id}},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    updated = r.json()["payload"]["webhook"]
    assert updated["subscriptions"] == ["conversation_created", "message_updated"]
    assert updated["inbox"] == {"id": env.inbox.id, "name": env.inbox.name}
    assert (updated["url"], updated["name"], updated["secret"]) == (HOOK, "CRM", created["secret"])

    r = await api.request("PUT", f"/webhooks/{created['id']}", json={"inbox_id": None})
    assert r.status_code == 200 and "inbox" not in r.json()["payload"]["webhook"]

    r = await api.request("DELETE", f"/webhooks/{created['id']}")
    assert (r.status_code, r.content) == (200, b"")
    assert (await api.request("GET", "/webhooks")).json() == {"payload": {"webhooks": []}}
    r = await api.request("DELETE", f"/webhooks/{created['id']}")
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})


async def test_defaults_form_bodies_and_secrets(env: Env) -> None:
    api = Api(env, ADMIN)
    hook = await create(api, url=HOOK)
    assert hook["subscriptions"] == list(p.DEFAULT_WEBHOOK_SUBSCRIPTIONS)
    assert hook["name"] is None
    r = await api.request(
        "POST", "/webhooks",
        data={"webhook[url]": "https://93.184.216.35/x",
              "webhook[subscriptions][]": "contact_created"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    other = r.json()["payload"]["webhook"]
    assert other["subscriptions"] == ["contact_created"]
    assert other["secret"] != hook["secret"]


@pytest.mark.parametrize(
    ("body", "message", "attribute"),
    [
        ({"url": "ftp://x.example/"}, "Url is invalid", "url"),
        ({"url": "not a url"}, "Url is invalid", "url"),
        ({"name": "no url"}, "Url is invalid", "url"),
        ({"url": HOOK, "subscriptions": []}, "Subscriptions Invalid events", "subscriptions"),
        ({"url": HOOK, "subscriptions": ["nope"]}, "Subscriptions Invalid events",
         "subscriptions"),
        ({"url": HOOK, "inbox_id": 999}, "Inbox must exist", "inbox"),
    ],
)  # fmt: skip
async def test_validation_failures(
    env: Env, body: dict[str, Any], message: str, attribute: str
) -> None:
    r = await Api(env, ADMIN).request("POST", "/webhooks", json=body)
    assert (r.status_code, r.json()) == (422, {"message": message, "attributes": [attribute]})


async def test_url_taken_and_param_missing(env: Env) -> None:
    api = Api(env, ADMIN)
    first = await create(api, url=HOOK)
    r = await api.request("POST", "/webhooks", json={"url": HOOK})
    assert (r.status_code, r.json()) == (
        422, {"message": "Url has already been taken", "attributes": ["url"]},
    )  # fmt: skip
    missing = {"error": "param is missing or the value is empty: webhook"}
    for body in ({}, {"webhook": {}}, {"unrelated": 1}):
        r = await api.request("POST", "/webhooks", json=body)
        assert (r.status_code, r.json()) == (422, missing)
    r = await api.request("PATCH", f"/webhooks/{first['id']}", json={})
    assert (r.status_code, r.json()) == (422, missing)
    r = await api.request("POST", "/webhooks", json={"url": HOOK, "subscriptions": "all"})
    assert r.status_code == 422 and r.json()["attributes"] == ["subscriptions"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hook", "http://localhost/hook", "http://10.0.0.8/",
     "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/"],
)  # fmt: skip
async def test_private_receivers_are_refused(env: Env, url: str) -> None:
    r = await Api(env, ADMIN).request("POST", "/webhooks", json={"url": url})
    assert r.status_code == 422, r.text
    assert r.json()["attributes"] == ["url"]
    assert r.json()["message"].startswith("Url is not allowed")
    hook = await create(Api(env, ADMIN), url=HOOK)
    r = await Api(env, ADMIN).request("PATCH", f"/webhooks/{hook['id']}", json={"url": url})
    assert r.status_code == 422


async def test_private_receivers_allowed_by_the_setting(make_env: EnvFactory) -> None:
    async with make_env(webhook_allow_private=True) as env:
        await env.store.write(prov.create_user, env.account_id, "Ann", "ann@acme.test",
                              "administrator", ADMIN, env.clock())  # fmt: skip
        hook = await create(Api(env, ADMIN), url="http://127.0.0.1:9000/hook")
        assert hook["url"] == "http://127.0.0.1:9000/hook"


ROUTES = [
    ("GET", "/webhooks", None),
    ("POST", "/webhooks", {"url": HOOK}),
    ("PATCH", "/webhooks/{id}", {"name": "x"}),
    ("PUT", "/webhooks/{id}", {"name": "x"}),
    ("DELETE", "/webhooks/{id}", None),
    ("GET", "/inboxes/{inbox}/webhook_secret", None),
    ("GET", "/webhook_deliveries", None),
    ("POST", "/webhook_deliveries/{delivery}/retry", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_refuses_the_unauthorized(
    env: Env, method: str, path: str, body: dict[str, Any] | None
) -> None:
    hook = await create(Api(env, ADMIN), url="https://93.184.216.40/h")
    path = path.format(id=hook["id"], inbox=env.inbox.id, delivery="d-1")
    kw = {"json": body} if body is not None else {}
    cases = [
        ("", {"errors": ["You need to sign in or sign up before continuing."]}),
        ("wrong-token-0000000000000", {"error": "Invalid Access Token"}),
        (OUTSIDER, {"error": "You are not authorized to access this account"}),
        (AGENT, {"error": "You are not authorized to do this action"}),
    ]
    for token, error in cases:
        r = await Api(env, token).request(method, path, **kw)
        assert (r.status_code, r.json()) == (401, error), token
    # The other account's administrator sees nothing of this account's webhooks.
    theirs = Api(env, OUTSIDER, env.other_account_id)  # type: ignore[attr-defined]
    r = await theirs.request(method, path, **kw)
    if (method, path) == ("GET", "/webhooks"):
        assert r.json() == {"payload": {"webhooks": []}}
    elif (method, path) == ("GET", "/webhook_deliveries"):
        assert r.json() == {"payload": {"deliveries": []}}
    elif (method, path) == ("POST", "/webhooks"):
        assert r.status_code == 200
    else:
        assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
    # Nothing changed for the owner.
    r = await Api(env, ADMIN).request("GET", "/webhooks")
    assert [w["id"] for w in r.json()["payload"]["webhooks"]] == [hook["id"]]


async def test_unknown_account_or_id_is_not_found(env: Env) -> None:
    not_found = {"error": "Resource could not be found"}
    r = await Api(env, ADMIN, 999).request("GET", "/webhooks")
    assert (r.status_code, r.json()) == (404, not_found)
    for path in ("/webhooks/abc", "/webhooks/999", "/webhooks/-1"):
        r = await Api(env, ADMIN).request("PATCH", path, json={"name": "x"})
        assert (r.status_code, r.json()) == (404, not_found)
    r = await Api(env, "").request("DELETE", "/webhooks/abc")
    assert r.status_code == 401


async def test_inbox_webhook_secret(env: Env) -> None:
    api = Api(env, ADMIN)
    r = await api.request("GET", f"/inboxes/{env.inbox.id}/webhook_secret")
    assert r.status_code == 200
    body = r.json()
    assert body["inbox_id"] == env.inbox.id and body["webhook_url"] is None
    assert len(body["secret"]) == 24 and body["secret"] != env.inbox.hmac_token
    again = await api.request("GET", f"/inboxes/{env.inbox.id}/webhook_secret")
    assert again.json() == body  # created once, then kept
    r = await api.request("GET", "/inboxes/999/webhook_secret")
    assert r.status_code == 404


async def test_dead_deliveries_are_listed_and_retried(make_env: EnvFactory) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    async with make_env(webhook_allow_private=True, webhook_max_attempts=1) as env:
        await env.store.write(prov.create_user, env.account_id, "Ann", "ann@acme.test",
                              "administrator", ADMIN, env.clock())  # fmt: skip
        api = Api(env, ADMIN)
        hook = await create(api, url=closed, subscriptions=["conversation_created"])
        await env.session()  # a contact and a conversation: conversation_created

        with anyio.fail_after(10):
            while True:
                r = await api.request("GET", "/webhook_deliveries", params={"status": "dead"})
                if r.json()["payload"]["deliveries"]:
                    break
                await anyio.sleep(0.02)
        [dead] = r.json()["payload"]["deliveries"]
        assert set(dead) == DELIVERY_KEYS
        assert (dead["event"], dead["receiver"], dead["webhook_id"], dead["url"]) == (
            "conversation_created", "account", hook["id"], closed,
        )  # fmt: skip
        assert (dead["status"], dead["attempts"], dead["next_attempt_at"]) == ("dead", 1, None)
        assert dead["last_error"].startswith("ConnectError")
        assert dead["last_status_code"] is None and dead["delivered_at"] is None
        r = await api.request("GET", "/webhook_deliveries", params={"webhook_id": hook["id"]})
        assert [d["id"] for d in r.json()["payload"]["deliveries"]] == [dead["id"]]
        r = await api.request("GET", "/webhook_deliveries", params={"status": "delivered"})
        assert r.json() == {"payload": {"deliveries": []}}
        r = await api.request("GET", "/webhook_deliveries", params={"status": "lost"})
        assert r.status_code == 422 and r.json()["attributes"] == ["status"]

        r = await api.request("POST", f"/webhook_deliveries/{dead['id']}/retry")
        assert r.status_code == 200, r.text
        again = r.json()
        assert (again["id"], again["status"], again["attempts"]) == (dead["id"], "pending", 0)
        r = await api.request("POST", "/webhook_deliveries/nope/retry")
        assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
