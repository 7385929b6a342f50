"""Public API: messages (§3.11-3.13): list windows, create (echo_id, attachments, limits),
update submitted_values."""

from __future__ import annotations

import time
from typing import Any

import itsdangerous
import pytest

from gateway.domain import conversations as conv_ops
from gateway.domain import message_reads
from gateway.domain import messages as msg_ops
from tests.routes_helpers import MESSAGE_KEYS, NOT_FOUND, T0, Env, EnvFactory, attachment_files

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"\x00\xff" * 300


def _messages_url(env: Env, source_id: str, cid: int) -> str:
    return env.conv_url(source_id, cid) + "/messages"


# -- 3.12 create ------------------------------------------------------------------------------


async def test_create_message_shape(env: Env) -> None:
    contact = await env.contact(name="Alice", identifier="u-1", identifier_hash=env.hash("u-1"))
    conv = await env.conversation(contact["source_id"])
    r = await env.client.post(
        _messages_url(env, contact["source_id"], conv["id"]),
        json={"content": "Hello", "echo_id": "tmp-1"},
    )
    assert r.status_code == 200
    assert r.json() == {
        "id": 1,
        "content": "Hello",
        "message_type": 0,
        "content_type": "text",
        "content_attributes": {},
        "created_at": int(T0),
        "conversation_id": conv["id"],
        "sender": {
            "type": "contact",
            "additional_attributes": {},
            "custom_attributes": {},
            "email": None,
            "id": contact["id"],
            "identifier": "u-1",
            "name": "Alice",
            "phone_number": None,
            "thumbnail": "",
            "blocked": False,
        },
    }


async def test_blank_message_is_422(env: Env) -> None:
    """Chatwoot creates a message with neither content nor a file; a deliberate departure
    (COMPATIBILITY.md): it shows nothing to anyone."""
    source_id, cid = await env.session()
    url = _messages_url(env, source_id, cid)
    blank = {"message": "Content can't be blank", "attributes": ["content"]}
    for body in (None, {}, {"content": ""}, {"content": " \n\t"}, {"echo_id": "e-1"}):
        r = await env.client.post(url, json=body)
        assert (r.status_code, r.json()) == (422, blank), body
    r = await env.client.post(url, data={"content": ""})
    assert (r.status_code, r.json()) == (422, blank)
    assert await env.messages(source_id, cid) == []
    files = [("attachments[]", ("a.png", PNG, "image/png"))]
    r = await env.client.post(url, data={"content": ""}, files=files)
    assert r.status_code == 200  # a file alone is a message


async def test_content_length_limit(env: Env) -> None:
    source_id, cid = await env.session()
    url = _messages_url(env, source_id, cid)
    assert (await env.client.post(url, json={"content": "x" * 150_000})).status_code == 200
    r = await env.client.post(url, json={"content": "x" * 150_001})
    assert r.status_code == 422
    assert r.json() == {
        "message": "Content is too long (maximum is 150000 characters)",
        "attributes": ["content"],
    }


@pytest.mark.parametrize("content", [{"a": 1}, ["x"], True])
async def test_content_of_wrong_type_is_422(env: Env, content: Any) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(_messages_url(env, source_id, cid), json={"content": content})
    assert r.status_code == 422
    assert r.json()["attributes"] == ["content"]


async def test_flood_guard(make_env: EnvFactory) -> None:
    async with make_env(messages_per_minute=3) as env:
        source_id, cid = await env.session()
        sent = []
        for i in range(3):
            sent.append(await env.send(source_id, cid, content=str(i), echo_id=f"e{i}"))
            env.clock.advance(1)
        r = await env.client.post(_messages_url(env, source_id, cid), json={"content": "x"})
        assert r.status_code == 422
        assert r.json() == {"message": "Too many messages", "attributes": ["base"]}
        # Chatwoot's 422, plus when to come back: the first message (T0) leaves the minute
        # at T0+60, and it is T0+3
        assert r.headers["retry-after"] == "57"
        # a retried echo_id is not a new message: the flood guard does not apply to it
        again = await env.send(source_id, cid, content="0", echo_id="e0")
        assert again["id"] == sent[0]["id"]
        env.clock.advance(57)  # now T0+60: the first message (at T0) has left the minute
        await env.send(source_id, cid, content="later")
        r = await env.client.post(_messages_url(env, source_id, cid), json={"content": "x"})
        assert r.status_code == 422  # T0+1, T0+2 and "later" are within the minute
        assert r.headers["retry-after"] == "1"  # T0+1 leaves it at T0+61
        env.clock.advance(1)
        await env.send(source_id, cid, content="after waiting as told")
        # another conversation has its own budget
        other = (await env.conversation(source_id))["id"]
        await env.send(source_id, other, content="fine")


