"""The OpenAPI document (``/openapi.json``) and the ``/docs`` page, in process.

The document is valid OpenAPI 3.1; it describes every route the app serves (the routes are read
from the app, as ``test_agent_every_route_auth.py`` does, so a new route without an entry in
``gateway/openapi/operations.py`` fails here); the error bodies the app really sends match the
responses it documents. The live fuzzing is ``test_openapi_schemathesis.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from client_sdk import protocol as p
from gateway.app import create_app
from gateway.openapi import build_document, document_bytes
from gateway.openapi.document import openapi_path
from gateway.openapi.operations import OPERATIONS, UNDOCUMENTED, UNDOCUMENTED_PREFIXES
from gateway.openapi.page import render
from gateway.openapi.table_platform import PROBES
from gateway.settings import Settings, SettingsError
from tests.admin_helpers import ADMIN_TOKEN, PLATFORM_TOKEN, admin, auth, platform_app
from tests.routes_helpers import Env, EnvFactory, settings_for

DOCUMENT = build_document()
INBOX = "/public/api/v1/inboxes/{inbox}"
CONVERSATION = INBOX + "/contacts/{source_id}/conversations/{conversation_id}"
ACCOUNT = "/api/v1/accounts/{account_id}"


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOCUMENT)  # raises on the first error
    assert DOCUMENT["openapi"] == "3.1.0"
    ids = [op["operationId"] for item in DOCUMENT["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) == len(OPERATIONS) >= 100


# -- every route, no stale entry ------------------------------------------------------------


def served(routes: list[BaseRoute]) -> tuple[set[tuple[str, str]], list[str]]:
    """(method, path) of every HTTP route, and the paths of mounts not known to be files."""
    found, mounts = set(), []
    for route in routes:
        if isinstance(route, Route):
            found |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, Mount) and not route.path.startswith(UNDOCUMENTED_PREFIXES):
            mounts.append(route.path)
        else:
            assert isinstance(route, WebSocketRoute | Mount), route
    return found, mounts


def gaps(routes: list[BaseRoute]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Routes the table misses, and table entries no route serves (the probes are served by
    the operating layer in front of the router)."""
    found, mounts = served(routes)
    found |= {("GET", path) for path in PROBES}
    documented = {(op.method, op.path) for op in OPERATIONS}
    missing = sorted(
        (method, path) for method, path in found - documented if path not in UNDOCUMENTED
    )
    return missing + [("MOUNT", m) for m in mounts], sorted(documented - found)


def test_every_route_is_documented_and_every_entry_is_served(tmp_path: Path) -> None:
    # --demo adds / and /demo: every optional route is there.
    app = create_app(settings_for(tmp_path, demo_inbox="demo"))
    found, _ = served(app.routes)
    assert len(found) >= 100
    assert gaps(app.routes) == ([], [])


def test_a_new_route_without_an_entry_is_reported(tmp_path: Path) -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    app = create_app(settings_for(tmp_path))
    new = Route("/api/v1/accounts/{account_id:int}/reports", endpoint, methods=["GET", "POST"])
    files = Mount("/exports", routes=[])
    missing, _ = gaps([*app.routes, new, files])
    assert missing == [
        ("GET", "/api/v1/accounts/{account_id:int}/reports"),
        ("POST", "/api/v1/accounts/{account_id:int}/reports"),
        ("MOUNT", "/exports"),
    ]
    # An entry whose route is gone is reported too.
    without = [r for r in app.routes if getattr(r, "path", "") != "/api/v1/profile"]
    assert gaps(without) == ([], [("GET", "/api/v1/profile")])


# -- what the document says -----------------------------------------------------------------


def operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = DOCUMENT["paths"][path][method.lower()]
    return found


