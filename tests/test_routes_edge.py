"""The HTTP edge of the public API: body formats, unknown routes, body limits, the per-IP rate
limit and CORS (§1, §7; COMPATIBILITY.md "HTTP edge")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.routes_helpers import NOT_FOUND, PUBLIC, Env, EnvFactory, inbox_url

pytestmark = pytest.mark.anyio

SHOP = "https://shop.example"
EVIL = "https://evil.example"


async def _record(env: Env, source_id: str) -> dict[str, Any]:
    """The raw contact record (an empty PATCH changes nothing and returns it)."""
    r = await env.client.patch(env.contact_url(source_id), json={})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


# -- request bodies ---------------------------------------------------------------------------


async def test_malformed_json_is_400(env: Env) -> None:
    for body in (b"{bad", b'{"name": ', b"\xff\xfe"):
        r = await env.client.post(
            env.base + "/contacts", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, body
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        got = r.json()
        assert (got["status"], got["error"]) == (400, "Bad Request")
        assert got["description"].startswith("Malformed JSON body")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42"])
async def test_json_body_must_be_an_object(env: Env, body: bytes) -> None:
    r = await env.client.post(
        env.base + "/contacts", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "Bad Request"


async def test_json_with_charset_and_vendor_types(env: Env) -> None:
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json"):
        r = await env.client.post(
            env.base + "/contacts", content=b'{"name": "J"}', headers={"content-type": ctype}
        )
        assert (r.status_code, r.json()["name"]) == (200, "J"), ctype


async def test_empty_json_body(env: Env) -> None:
    for body in (b"", b"  \n"):
        r = await env.client.post(
            env.base + "/contacts", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 200


async def test_json_without_content_type_is_parsed(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts", content=b'{"name": "Raw"}')
    assert r.status_code == 200
    assert r.json()["name"] == "Raw"


async def test_unparseable_bodies_without_a_parser_are_ignored(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts", content=b"{bad")
    assert r.status_code == 200
    r = await env.client.post(
        env.base + "/contacts", content=b'{"name":"T"}', headers={"content-type": "text/plain"}
    )
    assert r.status_code == 200
    assert r.json()["name"] != "T"


async def test_form_urlencoded_with_bracket_notation(env: Env) -> None:
    r = await env.client.post(
        env.base + "/contacts",
        data={"name": "Form", "email": "form@example.com", "custom_attributes[plan]": "pro",
              "custom_attributes[seats]": "3"},
    )  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert (body["name"], body["email"]) == ("Form", "form@example.com")
    assert (await _record(env, body["source_id"]))["custom_attributes"] == {
        "plan": "pro",
        "seats": "3",
    }
    r = await env.client.post(
        env.contact_url(body["source_id"]) + "/conversations",
        data={"custom_attributes[order][id]": "A-1"},
    )
    assert r.status_code == 200


async def test_form_bracket_value_of_wrong_shape_is_422(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts", data={"name[first]": "A"})
    assert r.status_code == 422
    assert r.json()["attributes"] == ["name"]


async def test_query_parameters(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts", params={"name": "Query", "source_id": "q-1"})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["source_id"]) == ("Query", "q-1")
    conv = await env.conversation("q-1")
    r = await env.client.post(
        env.conv_url("q-1", conv["id"]) + "/messages", params={"content": "from query"}
    )
    assert (r.status_code, r.json()["content"]) == (200, "from query")


async def test_json_body_wins_over_query(env: Env) -> None:
    r = await env.client.post(
        env.base + "/contacts", params={"name": "Query"}, json={"name": "Body"}
    )
    assert r.json()["name"] == "Body"


async def test_api_access_token_header_is_ignored(env: Env) -> None:
    headers = {"api_access_token": "whatever", "api-access-token": "x"}
    r = await env.client.post(env.base + "/contacts", json={"name": "A"}, headers=headers)
    assert r.status_code == 200
    assert (await env.client.get(env.base, headers=headers)).status_code == 200


async def test_json_suffix(env: Env) -> None:
    r = await env.client.get(env.base + ".json")
    assert (r.status_code, r.json()["identifier"]) == (200, env.inbox.identifier)
    r = await env.client.post(env.base + "/contacts.json", json={"name": "S"})
    assert r.status_code == 200
    sid = r.json()["source_id"]
    assert (await env.client.get(env.contact_url(sid) + ".json")).json()["name"] == "S"
    r = await env.client.post(env.contact_url(sid) + "/conversations.json")
    cid = r.json()["id"]
    r = await env.client.post(env.conv_url(sid, cid) + "/messages.json", json={"content": "m"})
    mid = r.json()["id"]
    assert (await env.client.get(env.conv_url(sid, cid) + ".json")).status_code == 200
    r = await env.client.patch(
        env.conv_url(sid, cid) + f"/messages/{mid}.json", json={"submitted_values": {"value": 1}}
    )
    assert r.status_code == 200
    r = await env.client.get(env.conv_url(sid, cid) + "/messages.json")
    assert [m["id"] for m in r.json()] == [mid]


# -- unknown routes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/public/api/v1/inboxes"),
        ("POST", "/public/api/v1/inboxes"),
        ("GET", "/public/api/v1"),
        ("GET", "/public/api/v2/inboxes/x"),
        ("GET", "/nothing/here"),
        ("GET", "/public/api/v1/inboxes/{inbox}/contacts"),
        ("DELETE", "/public/api/v1/inboxes/{inbox}"),
        ("POST", "/public/api/v1/inboxes/{inbox}"),
        ("PATCH", "/public/api/v1/inboxes/{inbox}"),
        ("DELETE", "/public/api/v1/inboxes/{inbox}/contacts/x"),
        ("POST", "/public/api/v1/inboxes/{inbox}/contacts/x"),
        ("PUT", "/public/api/v1/inboxes/{inbox}/contacts/x/conversations"),
        ("GET", "/attachments/x"),
    ],
)
async def test_undeclared_routes_and_methods_are_404(env: Env, method: str, path: str) -> None:
    r = await env.client.request(method, path.format(inbox=env.inbox.identifier))
    assert r.status_code == 404
    assert r.json() == NOT_FOUND
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_health(env: Env) -> None:
    r = await env.client.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


# -- body size --------------------------------------------------------------------------------


async def test_body_over_limit_is_413(make_env: EnvFactory) -> None:
    async with make_env(max_body_bytes=200) as env:
        r = await env.client.post(env.base + "/contacts", json={"name": "x" * 300})
        assert r.status_code == 413
        body = r.json()
        assert (body["status"], body["error"]) == (413, "Payload Too Large")
        assert "200 bytes" in body["description"]
        assert (
            await env.client.post(env.base + "/contacts", json={"name": "ok"})
        ).status_code == 200


async def _chunks(data: bytes, size: int = 64) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_streamed_body_over_limit_is_413(make_env: EnvFactory) -> None:
    async with make_env(max_body_bytes=200) as env:
        source_id, cid = await env.session()
        payload = b'{"content": "' + b"x" * 400 + b'"}'
        r = await env.client.post(
            env.conv_url(source_id, cid) + "/messages",
            content=_chunks(payload),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        assert r.json()["error"] == "Payload Too Large"


async def test_streamed_multipart_over_limit_is_413(make_env: EnvFactory) -> None:
    async with make_env(max_body_bytes=2000) as env:
        source_id, cid = await env.session()
        boundary = "b0undary"
        payload = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="attachments[]"; '
                f'filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + b"x" * 5000
            + f"\r\n--{boundary}--\r\n".encode()
        )
        r = await env.client.post(
            env.conv_url(source_id, cid) + "/messages",
            content=_chunks(payload, 512),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 413
        assert r.json()["error"] == "Payload Too Large"


async def test_json_over_json_limit_is_413(make_env: EnvFactory) -> None:
    async with make_env(max_json_bytes=100) as env:
        r = await env.client.post(env.base + "/contacts", json={"name": "x" * 200})
        assert r.status_code == 413
        assert r.json()["status"] == 413


async def test_malformed_multipart_is_400(env: Env) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(
        env.conv_url(source_id, cid) + "/messages",
        content=b"--nope\r\ngarbage",
        headers={"content-type": "multipart/form-data"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "Bad Request"


# -- rate limit -------------------------------------------------------------------------------


async def test_rate_limit_per_ip(make_env: EnvFactory) -> None:
    async with make_env(rate_limit_per_ip=5, rate_limit_window=60) as env:
        for _ in range(5):
            assert (await env.client.get(env.base)).status_code == 200
        r = await env.client.get(env.base)
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/json; charset=utf-8"
        body = r.json()
        assert (body["status"], body["error"]) == (429, "Too Many Requests")
        assert "127.0.0.1" in body["description"]
        retry = int(r.headers["retry-after"])
        assert 1 <= retry <= 120
        # every route counts, and unknown routes too
        assert (await env.client.post(env.base + "/contacts")).status_code == 429
        assert (await env.client.get("/nothing")).status_code == 429
        env.clock.advance(retry)
        assert (await env.client.get(env.base)).status_code == 200


async def test_rate_limit_is_per_client_address(make_env: EnvFactory) -> None:
    import httpx

    async with make_env(rate_limit_per_ip=2) as env:
        for _ in range(2):
            await env.client.get(env.base)
        assert (await env.client.get(env.base)).status_code == 429
        transport = httpx.ASGITransport(app=env.app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
            assert (await other.get(env.base)).status_code == 200


async def test_rate_limit_safelist(make_env: EnvFactory) -> None:
    async with make_env(rate_limit_per_ip=2, rate_limit_safelist=("127.0.0.1",)) as env:
        for _ in range(10):
            assert (await env.client.get(env.base)).status_code == 200


async def test_rate_limit_disabled_with_zero(make_env: EnvFactory) -> None:
    async with make_env(rate_limit_per_ip=0) as env:
        for _ in range(10):
            assert (await env.client.get(env.base)).status_code == 200


async def test_rate_limited_answer_is_readable_cross_origin(make_env: EnvFactory) -> None:
    async with make_env(rate_limit_per_ip=1) as env:
        await env.client.get(env.base)
        r = await env.client.get(env.base, headers={"origin": SHOP})
        assert r.status_code == 429
        assert r.headers["access-control-allow-origin"] == "*"


# -- CORS -------------------------------------------------------------------------------------


async def test_preflight(env: Env) -> None:
    r = await env.client.options(
        env.base + "/contacts",
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-custom",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "PATCH" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "content-type, x-custom"
    assert int(r.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in r.headers


async def test_cors_headers_on_public_responses(env: Env) -> None:
    r = await env.client.get(env.base, headers={"origin": SHOP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    r = await env.client.get(PUBLIC + "/inboxes/nope", headers={"origin": SHOP})
    assert r.status_code == 404
    assert r.headers["access-control-allow-origin"] == "*"
    r = await env.client.get(env.base)
    assert "access-control-allow-origin" not in r.headers
    r = await env.client.get("/health", headers={"origin": SHOP})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_global_origin_list(make_env: EnvFactory) -> None:
    async with make_env(cors_origins=(SHOP,)) as env:
        r = await env.client.get(env.base, headers={"origin": SHOP})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == SHOP
        assert "origin" in r.headers["vary"].lower()
        r = await env.client.get(env.base, headers={"origin": EVIL})
        assert r.status_code == 403
        assert r.json()["status"] == 403
        assert (await env.client.get(env.base)).status_code == 200


async def test_inbox_allowed_origins(env: Env) -> None:
    locked = await env.new_inbox(name="Shop", allowed_origins=[SHOP])
    base = inbox_url(locked)
    r = await env.client.post(base + "/contacts", json={"name": "x"}, headers={"origin": EVIL})
    assert r.status_code == 403
    body = r.json()
    assert (body["status"], body["error"]) == (403, "Forbidden")
    assert EVIL in body["description"]
    r = await env.client.options(
        base + "/contacts", headers={"origin": EVIL, "access-control-request-method": "POST"}
    )
    assert r.status_code == 403
    r = await env.client.options(
        base + "/contacts", headers={"origin": SHOP, "access-control-request-method": "POST"}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", SHOP)
    r = await env.client.post(base + "/contacts", json={"name": "x"}, headers={"origin": SHOP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", SHOP)
    sid = r.json()["source_id"]
    # without an Origin header (a server-side client) nothing changes
    r = await env.client.get(env.contact_url(sid, locked))
    assert r.status_code == 200
    # the nothing-created check: the refused request made no contact
    r = await env.client.get(
        env.contact_url(sid, locked) + "/conversations", headers={"origin": EVIL}
    )
    assert r.status_code == 403
    # another inbox without an allow-list stays open to every origin
    r = await env.client.get(env.base, headers={"origin": EVIL})
    assert (r.status_code, r.headers["access-control-allow-origin"]) == (200, "*")