async def test_message_routes_reach_what_the_session_proved(env: Env) -> None:
    other = await env.new_inbox(name="Other")
    a = await env.contact(identifier="u-9", identifier_hash=env.hash("u-9"))
    b = await env.contact(other, identifier="u-9", identifier_hash=env.hash("u-9", other))
    conv_b = await env.conversation(b["source_id"], other)
    msg = await env.send(a["source_id"], conv_b["id"], content="cross-inbox")
    assert msg["conversation_id"] == conv_b["id"]
    # an unproved claim of the same identifier reaches none of it
    claimer = await env.contact(identifier="u-9")
    for method, body in (("GET", None), ("POST", {"content": "hi"})):
        r = await env.client.request(
            method, _messages_url(env, claimer["source_id"], conv_b["id"]), json=body
        )
        assert (r.status_code, r.json()) == (404, NOT_FOUND)
    # a conversation of somebody else is not reachable
    _stranger, stranger_cid = await env.session()
    r = await env.client.post(_messages_url(env, a["source_id"], stranger_cid), json={})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    r = await env.client.get(_messages_url(env, a["source_id"], stranger_cid))
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


# -- echo_id ----------------------------------------------------------------------------------


async def test_repeated_echo_id_returns_the_original(env: Env) -> None:
    source_id, cid = await env.session()
    first = await env.send(source_id, cid, content="hi", echo_id="e-1")
    env.clock.advance(5)
    again = await env.send(source_id, cid, content="hi (retry)", echo_id="e-1")
    assert again == first
    assert "echo_id" not in first
    listed = await env.messages(source_id, cid)
    assert [m["id"] for m in listed] == [first["id"]]
    # another echo_id, or the same echo_id in another conversation, is a new message
    other = await env.send(source_id, cid, content="hi", echo_id="e-2")
    assert other["id"] != first["id"]
    cid2 = (await env.conversation(source_id))["id"]
    again = await env.send(source_id, cid2, content="hi", echo_id="e-1")
    assert again["id"] not in (first["id"], other["id"])


async def test_repeated_echo_id_discards_duplicate_files(env: Env) -> None:
    source_id, cid = await env.session()
    url = _messages_url(env, source_id, cid)
    files = [("attachments[]", ("a.png", PNG, "image/png"))]
    r1 = await env.client.post(url, data={"content": "pic", "echo_id": "e-9"}, files=files)
    assert r1.status_code == 200
    assert len(attachment_files(env.settings)) == 1
    files2 = [
        ("attachments[]", ("b.png", PNG, "image/png")),
        ("attachments[]", ("c.pdf", PDF, "application/pdf")),
    ]
    r2 = await env.client.post(url, data={"content": "pic", "echo_id": "e-9"}, files=files2)
    assert r2.status_code == 200
    assert r2.json()["id"] == r1.json()["id"]
    assert len(r2.json()["attachments"]) == 1
    assert len(attachment_files(env.settings)) == 1


# -- attachments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mime, file_type",
    [
        ("image/jpeg", "image"),
        ("image/png", "image"),
        ("image/gif", "image"),
        ("image/webp", "image"),
        ("image/svg+xml", "file"),
        ("video/mp4", "video"),
        ("video/quicktime", "video"),
        ("video/x-msvideo", "file"),
        ("audio/ogg", "audio"),
        ("audio/x-anything", "audio"),
        ("application/pdf", "file"),
        ("text/plain", "file"),
    ],
)
async def test_file_type_mapping(env: Env, mime: str, file_type: str) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(
        _messages_url(env, source_id, cid), files=[("attachments[]", ("f.bin", b"data", mime))]
    )
    assert r.status_code == 200
    assert r.json()["attachments"][0]["file_type"] == file_type


