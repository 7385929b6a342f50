"""Bad input on every public, agent, platform and GoHighLevel route: never a 5xx, and every 4xx
has a JSON body.

The routes are read from the running app (as ``test_agent_every_route_auth.py`` does), so a
route added later is covered without a list kept by hand. Each route gets real ids (a real
inbox, contact session, conversation, message, contact, agent, bot, webhook, attachment) and
proper credentials, and then, one class at a time: odd and huge path ids, NUL and invalid UTF-8
in the path and the query, huge and odd ``before``/``after``/``page``, JSON nested 200 000 deep,
NUL in body text (JSON and forms), invalid UTF-8 (JSON and forms), odd ids and integers past 64
bits in bodies, oversize fields by JSON and by multipart, nested ``custom_attributes`` by
multipart. An odd spelling of a real id (``+1``, `` 1``, ``1_0``, full-width) must not find it.

It must pass on PostgreSQL too (``INBOXGATE_TEST_STORE=postgresql``): NUL characters and
integers past 64 bits break there, and only there, in the database driver.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from gateway.domain import provisioning as prov
from tests.admin_helpers import ADMIN_TOKEN, PLATFORM_TOKEN, admin, platform_app
from tests.routes_helpers import PUBLIC, Env, EnvFactory

pytestmark = pytest.mark.anyio

PARAM = re.compile(r"{([a-z_]+)(?::[a-z]+)?}")
PREFIXES = ("/public/", "/api/v1/", "/platform/api/v1/", "/conversations", "/attachments/")
NUMERIC = {
    "account_id", "conversation_id", "message_id", "contact_id", "inbox_id", "user_id",
    "webhook_id", "bot_id",
}  # fmt: skip
HOOK = "http://127.0.0.1:9/hook"  # nothing listens: a delivery attempt fails at once
HUGE = "9" * 30
LONG = "9" * 5000  # int() of this raises ValueError (Python's 4300-digit limit)
BAD_PATH_VALUES = [HUGE, LONG, str(2**63), "%00", "a%00b", "-1", "%FF", "%C2%B2"]
BAD_QUERIES = [
    f"before={HUGE}&after={HUGE}&page={HUGE}",
    f"page={LONG}",
    "before=%EF%BC%91&after=%2B1&page=1_0",
    "page=%C2%B2&before=%D9%A1",
    "q=%00&status=%00&name=a%00b&sort=%00&labels[]=%00&webhook_id=%00&inbox_id=%00",
    "x=%FF&q=%FF",
    "a" + "[b]" * 40 + "=1",
    "page[]=1&before[x]=2",
    f"inbox_id={HUGE}&team_id={HUGE}&assignee_type=me&updated_within={LONG}",
    "include_contact_inboxes=%00&filter_internal_messages=%00",
]
NUL_FIELDS = [
    "name", "email", "content", "identifier", "source_id", "echo_id", "q", "status", "title",
    "description", "url", "phone_number", "message_type", "content_type", "priority",
    "availability", "role", "locale", "domain", "support_email", "password", "outgoing_url",
    "typing_status", "display_name", "identifier_hash", "feedback_message", "assignee_type",
    "inbox_id", "contact_id", "assignee_id", "team_id", "agent_bot", "locationId", "contactId",
    "webhook_url", "type", "greeting_message", "timezone", "avatar_url",
]  # fmt: skip
ID_FIELDS = [
    "inbox_id", "contact_id", "assignee_id", "team_id", "user_id", "agent_bot", "account_id",
    "webhook_id", "sender_id", "campaign_id", "snoozed_until", "rating", "before", "page",
]  # fmt: skip
ODD_NUMBERS = ["\uff11", "+1", " 1", "1_0", "\u00b2", "\u0661", HUGE, LONG, str(2**64)]


def nul_json() -> dict[str, Any]:
    body: dict[str, Any] = {name: "a\x00b" for name in NUL_FIELDS}
    body["labels"] = body["subscriptions"] = ["a\x00"]
    body["custom_attributes"] = body["additional_attributes"] = {"k": "\x00", "k\x00": 1}
    for wrapper in ("contact", "agent", "inbox", "account", "user", "message", "channel"):
        body[wrapper] = {"name": "a\x00", "content": "\x00", "email": "\x00@x.io"}
    body["submitted_values"] = {"csat_survey_response": {"rating": 5, "feedback_message": "\x00"}}
    return body


def oversize_fields() -> dict[str, str]:
    """Five fields of 160 000 characters: under the 1 MiB JSON limit, over every field's own."""
    names = ("content", "name", "email", "identifier", "url")
    return {name: "x" * 160_000 for name in names}


def nested_attributes() -> list[tuple[str, tuple[None, str]]]:
    parts = []
    for root in ("custom_attributes", "additional_attributes", "contact[custom_attributes]"):
        parts += [(f"{root}[a][b{i}]", (None, "y" * 1400)) for i in range(20)]
    return parts


