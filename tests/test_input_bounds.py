"""Input bounds at the HTTP edge, one defect class at a time (``gateway.inputs``,
``gateway.forms``, ``gateway.http.read_params``): what a form or a JSON body may carry, how
deep, how large a contact's attributes may grow, strict ids and numbers, NUL characters,
invalid UTF-8, blank messages. ``test_bad_input.py`` sends the same classes to every route.

Runs on PostgreSQL too (``INBOXGATE_TEST_STORE=postgresql``): NUL breaks only there.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway import inputs
from gateway.domain import validation
from gateway.domain.errors import InvalidAttribute
from gateway.errors import BadRequest
from gateway.forms import parse_urlencoded
from gateway.realtime.room import _int as room_int
from tests.agent_helpers import Api, customer_conversation, make_staff
from tests.routes_helpers import NOT_FOUND, PUBLIC, Env

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}
ODD_IDS = ("+{n}", " {n}", "{n} ", "{n}_0", "0x{n}", "{n}.0", "-{n}")
CA_TOO_LARGE = {
    "message": "Custom attributes are too large (maximum is 16384 bytes of JSON)",
    "attributes": ["custom_attributes"],
}


def odd_spellings(n: int) -> list[str]:
    """``n`` as ``int()`` reads it, but not as ASCII digits."""
    full = "".join(chr(0xFF10 + int(d)) for d in str(n))
    arabic = "".join(chr(0x0660 + int(d)) for d in str(n))
    return [f.format(n=n) for f in ODD_IDS] + [full, arabic]


async def stored_custom(env: Env, source_id: str) -> dict[str, Any]:
    r = await env.client.patch(env.contact_url(source_id), json={})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["custom_attributes"]
    return data


# -- unit: the parsers ----------------------------------------------------------------------


def test_parse_id_takes_ascii_digits_within_64_bits_only() -> None:
    assert inputs.parse_id("42") == 42
    assert inputs.parse_id("0042") == 42
    assert inputs.parse_id(7) == 7
    assert inputs.parse_id(str(2**63 - 1)) == 2**63 - 1
    for bad in [*odd_spellings(1), str(2**63), "9" * 5000, "", "²", True, 2**63, -1, 1.0, None]:
        assert inputs.parse_id(bad) is None, bad
    assert int("1_0") == 10 and int(" 1") == 1 and int(chr(0xFF11)) == 1  # int() takes them


def test_parse_urlencoded_is_strict_utf8() -> None:
    assert parse_urlencoded(b"a=1&b%5Bc%5D=x+y&flag&=v&e=%C3%A9&raw=\xc3\xa9") == [
        ("a", "1"), ("b[c]", "x y"), ("flag", ""), ("", "v"), ("e", "é"), ("raw", "é"),
    ]  # fmt: skip
    for body, field in [(b"ok=1&content=%FF", "content"), (b"name=\xff\xfe", "name")]:
        with pytest.raises(BadRequest) as caught:
            parse_urlencoded(body)
        assert caught.value.field == field
    with pytest.raises(BadRequest):
        parse_urlencoded(b"&".join([b"a=1"] * 1001))


def test_check_bag_walks_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(BadRequest) as caught:
        inputs.check_bag({"payload": deep})
    assert caught.value.field == "payload"
    inputs.check_bag({"ok": [[[[{"a": [1, 2.5, None, True]}]]]]})


def test_decode_json_turns_recursion_into_400() -> None:
    with pytest.raises(BadRequest):
        inputs.decode_json(b"[" * 200_000)
    with pytest.raises(msgspec.DecodeError):
        inputs.decode_json(b"[1,")


def test_room_ids_are_ascii_digits() -> None:
    assert room_int("12") == 12 and room_int(12) == 12
    for bad in [chr(0x0661), "²", chr(0xFF11), "+1", " 1", "9" * 30, 2**70, True]:
        assert room_int(bad) is None, bad


def test_csat_rating_and_email_bounds() -> None:
    assert validation.csat_rating(" 4 ") == 4
    for bad in ["²", chr(0x0661), "9" * 5000, "+4", "4.0", 2**70]:
        with pytest.raises(InvalidAttribute):
            validation.csat_rating(bad)
    validation.email("a" * 240 + "@example.com")  # 252 characters
    with pytest.raises(InvalidAttribute):
        validation.email("a" * 250 + "@example.com")


# -- 1. bodies: forms are bounded like JSON ----------------------------------------------


async def test_nested_custom_attributes_by_multipart_are_bounded(env: Env) -> None:
    """The report: 10.5 MB stored on one contact through bracket-notation form fields."""
    contact = await env.contact()
    url = env.contact_url(contact["source_id"])
    files = {f"custom_attributes[a][b{i}]": (None, "x" * 1400) for i in range(20)}
    r = await env.client.patch(url, files=files)  # 28 KB of nested strings, each under 1500
    assert (r.status_code, r.json()) == (422, CA_TOO_LARGE)
    r = await env.client.patch(url, data={k: v[1] for k, v in files.items()})  # urlencoded
    assert (r.status_code, r.json()) == (422, CA_TOO_LARGE)
    r = await env.client.patch(url, params={k: v[1] for k, v in list(files.items())[:12]})
    assert (r.status_code, r.json()) == (422, CA_TOO_LARGE)
    assert await stored_custom(env, contact["source_id"]) == {}
    r = await env.client.post(env.base + "/contacts", files=files)
    assert (r.status_code, r.json()) == (422, CA_TOO_LARGE)
    r = await env.client.post(env.contact_url(contact["source_id"]) + "/conversations", files=files)
    assert (r.status_code, r.json()) == (422, CA_TOO_LARGE)


async def test_repeated_patches_cannot_grow_custom_attributes(env: Env) -> None:
    contact = await env.contact()
    url = env.contact_url(contact["source_id"])
    statuses = []
    for i in range(20):  # each request is small; the deep merge keeps every key
        body = {"custom_attributes": {"nested": {f"k{i}": "y" * 1400}}}
        statuses.append((await env.client.patch(url, json=body)).status_code)
    assert statuses[:10] == [200] * 10 and statuses[-1] == 422
    stored = await stored_custom(env, contact["source_id"])
    assert 10 <= len(stored["nested"]) < 12
    assert len(msgspec.json.encode(stored)) <= validation.MAX_ATTRIBUTES_BYTES


async def test_agent_updates_cannot_grow_contact_attributes(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    created = await api.post("/contacts", json={"name": "Ann"})
    contact_id = created["payload"]["contact"]["id"]
    for name in ("custom_attributes", "additional_attributes"):
        statuses = []
        for i in range(15):
            body = {name: {f"k{i}": "y" * 1400}}
            r = await api.request("PATCH", f"/contacts/{contact_id}", json=body)
            statuses.append(r.status_code)
        assert statuses[:10] == [200] * 10 and statuses[-1] == 422, (name, statuses)
        assert r.json()["attributes"] == [name]


async def test_submitted_values_are_bounded(env: Env) -> None:
    source_id, cid = await env.session()
    message = await env.send(source_id, cid, content="pick")
    url = env.conv_url(source_id, cid) + f"/messages/{message['id']}"
    values = [{"title": f"t{i}", "value": "v" * 1400} for i in range(12)]
    r = await env.client.patch(url, json={"submitted_values": values})
    assert (r.status_code, r.json()["attributes"]) == (422, ["submitted_values"])
    assert (await env.client.patch(url, json={"submitted_values": values[:2]})).status_code == 200


async def test_form_text_is_bounded_as_a_whole(env: Env) -> None:
    """Starlette bounds each multipart text part (1 MiB), not their sum; JSON has 1 MiB."""
    source_id, cid = await env.session()
    url = env.conv_url(source_id, cid) + "/messages"
    files = {f"junk{i}": (None, "x" * 100_000) for i in range(11)}
    r = await env.client.post(url, files={"content": (None, "hi"), **files})
    assert r.status_code == 413 and r.json()["error"] == "Payload Too Large"
    r = await env.client.post(url, content=b"content=" + b"x" * 1_100_000, headers=FORM)
    assert r.status_code == 413


async def test_keys_values_and_maps_are_bounded_in_every_format(env: Env) -> None:
    url = env.base + "/contacts"
    too_many = {f"k{i}": 1 for i in range(1001)}
    r = await env.client.post(url, json={"custom_attributes": too_many})
    assert (r.status_code, r.json()["attributes"]) == (422, ["custom_attributes"])
    r = await env.client.post(url, json={"custom_attributes": {"k" * 256: 1}})
    assert (r.status_code, r.json()["attributes"]) == (422, ["custom_attributes"])
    r = await env.client.post(url, files={"custom_attributes[" + "k" * 256 + "]": (None, "v")})
    assert (r.status_code, r.json()["attributes"]) == (422, ["custom_attributes"])
    r = await env.client.post(url, json={"tags": list(range(10_001))})
    assert (r.status_code, r.json()["attributes"]) == (422, ["tags"])
    r = await env.client.post(url, json={"name": "n" * 300_000})
    assert (r.status_code, r.json()["attributes"]) == (422, ["name"])
    r = await env.client.post(url, json={"custom_attributes": {"seats": 10**20}})
    assert (r.status_code, r.json()["attributes"]) == (422, ["custom_attributes"])


# -- 2. deep nesting ------------------------------------------------------------------------


async def test_deep_json_is_400_on_public_and_agent_routes(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    source_id, cid = await env.session()
    public = env.conv_url(source_id, cid) + "/messages"
    deep = b"[" * 200_000
    nested = b'{"content":"a","x":' + b"[" * 900 + b"]" * 900 + b"}"  # parses, but too deep
    for body in (deep, nested, b'{"content":"a","x":' + b'{"a":' * 33 + b"1" + b"}" * 34):
        for r in (
            await env.client.post(public, content=body, headers=JSON),
            await env.client.post(public, content=body),  # no content type: sniffed as JSON
            await api.request("POST", f"/conversations/{cid}/messages", content=body,
                              headers=JSON),
        ):  # fmt: skip
            assert r.status_code == 400, body[:40]
            assert r.json()["error"] == "Bad Request"
            assert "nested too deeply" in r.json()["description"]
    assert await env.messages(source_id, cid) == []


async def test_deep_bracket_notation_is_400(env: Env) -> None:
    key = "custom_attributes" + "[a]" * 40
    for send in (
        lambda: env.client.post(env.base + "/contacts", data={key: "v"}),
        lambda: env.client.post(env.base + "/contacts", files={key: (None, "v")}),
        lambda: env.client.post(env.base + "/contacts", params={key: "v"}),
    ):
        r = await send()
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "custom_attributes"


async def test_deep_content_attributes_string_is_422(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    _contact, cid = await customer_conversation(env)
    for text in ("[" * 100_000, '{"items":' + "[" * 50 + "]" * 50 + "}", '{"a":"\\u0000"}'):
        r = await api.request(
            "POST", f"/conversations/{cid}/messages",
            json={"content": "c", "content_attributes": text},
        )  # fmt: skip
        assert r.status_code == 422 and set(r.json()) == {"error"}, r.text


# -- 3. numbers and ids ---------------------------------------------------------------------


async def test_odd_path_ids_find_nothing(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    source_id, cid = await env.session()
    message = await env.send(source_id, cid, content="hi")
    for odd in [*odd_spellings(cid), "9" * 30, "9" * 5000, str(2**63)]:
        r = await env.client.get(env.conv_url(source_id, odd))
        assert (r.status_code, r.json()) == (404, NOT_FOUND), odd
        r = await api.request("GET", f"/conversations/{odd}")
        assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"}), odd
    for odd in odd_spellings(message["id"]):
        r = await env.client.patch(env.conv_url(source_id, cid) + f"/messages/{odd}", json={})
        assert r.status_code == 404, odd
    for odd in [*odd_spellings(env.account_id), "9" * 30, "9" * 5000]:
        r = await env.client.get(
            f"/api/v1/accounts/{odd}/conversations", headers={"api_access_token": api.token}
        )
        assert (r.status_code, r.json()) == (404, {"error": "Resource could not be found"}), odd
        r = await env.client.get(f"/api/v1/accounts/{odd}/conversations")
        assert r.status_code == 401, odd  # the token is still checked first


async def test_odd_query_numbers_are_422(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    source_id, cid = await env.session()
    await env.send(source_id, cid, content="hi")
    public = env.conv_url(source_id, cid) + "/messages"
    for odd in [*odd_spellings(5), "9" * 30, "9" * 5000, "²"]:
        for name in ("before", "after"):
            r = await env.client.get(public, params={name: odd})
            assert (r.status_code, r.json()["attributes"]) == (422, [name]), odd
            r = await api.request("GET", f"/conversations/{cid}/messages", params={name: odd})
            assert (r.status_code, r.json()["attributes"]) == (422, [name]), odd
        for path in ("/conversations", "/contacts", "/contacts/search", "/conversations/meta"):
            r = await api.request("GET", path, params={"page": odd})
            assert (r.status_code, r.json()["attributes"]) == (422, ["page"]), (path, odd)
    assert (await api.request("GET", "/contacts", params={"page": "0"})).status_code == 200
    assert (await env.client.get(public, params={"before": str(2**63 - 1)})).status_code == 200


async def test_odd_ids_in_bodies_find_nothing(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    contact, _cid = await customer_conversation(env)
    for odd in [*odd_spellings(env.inbox.id), "9" * 30, 10**30]:
        body = {"inbox_id": odd, "contact_id": contact["id"]}
        r = await api.request("POST", "/conversations", json=body)
        assert r.status_code in (404, 422), (odd, r.text)


async def test_odd_csat_ratings_are_422(env: Env) -> None:
    source_id, cid = await env.session()
    message = await env.send(source_id, cid, content="hi")
    url = env.conv_url(source_id, cid) + f"/messages/{message['id']}"
    for rating in ["²", "9" * 5000, chr(0x0661), "+4", "4.5", 0, 6]:
        body = {"submitted_values": {"csat_survey_response": {"rating": rating}}}
        r = await env.client.patch(url, json=body)
        assert (r.status_code, r.json()["attributes"]) == (422, ["rating"]), rating


# -- 3. NUL characters ----------------------------------------------------------------------


async def test_nul_in_paths_is_404(env: Env) -> None:
    source_id, cid = await env.session()
    for path in (
        f"{PUBLIC}/inboxes/%00",
        f"{PUBLIC}/inboxes/{env.inbox.identifier}%00",
        env.contact_url("a%00b"),
        env.conv_url(source_id, cid) + "%00/messages",
        f"{PUBLIC}/csat_survey/%00",
        "/attachments/%00/x.png",
    ):
        r = await env.client.get(path)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path
    r = await env.client.get(f"{PUBLIC}/inboxes/%00", headers={"origin": "https://a.example"})
    assert r.status_code == 404  # before the CORS check looks the inbox up


async def test_nul_in_text_is_422(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    source_id, cid = await env.session()
    messages = env.conv_url(source_id, cid) + "/messages"
    cases = [
        (env.base + "/contacts", {"name": "a\x00"}, "name"),
        (env.base + "/contacts", {"custom_attributes": {"k\x00": "v"}}, "custom_attributes"),
        (env.contact_url(source_id), {"email": "a\x00@b.io"}, "email"),
        (messages, {"content": "a\x00b"}, "content"),
        (messages, {"content": "a", "echo_id": "\x00"}, "echo_id"),
    ]
    for url, body, field in cases:
        method = "PATCH" if url == env.contact_url(source_id) else "POST"
        for kw in ({"json": body}, {"data": body} if isinstance(body.get(field), str) else {}):
            if not kw:
                continue
            r = await env.client.request(method, url, **kw)
            assert (r.status_code, r.json()["attributes"]) == (422, [field]), (url, body, kw)
    r = await env.client.get(messages, params={"before": "\x00"})
    assert r.status_code == 422
    r = await api.request("GET", "/contacts/search", params={"q": "a\x00"})
    assert (r.status_code, r.json()["attributes"]) == (422, ["q"])
    boundary = "b0undary"
    for disposition, value in [
        (b'name="attachments[]"; filename="a\x00.png"', b"\x89PNG"),
        (b'name="a\x00b"', b"x"),
    ]:
        body = (
            f"--{boundary}\r\n".encode() + b"Content-Disposition: form-data; " + disposition
            + b"\r\n\r\n" + value + f"\r\n--{boundary}--\r\n".encode()
        )  # fmt: skip
        r = await env.client.post(
            messages, content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert r.status_code == 422, r.text
    assert await env.messages(source_id, cid) == []


# -- 4. blank messages, e-mail, invalid UTF-8 -----------------------------------------------


async def test_agent_blank_text_message_is_422_but_items_need_no_content(env: Env) -> None:
    await make_staff(env)
    api = Api(env, "admin-token-0123456789abcdef", env.account_id)
    _contact, cid = await customer_conversation(env)
    url = f"/conversations/{cid}/messages"
    blank = {"error": "Validation failed: Content can't be blank"}
    for body in ({}, {"content": ""}, {"content": "  "}, {"private": True}):
        r = await api.request("POST", url, json=body)
        assert (r.status_code, r.json()) == (422, blank), body
    items = {"items": [{"title": "Yes", "value": "yes"}]}
    r = await api.request(
        "POST", url, json={"content_type": "input_select", "content_attributes": items}
    )
    assert r.status_code == 200 and r.json()["content"] is None
    r = await api.request("POST", url, files={"attachments[]": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 200


async def test_long_email_is_422(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts", json={"email": "a" * 250 + "@example.com"})
    assert (r.status_code, r.json()) == (
        422, {"message": "Email is too long (maximum is 254 characters)", "attributes": ["email"]}
    )  # fmt: skip


async def test_invalid_utf8_in_forms_is_400_naming_the_field(env: Env) -> None:
    source_id, cid = await env.session()
    url = env.conv_url(source_id, cid) + "/messages"
    boundary = "b0undary"

    def multipart(name: bytes, value: bytes) -> bytes:
        return (
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n'
            + value + f"\r\n--{boundary}--\r\n".encode()
        )  # fmt: skip

    mp = {"content-type": f"multipart/form-data; boundary={boundary}"}
    for body, headers, field in [
        (b"content=%FF%FE", FORM, "content"),
        (b"content=ok&echo_id=\xff", FORM, "echo_id"),
        (multipart(b"content", b"caf\xe9"), mp, "content"),
        (multipart(b"caf\xe9", b"x"), mp, "name"),
    ]:
        r = await env.client.post(url, content=body, headers=headers)
        assert r.status_code == 400, body
        assert r.json()["errors"][0]["field"] == field
    r = await env.client.get(url + "?before=%FF")
    assert (r.status_code, r.json()["errors"][0]["field"]) == (400, "before")
    r = await env.client.post(url, content="content=café".encode(), headers=FORM)
    assert (r.status_code, r.json()["content"]) == (200, "café")  # raw UTF-8 is fine
    r = await env.client.post(url, content=multipart(b"content", "thé".encode()), headers=mp)
    assert (r.status_code, r.json()["content"]) == (200, "thé")