async def test_multipart_message_with_two_attachments(env: Env) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(
        _messages_url(env, source_id, cid),
        data={"content": "two files", "echo_id": "m-1"},
        files=[
            ("attachments[]", ("photo.png", PNG, "image/png")),
            ("attachments[]", ("report.pdf", PDF, "application/pdf")),
        ],
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) == MESSAGE_KEYS | {"attachments", "sender"}
    assert body["content"] == "two files"
    image, doc = body["attachments"]
    base = {"message_id": body["id"], "account_id": env.account_id, "width": None, "height": None}
    assert image == {
        **base, "id": image["id"], "file_type": "image", "extension": "png",
        "data_url": image["data_url"], "thumb_url": image["data_url"], "file_size": len(PNG),
    }  # fmt: skip
    assert doc == {
        **base, "id": doc["id"], "file_type": "file", "extension": "pdf",
        "data_url": doc["data_url"], "thumb_url": "", "file_size": len(PDF),
    }  # fmt: skip
    assert image["data_url"].startswith("http://testserver/attachments/")
    assert image["data_url"].endswith("/photo.png")
    got = await env.client.get(image["data_url"])
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    got = await env.client.get(doc["data_url"])
    assert got.status_code == 200
    assert got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"].startswith("inline")  # the browser's viewer
    assert got.headers["content-security-policy"].startswith("sandbox")
    # the list shows the same attachments
    listed = await env.messages(source_id, cid)
    assert [a["id"] for a in listed[-1]["attachments"]] == [image["id"], doc["id"]]


async def test_attachment_links_reject_tampering(env: Env) -> None:
    source_id, cid = await env.session()
    r = await env.client.post(
        _messages_url(env, source_id, cid), files=[("attachments[]", ("a.png", PNG, "image/png"))]
    )
    url: str = r.json()["attachments"][0]["data_url"]
    prefix, token, name = url.rsplit("/", 2)
    # change the payload (the last character may carry only base64 padding bits)
    flipped = ("X" if token[0] != "X" else "Y") + token[1:]
    for bad in (f"{prefix}/{flipped}/{name}", f"{prefix}/garbage/{name}", f"{prefix}/{token}x/a"):
        got = await env.client.get(bad)
        assert (got.status_code, got.json()) == (404, NOT_FOUND), bad
    # a link signed with another key is refused
    forged = itsdangerous.URLSafeTimedSerializer("other", salt="inboxgate.attachment").dumps(
        ["../../t.db", "text/plain", "t.db"]
    )
    got = await env.client.get(f"{prefix}/{forged}/t.db")
    assert (got.status_code, got.json()) == (404, NOT_FOUND)


async def test_expired_attachment_link_is_404(
    make_env: EnvFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_env(attachment_url_ttl=60) as env:
        source_id, cid = await env.session()
        r = await env.client.post(
            _messages_url(env, source_id, cid),
            files=[("attachments[]", ("a.png", PNG, "image/png"))],
        )
        url = r.json()["attachments"][0]["data_url"]
        assert (await env.client.get(url)).status_code == 200
        later = int(time.time()) + 61
        monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: later)
        got = await env.client.get(url)
        assert (got.status_code, got.json()) == (404, NOT_FOUND)
        # fetching the messages again gives a fresh, working link
        fresh = (await env.messages(source_id, cid))[0]["attachments"][0]["data_url"]
        assert (await env.client.get(fresh)).status_code == 200


@pytest.mark.parametrize("count", [3, 6])
async def test_too_many_attachments_is_422(make_env: EnvFactory, count: int) -> None:
    async with make_env(max_attachments=2) as env:
        source_id, cid = await env.session()
        files = [("attachments[]", (f"f{i}.txt", b"x", "text/plain")) for i in range(count)]
        r = await env.client.post(_messages_url(env, source_id, cid), files=files)
        assert r.status_code == 422
        assert r.json() == {
            "message": "Too many attachments (maximum is 2)",
            "attributes": ["attachments"],
        }
        assert attachment_files(env.settings) == []
        assert await env.messages(source_id, cid) == []
        two = files[:2]
        assert (
            await env.client.post(_messages_url(env, source_id, cid), files=two)
        ).status_code == 200


async def test_attachment_over_size_limit_is_413(make_env: EnvFactory) -> None:
    async with make_env(max_attachment_bytes=1000) as env:
        source_id, cid = await env.session()
        files = [
            ("attachments[]", ("ok.txt", b"x" * 1000, "text/plain")),
            ("attachments[]", ("big.bin", b"x" * 1001, "application/octet-stream")),
        ]
        r = await env.client.post(_messages_url(env, source_id, cid), files=files)
        assert r.status_code == 413
        body = r.json()
        assert (body["status"], body["error"]) == (413, "Payload Too Large")
        assert body["errors"][0]["field"] == "attachments"
        assert attachment_files(env.settings) == []  # the first file was discarded too
        assert await env.messages(source_id, cid) == []


async def test_failed_message_discards_its_files(make_env: EnvFactory) -> None:
    async with make_env(messages_per_minute=1) as env:
        source_id, cid = await env.session()
        await env.send(source_id, cid, content="first")
        r = await env.client.post(
            _messages_url(env, source_id, cid),
            files=[("attachments[]", ("a.png", PNG, "image/png"))],
        )
        assert r.status_code == 422
        assert attachment_files(env.settings) == []