def multipart(fields: list[tuple[bytes, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for name, value in fields:
        out += f"--{boundary}\r\n".encode() + b'Content-Disposition: form-data; name="'
        out += name + b'"\r\n\r\n' + value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


MULTIPART = {"content-type": "multipart/form-data; boundary=b0undary"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
# (name, request kwargs): every class of bad body, for every route.
BODIES: list[tuple[str, dict[str, Any]]] = [
    ("deep json", {"content": b"[" * 200_000, "headers": JSON}),
    ("deep json, no type", {"content": b"[" * 200_000}),
    ("deep object", {"content": b'{"content":"a","x":' + b"[" * 900 + b"]" * 900 + b"}"}),
    ("deep form", {"content": b"custom_attributes" + b"[a]" * 60 + b"=1", "headers": FORM}),
    ("json invalid utf-8", {"content": b'{"content":"\xff","name":"\xc3"}', "headers": JSON}),
    ("json nul", {"content": json.dumps(nul_json()).encode(), "headers": JSON}),
    (
        "form nul",
        {"content": b"&".join(f.encode() + b"=a%00" for f in NUL_FIELDS), "headers": FORM},
    ),
    (
        "multipart nul",
        {"content": multipart([(f.encode(), b"a\x00") for f in NUL_FIELDS]), "headers": MULTIPART},
    ),
    ("form invalid utf-8", {"content": b"content=%FF&name=\xff\xfe", "headers": FORM}),
    (
        "multipart invalid utf-8",
        {"content": multipart([(b"content", b"caf\xe9"), (b"n\xe9", b"x")]), "headers": MULTIPART},
    ),
    (
        "json odd ids",
        {
            "content": json.dumps(
                {f: o for f, o in zip(ID_FIELDS * 2, ODD_NUMBERS * 4, strict=False)}
            ).encode(),
            "headers": JSON,
        },
    ),
    (
        "json huge ints",
        {
            "content": json.dumps(
                {**{f: 10**30 for f in ID_FIELDS}, "user_ids": [10**30, -(10**30)]}
            ).encode(),
            "headers": JSON,
        },
    ),
    ("json oversize", {"content": json.dumps(oversize_fields()).encode(), "headers": JSON}),
    ("multipart oversize", {"files": {k: (None, v) for k, v in oversize_fields().items()}}),
    (
        "multipart over the text limit",
        {"files": {f"f{i}": (None, "x" * 200_000) for i in range(6)}},
    ),
    ("multipart nested attributes", {"files": nested_attributes()}),
    (
        "csat odd rating",
        {
            "json": {
                "submitted_values": {"csat_survey_response": {"rating": "²"}},
                "message": {"rating": "9" * 5000},
            }
        },
    ),
]


@dataclass
class World:
    env: Env
    client: httpx.AsyncClient
    ids: dict[str, str]
    failures: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    requests: int = 0

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"World({len(self.failures)} failures: {self.failures[:3]})"

    def headers(self, template: str) -> dict[str, str]:
        if template.startswith("/platform/"):
            return {"api_access_token": PLATFORM_TOKEN}
        if template.startswith("/conversations"):
            return {"authorization": f"Bearer {ADMIN_TOKEN}", "version": "2021-04-15"}
        return {"api_access_token": ADMIN_TOKEN}

    def fill(self, template: str, **override: str) -> str:
        return PARAM.sub(lambda m: override.get(m[1], self.ids[m[1]]), template)

    async def send(self, case: str, method: str, template: str, path: str, **kw: Any) -> int:
        headers = {**self.headers(template), **kw.pop("headers", {})}
        if not {"content", "json", "files", "data"} & set(kw) and method not in ("GET", "DELETE"):
            kw["json"] = {}
        r = await self.client.request(method, path, headers=headers, **kw)
        self.requests += 1
        problem = None
        if r.status_code >= 500:
            problem = "5xx"
        elif r.status_code >= 400:
            try:
                r.json()
            except ValueError:
                problem = "4xx without a JSON body"
            if not r.headers.get("content-type", "").startswith("application/json"):
                problem = "4xx without a JSON content type"
        if problem:
            self.failures.append(
                (problem, case, f"{method} {template}", r.status_code, r.text[:160])
            )
        return r.status_code


def served(app: Any) -> list[tuple[str, str]]:
    """(method, template) of every route under the API prefixes; DELETE last, platform after
    the account routes (it can remove the administrator from the account)."""
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith(PREFIXES):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return sorted(found, key=lambda r: (r[0] == "DELETE", r[1].startswith("/platform/")))


async def build_world(env: Env) -> World:
    """Real records for every path parameter, and the tokens to reach them."""
    await admin(env)
    await platform_app(env)
    victim = await env.store.write(
        prov.create_user, env.account_id, "Vic", "vic@acme.test", "agent", "victim-token-012345",
        env.clock(),
    )  # fmt: skip
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=env.app, raise_app_exceptions=False),
        base_url="http://testserver",
    )
    contact = await env.contact(name="Cora", email="cora@example.com")
    source_id = contact["source_id"]
    conversation = await env.conversation(source_id)
    url = env.conv_url(source_id, conversation["id"]) + "/messages"
    files = {"attachments[]": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")}
    r = await env.client.post(url, data={"content": "pic"}, files=files)
    assert r.status_code == 200, r.text
    message = r.json()
    token, name = message["attachments"][0]["data_url"].split("/attachments/")[1].split("/")
    admin_headers = {"api_access_token": ADMIN_TOKEN}
    account = f"/api/v1/accounts/{env.account_id}"
    r = await env.client.post(account + "/webhooks", json={"url": HOOK}, headers=admin_headers)
    assert r.status_code == 200, r.text
    webhook_id = r.json()["payload"]["webhook"]["id"]
    r = await env.client.post(
        account + "/agent_bots", json={"name": "B", "outgoing_url": HOOK}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    ids = {
        "inbox": env.inbox.identifier, "source_id": source_id,
        "conversation_id": str(conversation["id"]), "message_id": str(message["id"]),
        "uuid": conversation["uuid"], "token": token, "name": name,
        "account_id": str(env.account_id), "contact_id": str(contact["id"]),
        "inbox_id": str(env.inbox.id), "user_id": str(victim.id), "webhook_id": str(webhook_id),
        "delivery_id": "1", "bot_id": str(r.json()["id"]),
    }  # fmt: skip
    return World(env, client, ids)


@pytest.fixture(name="world")
async def world_fixture(make_env: EnvFactory) -> AsyncIterator[World]:
    async with make_env(
        rate_limit_per_ip=0, messages_per_minute=1_000_000, webhook_allow_private=True
    ) as env:
        world = await build_world(env)
        async with world.client:
            yield world


def odd_spellings(value: str) -> list[str]:
    full = "".join(chr(0xFF10 + int(d)) for d in value)
    return [f"%2B{value}", f"%20{value}", f"{value}_0", full, f"0x{value}", f"{value}.0"]


async def test_every_route_answers_bad_input_with_a_json_4xx(world: World) -> None:
    routes = served(world.env.app)
    assert len(routes) >= 90, len(routes)  # public, agent, platform, GoHighLevel
    resolved = []
    for method, template in routes:
        params = PARAM.findall(template)
        for param in params:
            for bad in BAD_PATH_VALUES:
                await world.send(f"path {param}={bad[:12]}", method, template,
                                 world.fill(template, **{param: bad}))  # fmt: skip
            if param in NUMERIC:
                for odd in odd_spellings(world.ids[param]):
                    path = world.fill(template, **{param: odd})
                    status = await world.send(f"path {param}={odd}", method, template, path)
                    if status < 300:
                        resolved.append((method, template, odd, status))
        path = world.fill(template)
        for query in BAD_QUERIES:
            await world.send(f"query {query[:40]}", method, template, f"{path}?{query}")
        for name, kw in BODIES:
            await world.send(name, method, template, path, **kw)
    assert world.failures == []
    assert resolved == []  # an odd spelling of a real id found the record
    assert world.requests > 4000


async def test_public_nul_path_segments_are_plain_404s(world: World) -> None:
    for path in (f"{PUBLIC}/inboxes/%00", f"{PUBLIC}/inboxes/%00/contacts"):
        for headers in ({}, {"origin": "https://shop.example"}):
            r = await world.client.get(path, headers=headers)
            assert (r.status_code, r.json()) == (404, {"status": 404, "error": "Not Found"})


_finite = st.floats(allow_nan=False, allow_infinity=False)  # httpx refuses to send the others
_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["0", "1", HUGE, LONG, "\x00", "\uff11", "+1", " 1", "1_0", "²", "-1"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(
        st.sampled_from(["before", "after", "page", "q", "status", "sort", "labels[]", "x[y]"]),
        _text, max_size=4,
    ),
    body=st.dictionaries(
        st.sampled_from(["content", "name", "email", "custom_attributes", "inbox_id", "echo_id",
                         "rating", "submitted_values", "user_ids", "labels"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | _finite | _text,
            lambda inner: st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=8,
        ),
        max_size=4,
    ),
)  # fmt: skip
async def test_fuzzed_parameters_never_5xx(
    world: World, params: dict[str, str], body: dict[str, Any]
) -> None:
    """Arbitrary query and JSON parameters on the routes that read the most of them."""
    account = "/api/v1/accounts/{account_id}"
    conversation = (
        f"{PUBLIC}/inboxes/{{inbox}}/contacts/{{source_id}}/conversations/{{conversation_id}}"
    )
    for method, template in [
        ("GET", conversation + "/messages"),
        ("POST", conversation + "/messages"),
        ("PATCH", f"{PUBLIC}/inboxes/{{inbox}}/contacts/{{source_id}}"),
        ("PATCH", conversation + "/messages/{message_id}"),
        ("GET", account + "/conversations"),
        ("GET", account + "/contacts/search"),
        ("POST", account + "/conversations"),
        ("POST", account + "/conversations/{conversation_id}/messages"),
    ]:
        path = world.fill(template)
        await world.send("fuzz", method, template, path, params=params, json=body)
        await world.send("fuzz form", method, template, path, params=params,
                         data={k: str(v) for k, v in body.items()})  # fmt: skip
    assert world.failures == []