def test_path_ids_are_integers_and_keys_are_strings() -> None:
    kinds: dict[str, set[str]] = {}
    for item in DOCUMENT["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    kinds.setdefault(param["schema"]["type"], set()).add(param["name"])
    assert kinds == {
        "integer": {"account_id", "conversation_id", "message_id", "contact_id", "inbox_id",
                    "user_id", "bot_id", "webhook_id"},
        "string": {"inbox", "source_id", "uuid", "token", "name", "delivery_id"},
    }  # fmt: skip
    assert openapi_path("/api/v1/accounts/{account_id:int}/x") == ACCOUNT + "/x"


def test_bodies_and_responses_are_the_protocol_structs() -> None:
    def ref(schema: dict[str, Any]) -> str:
        return str(schema["$ref"]).rsplit("/", 1)[-1]

    for op in OPERATIONS:
        described = operation(op.method, openapi_path(op.path))
        if op.body is not None:
            content = described["requestBody"]["content"]
            assert ref(content["application/json"]["schema"]) == op.body.__name__
            assert ref(content["application/json"]["schema"]) in DOCUMENT["components"]["schemas"]
        else:
            assert "requestBody" not in described, op.operation_id
        if isinstance(op.response, type) and issubclass(op.response, msgspec.Struct):
            ok = described["responses"]["200"]["content"]["application/json"]["schema"]
            assert ref(ok) == op.response.__name__
    # Attachments: both message creates also take multipart/form-data with files.
    for path in (CONVERSATION + "/messages", ACCOUNT + "/conversations/{conversation_id}/messages"):
        form = operation("POST", path)["requestBody"]["content"]["multipart/form-data"]
        props = form["schema"]["properties"]
        assert props["attachments[]"]["items"] == {"type": "string", "format": "binary"}
        assert props["content"] == {"type": "string"}
    listed = operation("GET", INBOX + "/contacts/{source_id}/conversations")
    items = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert items == {"type": "array", "items": {"$ref": "#/components/schemas/PublicConversation"}}


def test_auth_schemes() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["agentToken"] == {**schemes["agentToken"], "type": "apiKey", "in": "header",
                                     "name": "api_access_token"}  # fmt: skip
    assert schemes["platformToken"]["name"] == "api_access_token"
    assert schemes["highLevelBearer"]["scheme"] == "bearer"
    assert operation("GET", ACCOUNT + "/conversations")["security"] == [{"agentToken": []}]
    assert operation("POST", "/platform/api/v1/users")["security"] == [{"platformToken": []}]
    highlevel = operation("POST", "/conversations/")
    assert highlevel["security"] == [{"highLevelBearer": []}]
    [version] = [x for x in highlevel["parameters"] if x["in"] == "header"]
    assert (version["name"], version["required"], version["schema"]["enum"]) == (
        "Version", True, ["2021-07-28"],
    )  # fmt: skip
    assert "security" not in operation("POST", INBOX + "/contacts")


# -- the real error bodies match the documented ones ----------------------------------------


def check(method: str, path: str, response: Any) -> None:
    """``response`` (an httpx response) is what ``path`` documents for its status."""
    documented = operation(method, path)["responses"][str(response.status_code)]
    if "$ref" in documented:
        documented = DOCUMENT["components"]["responses"][documented["$ref"].rsplit("/", 1)[-1]]
    schema = documented["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": DOCUMENT["components"]}).validate(response.json())
    for name, header in documented.get("headers", {}).items():
        assert not header.get("required") or name in response.headers, name


@pytest.mark.anyio
async def test_public_error_bodies(env: Env) -> None:
    r = await env.client.get("/public/api/v1/inboxes/nope")
    assert r.json() == {"status": 404, "error": "Not Found"}
    check("GET", INBOX, r)
    r = await env.client.post(env.base + "/contacts", json={"identifier": "x",
                                                            "identifier_hash": "00"})  # fmt: skip
    assert (r.status_code, r.json()["errors"][0]["code"]) == (401, "invalid_hmac")
    check("POST", INBOX + "/contacts", r)
    source_id, conversation = await env.session()
    url = env.conv_url(source_id, conversation) + "/messages"
    r = await env.client.post(url, json={"content": "x" * 150_001})
    assert (r.status_code, r.json()["attributes"]) == (422, ["content"])
    check("POST", CONVERSATION + "/messages", r)
    r = await env.client.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400
    check("POST", CONVERSATION + "/messages", r)


