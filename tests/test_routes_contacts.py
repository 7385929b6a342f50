"""Public API: the inbox (§3.1) and contacts (§3.2-3.4, §4): shapes, HMAC, and the trust model
(a claim without proof never selects, merges into or reveals another contact)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.routes_helpers import CONTACT_KEYS, CONTACT_RECORD_KEYS, ISO, NOT_FOUND, PUBLIC, Env

pytestmark = pytest.mark.anyio

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
BASE58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{24}$")


def hmac_401(body: dict[str, Any]) -> None:
    assert body["status"] == 401
    assert body["error"] == "Unauthorized"
    assert body["description"].startswith("HMAC failed")
    assert body["errors"][0]["field"] == "identifier_hash"


# -- 3.1 inbox --------------------------------------------------------------------------------


async def test_show_inbox(env: Env) -> None:
    r = await env.client.get(env.base)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    # Chatwoot's keys, plus the web widget's settings (documented in COMPATIBILITY.md).
    assert set(body) == {
        "identifier", "identity_validation_enabled", "name", "timezone", "working_hours",
        "working_hours_enabled", "csat_survey_enabled", "greeting_enabled",
        "greeting_message", "out_of_office_message", "csat_display_type",
        "pre_chat_form_enabled", "pre_chat_form_options",
    }  # fmt: skip
    assert body["identifier"] == env.inbox.identifier
    assert body["identity_validation_enabled"] is False
    assert body["name"] == "Support API"
    assert body["timezone"] == "UTC"
    assert [wh["day_of_week"] for wh in body["working_hours"]] == list(range(7))
    sunday, monday = body["working_hours"][0], body["working_hours"][1]
    assert sunday == {
        "day_of_week": 0, "closed_all_day": True, "open_hour": None, "open_minutes": None,
        "close_hour": None, "close_minutes": None, "open_all_day": False,
    }  # fmt: skip
    assert (monday["open_hour"], monday["close_hour"], monday["closed_all_day"]) == (9, 17, False)


async def test_show_inbox_flags(env: Env) -> None:
    inbox = await env.new_inbox(hmac_mandatory=True, csat_survey_enabled=True, name="Other")
    body = (await env.client.get(f"{PUBLIC}/inboxes/{inbox.identifier}")).json()
    assert body["identity_validation_enabled"] is True
    assert body["csat_survey_enabled"] is True
    assert body["name"] == "Other"


async def test_unknown_inbox_is_404(env: Env) -> None:
    for method, path in [
        ("GET", "/inboxes/nope"),
        ("POST", "/inboxes/nope/contacts"),
        ("GET", "/inboxes/nope/contacts/x"),
        ("PATCH", "/inboxes/nope/contacts/x"),
        ("GET", "/inboxes/nope/contacts/x/conversations"),
        ("POST", "/inboxes/nope/contacts/x/conversations/1/messages"),
    ]:
        r = await env.client.request(method, PUBLIC + path, json={})
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, path)


# -- 3.2 create -------------------------------------------------------------------------------


async def test_create_contact_shape(env: Env) -> None:
    r = await env.client.post(
        env.base + "/contacts",
        json={"name": "Alice", "email": "Alice@Example.COM", "phone_number": "+15551234567"},
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == CONTACT_KEYS
    assert isinstance(body["id"], int)
    assert UUID.match(body["source_id"])
    assert BASE58.match(body["pubsub_token"])
    assert body["name"] == "Alice"
    assert body["email"] == "alice@example.com"
    assert body["phone_number"] == "+15551234567"


async def test_create_contact_without_params(env: Env) -> None:
    r = await env.client.post(env.base + "/contacts")
    assert r.status_code == 200
    body = r.json()
    assert re.match(r"^[a-z]+-[a-z]+-\d+$", body["name"])
    assert body["email"] is None and body["phone_number"] is None


async def test_same_source_id_returns_same_session_unchanged(env: Env) -> None:
    first = await env.contact(source_id="device-1", name="Alice")
    again = await env.contact(source_id="device-1", name="Bob", email="bob@example.com")
    assert again == first
    assert first["source_id"] == "device-1"


async def test_create_with_a_proved_identifier_reuses_its_contact(env: Env) -> None:
    proof = {"identifier": "user-42", "identifier_hash": env.hash("user-42")}
    a = await env.contact(**proof, name="A")
    b = await env.contact(**proof, name="B", email="b@example.com")
    assert b["id"] == a["id"]
    assert b["source_id"] != a["source_id"]
    assert b["pubsub_token"] != a["pubsub_token"]
    assert (b["name"], b["email"]) == ("A", None)  # reused without updating attributes


@pytest.mark.parametrize(
    "claim, column",
    [
        ({"identifier": "user-42"}, "identifier"),
        ({"email": "A@EXAMPLE.com"}, "email"),
        ({"phone_number": "+15550001111"}, "phone_number"),
    ],
)
async def test_a_claim_without_proof_never_selects_the_owner(
    env: Env, claim: dict[str, Any], column: str
) -> None:
    proof = {"identifier": "user-42", "identifier_hash": env.hash("user-42")}
    owner = await env.contact(
        **proof, name="Owner", email="a@example.com", phone_number="+15550001111"
    )
    claimer = await env.contact(**claim, name="Mallory")
    assert claimer["id"] != owner["id"]
    assert claimer["name"] == "Mallory"
    assert claimer["email"] is None and claimer["phone_number"] is None
    record = (await env.client.patch(env.contact_url(claimer["source_id"]), json={})).json()
    assert record["identifier"] is None
    value = claim[column].lower() if column == "email" else claim[column]
    assert record["additional_attributes"] == {f"claimed_{column}": value}
    shown = (await env.client.get(env.contact_url(owner["source_id"]))).json()
    assert shown["id"] == owner["id"] and shown["email"] == "a@example.com"


async def test_an_unproved_identifier_is_only_a_claim_even_when_free(env: Env) -> None:
    first = await env.contact(identifier="user-9")
    second = await env.contact(identifier="user-9")
    assert first["id"] != second["id"]
    proof = {"identifier": "user-9", "identifier_hash": env.hash("user-9")}
    real = await env.contact(**proof)
    assert real["id"] not in (first["id"], second["id"])


async def test_contacts_are_scoped_per_account_not_per_inbox(env: Env) -> None:
    other = await env.new_inbox(name="Second")
    a = await env.contact(identifier="u1", identifier_hash=env.hash("u1"))
    b = await env.contact(other, identifier="u1", identifier_hash=env.hash("u1", other))
    assert a["id"] == b["id"]
    # source_ids are scoped to their inbox
    r = await env.client.get(env.contact_url(a["source_id"], other))
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    "body, message, attribute",
    [
        ({"email": "not-an-email"}, "Email Invalid email", "email"),
        ({"phone_number": "5551234"}, "Phone number should be in e164 format", "phone_number"),
        ({"phone_number": "+05551234"}, "Phone number should be in e164 format", "phone_number"),
        (
            {"custom_attributes": {"plan": "x" * 1501}},
            "Custom attributes plan length should be < 1500",
            "custom_attributes",
        ),
        (
            {"custom_attributes": {"n": 10_000_000_000}},
            "Custom attributes n value should be < 9999999999",
            "custom_attributes",
        ),
    ],
)
async def test_create_contact_422(
    env: Env, body: dict[str, Any], message: str, attribute: str
) -> None:
    r = await env.client.post(env.base + "/contacts", json=body)
    assert r.status_code == 422
    assert r.json() == {"message": message, "attributes": [attribute]}


async def test_custom_attribute_limits_are_inclusive(env: Env) -> None:
    body = {"custom_attributes": {"plan": "x" * 1500, "n": 9_999_999_999}}
    r = await env.client.post(env.base + "/contacts", json=body)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body, attribute",
    [
        ({"name": 5}, "name"),
        ({"email": ["a@b.co"]}, "email"),
        ({"custom_attributes": "plan"}, "custom_attributes"),
        ({"identifier": {"a": 1}}, "identifier"),
    ],
)
async def test_create_contact_wrong_types_422(
    env: Env, body: dict[str, Any], attribute: str
) -> None:
    r = await env.client.post(env.base + "/contacts", json=body)
    assert r.status_code == 422
    got = r.json()
    assert set(got) == {"message", "attributes"}
    assert got["attributes"] == [attribute]
    assert isinstance(got["message"], str) and got["message"]


# -- HMAC -------------------------------------------------------------------------------------


async def test_create_with_wrong_hash_is_401(env: Env) -> None:
    r = await env.client.post(
        env.base + "/contacts", json={"identifier": "user-1", "identifier_hash": "0" * 64}
    )
    assert r.status_code == 401
    assert r.json() == {
        "status": 401,
        "error": "Unauthorized",
        "description": "HMAC failed: Invalid Identifier Hash Provided",
        "errors": [{
            "field": "identifier_hash",
            "message": "HMAC failed: Invalid Identifier Hash Provided",
            "code": "invalid_hmac",
        }],
    }  # fmt: skip


async def test_hash_for_another_identifier_is_401(env: Env) -> None:
    body = {"identifier": "user-1", "identifier_hash": env.hash("user-2")}
    r = await env.client.post(env.base + "/contacts", json=body)
    assert r.status_code == 401


async def test_create_with_correct_hash(env: Env) -> None:
    body = {"identifier": "user-1", "identifier_hash": env.hash("user-1"), "name": "Al"}
    r = await env.client.post(env.base + "/contacts", json=body)
    assert r.status_code == 200
    assert r.json()["name"] == "Al"


async def test_show_and_update_with_wrong_hash_are_401(env: Env) -> None:
    c = await env.contact(identifier="user-1")
    url = env.contact_url(c["source_id"])
    r = await env.client.get(url, params={"identifier": "user-1", "identifier_hash": "bad"})
    assert r.status_code == 401
    hmac_401(r.json())
    r = await env.client.patch(url, json={"identifier": "user-1", "identifier_hash": "bad"})
    assert r.status_code == 401
    hmac_401(r.json())
    # and with a correct one
    good = {"identifier": "user-1", "identifier_hash": env.hash("user-1")}
    assert (await env.client.get(url, params=good)).status_code == 200
    assert (await env.client.patch(url, json={**good, "name": "New"})).json()["name"] == "New"


async def test_hmac_mandatory_inbox(env: Env) -> None:
    inbox = await env.new_inbox(hmac_mandatory=True)
    base = f"{PUBLIC}/inboxes/{inbox.identifier}"
    r = await env.client.post(base + "/contacts", json={"name": "x"})
    assert r.status_code == 401
    hmac_401(r.json())
    r = await env.client.post(base + "/contacts", json={"identifier": "u", "identifier_hash": ""})
    assert r.status_code == 401
    good = {"identifier": "u", "identifier_hash": env.hash("u", inbox)}
    r = await env.client.post(base + "/contacts", json=good)
    assert r.status_code == 200
    sid = r.json()["source_id"]
    url = env.contact_url(sid, inbox)
    assert (await env.client.get(url)).status_code == 401
    assert (await env.client.patch(url, json={"name": "n"})).status_code == 401
    assert (await env.client.put(url, json={"name": "n"})).status_code == 401
    assert (await env.client.get(url, params=good)).status_code == 200
    assert (await env.client.patch(url, json={**good, "name": "n"})).status_code == 200
    # conversations and messages never check HMAC, even on a mandatory inbox
    conv = await env.conversation(sid, inbox)
    r = await env.client.post(
        env.conv_url(sid, conv["id"], inbox) + "/messages", json={"content": "hi"}
    )
    assert r.status_code == 200


async def _conversation_ids(env: Env, source_id: str) -> list[int]:
    r = await env.client.get(env.contact_url(source_id) + "/conversations")
    assert r.status_code == 200
    return [c["id"] for c in r.json()]


async def test_hash_on_create_marks_session_verified(env: Env) -> None:
    proof = {"identifier": "user-7", "identifier_hash": env.hash("user-7")}
    first = await env.contact(**proof)
    conv = await env.conversation(first["source_id"])
    plain = await env.contact(identifier="user-7")
    assert plain["id"] != first["id"]
    assert await _conversation_ids(env, plain["source_id"]) == []
    r = await env.client.get(env.conv_url(plain["source_id"], conv["id"]))
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    verified = await env.contact(**proof)
    assert verified["id"] == first["id"]
    assert await _conversation_ids(env, verified["source_id"]) == [conv["id"]]
    r = await env.client.get(env.conv_url(verified["source_id"], conv["id"]))
    assert r.status_code == 200


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_proving_on_show_or_update_binds_the_session_to_that_contact(
    env: Env, method: str
) -> None:
    good = {"identifier": "user-8", "identifier_hash": env.hash("user-8")}
    first = await env.contact(**good)
    conv = await env.conversation(first["source_id"])
    other = await env.contact(name="Visitor")
    own = await env.conversation(other["source_id"])
    assert await _conversation_ids(env, other["source_id"]) == [own["id"]]
    url = env.contact_url(other["source_id"])
    if method == "GET":
        r = await env.client.get(url, params=good)
    else:
        r = await env.client.patch(url, json=good)
    assert r.status_code == 200
    assert r.json()["id"] == first["id"]
    # the session and the conversation it opened moved to the proved contact
    assert await _conversation_ids(env, other["source_id"]) == [conv["id"], own["id"]]
    assert await _conversation_ids(env, first["source_id"]) == [conv["id"], own["id"]]
    # sticky: a later call without a hash does not reset it
    assert (await env.client.get(url)).status_code == 200
    assert await _conversation_ids(env, other["source_id"]) == [conv["id"], own["id"]]


async def test_an_anonymous_visitor_who_proves_a_new_identifier_keeps_their_contact(
    env: Env,
) -> None:
    visitor = await env.contact(name="Visitor", identifier="user-5")
    conv = await env.conversation(visitor["source_id"])
    good = {"identifier": "user-5", "identifier_hash": env.hash("user-5")}
    r = await env.client.patch(env.contact_url(visitor["source_id"]), json=good)
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["identifier"]) == (visitor["id"], "user-5")
    assert body["additional_attributes"] == {}  # the claim became the proved identifier
    assert await _conversation_ids(env, visitor["source_id"]) == [conv["id"]]


async def test_proving_another_identifier_moves_only_this_session(env: Env) -> None:
    a = {"identifier": "user-a", "identifier_hash": env.hash("user-a")}
    b = {"identifier": "user-b", "identifier_hash": env.hash("user-b")}
    phone = await env.contact(**a)
    laptop = await env.contact(**a)
    phone_conv = await env.conversation(phone["source_id"])
    laptop_conv = await env.conversation(laptop["source_id"])
    r = await env.client.get(env.contact_url(laptop["source_id"]), params=b)
    assert r.status_code == 200
    moved = r.json()
    assert moved["id"] != phone["id"]
    assert await _conversation_ids(env, laptop["source_id"]) == [laptop_conv["id"]]
    assert await _conversation_ids(env, phone["source_id"]) == [phone_conv["id"]]
    again = await env.contact(**b)
    assert again["id"] == moved["id"]


# -- 3.3 show ---------------------------------------------------------------------------------


async def test_show_contact(env: Env) -> None:
    created = await env.contact(name="Alice", email="alice@example.com")
    r = await env.client.get(env.contact_url(created["source_id"]))
    assert r.status_code == 200
    assert r.json() == created


async def test_show_unknown_source_id_is_404(env: Env) -> None:
    r = await env.client.get(env.contact_url("missing"))
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


# -- 3.4 update -------------------------------------------------------------------------------


async def test_update_returns_raw_contact_record(env: Env) -> None:
    created = await env.contact(
        identifier="user-42", identifier_hash=env.hash("user-42"), name="Alice"
    )
    r = await env.client.patch(
        env.contact_url(created["source_id"]),
        json={
            "name": "Alice Smith",
            "email": "alice@acme.inc",
            "custom_attributes": {"plan": "pro"},
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == CONTACT_RECORD_KEYS
    assert "source_id" not in body and "pubsub_token" not in body
    assert body["id"] == created["id"]
    assert body["name"] == "Alice Smith"
    assert body["email"] == "alice@acme.inc"
    assert body["identifier"] == "user-42"
    assert body["custom_attributes"] == {"plan": "pro"}
    assert body["contact_type"] == "lead"
    assert body["account_id"] == env.account_id
    assert ISO.match(body["created_at"]) and ISO.match(body["updated_at"])
    assert body["created_at"] == "2026-01-10T12:00:00.000Z"
    assert (body["middle_name"], body["last_name"], body["blocked"]) == ("", "", False)
    assert body["additional_attributes"] == {}
    assert body["company_id"] is None


async def test_put_is_update_too(env: Env) -> None:
    created = await env.contact(name="A")
    r = await env.client.put(env.contact_url(created["source_id"]), json={"name": "B"})
    assert r.status_code == 200
    assert r.json()["name"] == "B"


async def test_update_ignores_identifier_and_blank_values(env: Env) -> None:
    created = await env.contact(
        identifier="orig", identifier_hash=env.hash("orig"), name="Alice", email="a@example.com"
    )
    r = await env.client.patch(
        env.contact_url(created["source_id"]),
        json={"identifier": "changed", "name": "", "email": ""},
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["identifier"], body["name"], body["email"]) == ("orig", "Alice", "a@example.com")


async def test_update_deep_merges_custom_attributes(env: Env) -> None:
    created = await env.contact(
        custom_attributes={"plan": "free", "prefs": {"lang": "en", "tz": "UTC"}}
    )
    r = await env.client.patch(
        env.contact_url(created["source_id"]),
        json={"custom_attributes": {"plan": "pro", "prefs": {"lang": "fr"}, "seats": 3}},
    )
    assert r.status_code == 200
    assert r.json()["custom_attributes"] == {
        "plan": "pro", "prefs": {"lang": "fr", "tz": "UTC"}, "seats": 3,
    }  # fmt: skip


@pytest.mark.parametrize(
    "column, value", [("email", "OWNER@example.com"), ("phone_number", "+15550009999")]
)
async def test_update_never_merges_into_the_owner(env: Env, column: str, value: str) -> None:
    owner = await env.contact(
        name="Owner", email="owner@example.com", phone_number="+15550009999",
        custom_attributes={"secret": 1},
    )  # fmt: skip
    owner_conv = await env.conversation(owner["source_id"])
    await env.send(owner["source_id"], owner_conv["id"], content="owner's secret")
    guest = await env.contact(name="Guest", custom_attributes={"b": 2})
    guest_conv = await env.conversation(guest["source_id"])
    r = await env.client.patch(env.contact_url(guest["source_id"]), json={column: value})
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == guest["id"] != owner["id"]
    assert (body["name"], body["email"], body["phone_number"]) == ("Guest", None, None)
    assert body["custom_attributes"] == {"b": 2}
    assert body["additional_attributes"] == {f"claimed_{column}": value.lower()}
    assert "secret" not in r.text
    convs = (await env.client.get(env.contact_url(guest["source_id"]) + "/conversations")).json()
    assert [c["id"] for c in convs] == [guest_conv["id"]]
    r = await env.client.get(env.conv_url(guest["source_id"], owner_conv["id"]) + "/messages")
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    shown = (await env.client.get(env.contact_url(owner["source_id"]))).json()
    assert (shown["id"], shown["email"]) == (owner["id"], "owner@example.com")


async def test_update_sets_an_email_nobody_holds(env: Env) -> None:
    guest = await env.contact(name="Guest")
    url = env.contact_url(guest["source_id"])
    r = await env.client.patch(
        url, json={"email": "Guest@Example.com", "phone_number": "+15550008888"}
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["email"], body["phone_number"]) == ("guest@example.com", "+15550008888")
    assert body["additional_attributes"] == {}
    assert (await env.client.patch(url, json={"email": "guest@example.com"})).status_code == 200


@pytest.mark.parametrize(
    "body, message, attribute",
    [
        ({"email": "bad@"}, "Email Invalid email", "email"),
        ({"phone_number": "12"}, "Phone number should be in e164 format", "phone_number"),
        (
            {"custom_attributes": {"k": "v" * 1501}},
            "Custom attributes k length should be < 1500",
            "custom_attributes",
        ),
    ],
)
async def test_update_contact_422(
    env: Env, body: dict[str, Any], message: str, attribute: str
) -> None:
    created = await env.contact()
    r = await env.client.patch(env.contact_url(created["source_id"]), json=body)
    assert r.status_code == 422
    assert r.json() == {"message": message, "attributes": [attribute]}


async def test_update_wrong_type_422(env: Env) -> None:
    created = await env.contact()
    r = await env.client.patch(env.contact_url(created["source_id"]), json={"name": 12})
    assert r.status_code == 422
    assert r.json()["attributes"] == ["name"]


async def test_update_unknown_source_id_is_404(env: Env) -> None:
    r = await env.client.patch(env.contact_url("missing"), json={"name": "x"})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