# -- 3.11 list --------------------------------------------------------------------------------


async def test_list_windows(env: Env) -> None:
    source_id, cid = await env.session()
    ids = []
    for i in range(45):
        ids.append((await env.send(source_id, cid, content=f"m{i}"))["id"])
        env.clock.advance(1)
    latest = await env.messages(source_id, cid)
    assert [m["id"] for m in latest] == ids[25:]
    assert [m["content"] for m in latest][:2] == ["m25", "m26"]
    assert [m["created_at"] for m in latest] == sorted(m["created_at"] for m in latest)
    before = await env.messages(source_id, cid, before=ids[25])
    assert [m["id"] for m in before] == ids[5:25]
    oldest = await env.messages(source_id, cid, before=ids[5])
    assert [m["id"] for m in oldest] == ids[:5]
    assert await env.messages(source_id, cid, before=ids[0]) == []
    after = await env.messages(source_id, cid, after=ids[0])
    assert [m["id"] for m in after] == ids[1:21]
    tail = await env.messages(source_id, cid, after=ids[40])
    assert [m["id"] for m in tail] == ids[41:]
    assert await env.messages(source_id, cid, after=ids[-1]) == []


async def test_list_hides_activity_messages(make_env: EnvFactory) -> None:
    async with make_env(inbox={"csat_survey_enabled": True}) as env:
        source_id, cid = await env.session()
        await env.send(source_id, cid, content="hi")
        await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")
        listed = await env.messages(source_id, cid)
        assert [(m["message_type"], m["content_type"]) for m in listed] == [
            (0, "text"),
            (3, "input_csat"),
        ]
        assert "sender" not in listed[1]


@pytest.mark.parametrize("param", ["before", "after"])
async def test_list_with_non_numeric_bound_is_422(env: Env, param: str) -> None:
    source_id, cid = await env.session()
    r = await env.client.get(_messages_url(env, source_id, cid), params={param: "abc"})
    assert r.status_code == 422
    assert r.json()["attributes"] == [param]


# -- 3.13 update ------------------------------------------------------------------------------


async def test_update_submitted_values_replaces_previous(env: Env) -> None:
    source_id, cid = await env.session()
    msg = await env.send(source_id, cid, content="form")
    url = f"{_messages_url(env, source_id, cid)}/{msg['id']}"
    first = [{"name": "email", "title": "Email", "value": "a@b.co"}]
    r = await env.client.patch(url, json={"submitted_values": first})
    assert r.status_code == 200
    assert r.json()["content_attributes"] == {"submitted_values": first}
    second = {"name": "plan", "value": "pro"}
    r = await env.client.put(url, json={"submitted_values": second})
    assert r.status_code == 200
    body = r.json()
    assert body["content_attributes"] == {"submitted_values": second}
    assert set(body) == MESSAGE_KEYS | {"sender"}
    assert body["id"] == msg["id"]


async def test_update_keeps_display_type(make_env: EnvFactory) -> None:
    async with make_env(inbox={"csat_survey_enabled": True}) as env:
        source_id, cid = await env.session()
        survey = (await env.client.post(env.conv_url(source_id, cid) + "/toggle_status")).json()
        csat = survey["messages"][-1]
        url = f"{_messages_url(env, source_id, cid)}/{csat['id']}"
        answer = {"csat_survey_response": {"rating": 5, "feedback_message": "Great!"}}
        r = await env.client.patch(url, json={"submitted_values": answer})
        assert r.status_code == 200
        assert r.json()["content_attributes"] == {
            "display_type": "emoji",
            "submitted_values": answer,
        }


async def test_update_without_submitted_values_changes_nothing(env: Env) -> None:
    source_id, cid = await env.session()
    msg = await env.send(source_id, cid, content="x")
    r = await env.client.patch(f"{_messages_url(env, source_id, cid)}/{msg['id']}", json={})
    assert r.status_code == 200
    assert r.json() == msg


async def test_update_wrong_type_is_422(env: Env) -> None:
    source_id, cid = await env.session()
    msg = await env.send(source_id, cid, content="x")
    r = await env.client.patch(
        f"{_messages_url(env, source_id, cid)}/{msg['id']}", json={"submitted_values": "nope"}
    )
    assert r.status_code == 422
    assert r.json()["attributes"] == ["submitted_values"]