@pytest.mark.anyio
async def test_agent_platform_and_highlevel_error_bodies(env: Env) -> None:
    await admin(env)
    await platform_app(env)
    url = f"/api/v1/accounts/{env.account_id}/conversations"
    for headers, body in [({}, {"errors": ["You need to sign in or sign up before continuing."]}),
                          (auth("wrong"), {"error": "Invalid Access Token"})]:  # fmt: skip
        r = await env.client.get(url, headers=headers)
        assert (r.status_code, r.json()) == (401, body)
        check("GET", ACCOUNT + "/conversations", r)
    r = await env.client.get(url + "/999", headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
    check("GET", ACCOUNT + "/conversations/{conversation_id}", r)
    # A malformed account id is an account that does not exist, once the token is checked.
    r = await env.client.get("/api/v1/accounts/abc/conversations", headers=auth(ADMIN_TOKEN))
    assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"})
    check("GET", ACCOUNT + "/conversations", r)
    r = await env.client.post(
        url, json={"custom_attributes": "x"}, headers=auth(ADMIN_TOKEN)
    )  # a wrong type: {"message", "attributes"}
    assert r.status_code == 422 and r.json()["attributes"] == ["custom_attributes"], r.text
    check("POST", ACCOUNT + "/conversations", r)
    r = await env.client.post("/platform/api/v1/users", json={}, headers=auth("wrong"))
    assert (r.status_code, r.json()) == (401, {"error": "Invalid access_token"})
    check("POST", "/platform/api/v1/users", r)
    r = await env.client.get("/platform/api/v1/users/abc", headers=auth(PLATFORM_TOKEN))
    assert r.status_code == 404
    check("GET", "/platform/api/v1/users/{user_id}", r)
    bearer = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    for headers, status in [({}, 401), (bearer, 400), ({**bearer, "version": "2021-07-28"}, 422)]:
        r = await env.client.post("/conversations/", json={}, headers=headers)
        assert r.status_code == status, r.text
        check("POST", "/conversations/", r)


@pytest.mark.anyio
async def test_limits_answer_the_documented_413_and_429(make_env: EnvFactory) -> None:
    async with make_env(max_body_bytes=100, rate_limit_per_ip=1) as env:
        r = await env.client.post(env.base + "/contacts", json={"name": "x" * 200})
        assert r.status_code == 413  # refused before the rate limit counts it
        check("POST", INBOX + "/contacts", r)
        await env.client.get(env.base)
        r = await env.client.get(env.base)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        check("GET", INBOX, r)


# -- serving: /openapi.json, /docs, the setting ---------------------------------------------


@pytest.mark.anyio
async def test_the_document_is_served_once_as_json(env: Env) -> None:
    first = await env.client.get("/openapi.json")
    second = await env.client.get("/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.content == second.content == document_bytes()
    assert document_bytes() is document_bytes()  # built once per process
    assert first.json() == msgspec.json.decode(msgspec.json.encode(DOCUMENT))


@pytest.mark.anyio
async def test_the_docs_page_renders_every_operation_with_no_script(env: Env) -> None:
    r = await env.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for op in OPERATIONS:
        assert f'id="op-{op.operation_id}"' in page, op.operation_id
    for name in DOCUMENT["components"]["schemas"]:
        assert f'id="schema-{name}"' in page
    # Every link to a schema has its anchor.
    assert set(re.findall(r'href="#schema-([^"]+)"', page)) <= set(
        DOCUMENT["components"]["schemas"]
    )
    # CSP-friendly and offline: no script, no inline style, nothing from another origin.
    assert "<script" not in page and "<style" not in page and " style=" not in page
    assert not re.search(r'(src|href)="(?!/|#)', page)
    [css] = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    sheet = await env.client.get(css)
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
    assert "url(" not in sheet.text and "@import" not in sheet.text


def test_the_page_escapes_what_the_document_says() -> None:
    doc = {
        "info": {"title": "<b>x</b>", "version": "1", "description": "<script>alert(1)</script>"},
        "tags": [{"name": "T"}],
        "paths": {"/a/{id}": {"get": {
            "operationId": "a", "summary": "<img src=x onerror=alert(1)>", "tags": ["T"],
            "parameters": [{"name": "<i>", "in": "path", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}}}}},
        "components": {"schemas": {"S": {"type": "object", "description": "a & b"}}},
    }  # fmt: skip
    page = render(doc)
    assert "<script>" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; b" in page


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["false", "0", "off"])
async def test_api_docs_off_serves_neither(make_env: EnvFactory, value: str) -> None:
    settings = Settings.from_env({"INBOXGATE_API_DOCS": value})
    assert settings.api_docs is False
    async with make_env(api_docs=settings.api_docs) as env:
        for path in ("/openapi.json", "/docs", "/docs/docs.css"):
            assert (await env.client.get(path)).status_code == 404


def test_api_docs_setting() -> None:
    assert Settings().api_docs is True
    assert Settings.from_env({}).api_docs is True
    assert Settings.from_env({"INBOXGATE_API_DOCS": "true"}).api_docs is True
    with pytest.raises(SettingsError, match="INBOXGATE_API_DOCS"):
        Settings.from_env({"INBOXGATE_API_DOCS": "maybe"})


def test_the_structs_are_the_protocols() -> None:
    # components/schemas is msgspec's description of the protocol Structs, not a copy.
    (_,), components = msgspec.json.schema_components(
        [p.PublicMessage], ref_template="#/components/schemas/{name}"
    )
    for name, schema in components.items():
        assert DOCUMENT["components"]["schemas"][name] == schema