@pytest.mark.parametrize("message_id", ["999", "abc", "-3"])
async def test_update_unknown_message_is_404(env: Env, message_id: str) -> None:
    source_id, cid = await env.session()
    await env.send(source_id, cid, content="x")
    r = await env.client.patch(
        f"{_messages_url(env, source_id, cid)}/{message_id}", json={"submitted_values": {}}
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


async def test_update_message_of_another_conversation_is_404(env: Env) -> None:
    source_id, cid = await env.session()
    cid2 = (await env.conversation(source_id))["id"]
    msg = await env.send(source_id, cid2, content="elsewhere")
    r = await env.client.patch(
        f"{_messages_url(env, source_id, cid)}/{msg['id']}",
        json={"submitted_values": {"value": 1}},
    )
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize(
    "kind",
    [{"private": True, "message_type": 1}, {"private": False, "message_type": 2}],
    ids=["private-note", "activity"],
)
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_private_and_activity_messages_do_not_exist_for_the_contact(
    env: Env, kind: dict[str, Any], method: str
) -> None:
    source_id = (await env.contact())["source_id"]
    created = await env.conversation(source_id)
    cid = created["id"]
    conversation = await env.store.read(conv_ops.conversation_by_uuid, created["uuid"])
    hidden = await env.store.write(
        msg_ops.insert_message, conversation, content="internal: refund approved",
        content_attributes={"k": "v"}, now=env.clock(), **kind,
    )  # fmt: skip
    url = f"{_messages_url(env, source_id, cid)}/{hidden.id}"
    r = await env.client.request(method, url, json={"submitted_values": {"value": "x"}})
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    assert "refund" not in r.text
    stored = await env.store.read(message_reads.get_message, conversation.id, hidden.id)
    assert stored is not None and stored.content_attributes == {"k": "v"}  # unchanged
    assert [m["id"] for m in await env.messages(source_id, cid)] == []


async def test_undeclared_message_methods_are_404(env: Env) -> None:
    source_id, cid = await env.session()
    msg = await env.send(source_id, cid, content="x")
    for method, path in [
        ("GET", f"{_messages_url(env, source_id, cid)}/{msg['id']}"),
        ("DELETE", f"{_messages_url(env, source_id, cid)}/{msg['id']}"),
        ("PUT", _messages_url(env, source_id, cid)),
    ]:
        r = await env.client.request(method, path)
        assert (r.status_code, r.json()) == (404, NOT_FOUND), (method, path)


def _csat_answer(rating: Any) -> dict[str, Any]:
    return {"submitted_values": {"csat_survey_response": {"rating": rating}}}


async def test_update_non_csat_message_still_validates_rating(env: Env) -> None:
    source_id, cid = await env.session()
    msg = await env.send(source_id, cid, content="x")
    r = await env.client.patch(
        f"{_messages_url(env, source_id, cid)}/{msg['id']}", json=_csat_answer(9)
    )
    assert r.status_code == 422
    assert r.json()["attributes"] == ["rating"]


async def test_the_session_reach_is_checked_before_the_message(env: Env) -> None:
    """The reach is checked in the write itself for a message without attachments; the
    answers stay in the same order: a session that reaches nothing hears 404 whatever it
    sent, one that reaches the conversation hears what is wrong with the message."""
    mine, display_id = await env.session()
    other, _ = await env.session()
    cases = [
        (mine, display_id, {"content": ""}, 422),
        (other, display_id, {"content": ""}, 404),
        (other, display_id, {"content": "hi"}, 404),
        ("nobody", display_id, {"content": "hi"}, 404),
        (mine, display_id + 99, {"content": ""}, 404),
        (mine, display_id + 99, {"content": "hi"}, 404),
    ]
    for source_id, conversation_id, body, status in cases:
        r = await env.client.post(env.conv_url(source_id, conversation_id) + "/messages", json=body)
        assert r.status_code == status, (source_id, conversation_id, body, r.text)
    for source_id, conversation_id in [("nobody", display_id), (mine, display_id + 99)]:
        url = env.conv_url(source_id, conversation_id) + "/messages"
        blank = await env.client.post(url, json={"content": ""})  # checked on the loop
        valid = await env.client.post(url, json={"content": "hi"})  # checked in the write
        assert blank.json() == valid.json()
    assert await env.messages(mine, display_id) == []
    sent = await env.send(mine, display_id, content="hi", echo_id="e-1")
    again = await env.send(mine, display_id, content="hi", echo_id="e-1")
    assert sent["id"] == again["id"]
    assert [m["content"] for m in await env.messages(mine, display_id)] == ["hi"]
