"""The whole customer flow over a real socket: ``inboxgate serve`` (uvicorn) in a subprocess,
httpx as the client. Inbox, contacts (with and without HMAC), conversation, messages (echo_id
retry, multipart attachments fetched back over the socket), paging, resolve, CSAT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_helpers import GatewayProcess, gateway_server, hmac_hex

pytestmark = pytest.mark.slow

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
TEXT = "line one\nline two: ünïcödé\n".encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("flow")) as started:
        yield started


@pytest.fixture(scope="module")
def inboxes(server: GatewayProcess) -> dict[str, dict[str, Any]]:
    plain = server.provision_inbox(name="Plain", csat=True)
    strict = server.provision_inbox(
        name="Strict", hmac_mandatory=True, account_id=int(plain["account_id"])
    )
    return {"plain": plain, "strict": strict}


@pytest.fixture
def client(server: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10.0) as c:
        yield c


def api(inbox: dict[str, Any]) -> str:
    return f"/public/api/v1/inboxes/{inbox['identifier']}"


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json() if response.content else None


def test_get_inbox(client: httpx.Client, inboxes: dict[str, dict[str, Any]]) -> None:
    plain = ok(client.get(api(inboxes["plain"])))
    assert plain["identifier"] == inboxes["plain"]["identifier"]
    assert plain["name"] == "Plain"
    assert plain["identity_validation_enabled"] is False
    assert plain["csat_survey_enabled"] is True
    assert [d["day_of_week"] for d in plain["working_hours"]] == list(range(7))
    strict = ok(client.get(api(inboxes["strict"])))
    assert strict["identity_validation_enabled"] is True

    missing = client.get("/public/api/v1/inboxes/no-such-inbox")
    assert missing.status_code == 404
    assert missing.json()["error"] == "Not Found"


def test_contact_without_hmac(client: httpx.Client, inboxes: dict[str, dict[str, Any]]) -> None:
    base = api(inboxes["plain"])
    created = ok(client.post(f"{base}/contacts", json={"name": "Alice", "email": "a@x.io"}))
    assert set(created) >= {"source_id", "pubsub_token", "id", "name", "email", "phone_number"}
    assert created["name"] == "Alice"
    assert created["email"] == "a@x.io"
    shown = ok(client.get(f"{base}/contacts/{created['source_id']}"))
    assert shown["id"] == created["id"]
    assert shown["pubsub_token"] == created["pubsub_token"]


def test_hmac_mandatory_inbox(client: httpx.Client, inboxes: dict[str, dict[str, Any]]) -> None:
    strict = inboxes["strict"]
    base = api(strict)
    identifier = "customer-4711"
    good = hmac_hex(strict["hmac_token"], identifier)

    created = ok(
        client.post(
            f"{base}/contacts",
            json={"identifier": identifier, "identifier_hash": good, "name": "Verified"},
        )
    )
    assert created["name"] == "Verified"
    assert created["source_id"]

    wrong = client.post(
        f"{base}/contacts",
        json={"identifier": identifier, "identifier_hash": hmac_hex("not-the-key", identifier)},
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/json")
    body = wrong.json()
    assert body["status"] == 401
    assert body["error"] == "Unauthorized"
    assert body["errors"][0]["field"] == "identifier_hash"

    missing = client.post(f"{base}/contacts", json={"identifier": identifier})
    assert missing.status_code == 401
    assert missing.json()["status"] == 401

    anonymous = client.post(f"{base}/contacts", json={"name": "No identity"})
    assert anonymous.status_code == 401


def test_conversation_and_messages(
    client: httpx.Client, server: GatewayProcess, inboxes: dict[str, dict[str, Any]]
) -> None:
    base = api(inboxes["plain"])
    contact = ok(client.post(f"{base}/contacts", json={"name": "Bob"}))
    contact_api = f"{base}/contacts/{contact['source_id']}"
    conversation = ok(client.post(f"{contact_api}/conversations", json={}))
    assert conversation["status"] == "open"
    assert conversation["messages"] == []
    display_id = conversation["id"]
    conv_api = f"{contact_api}/conversations/{display_id}"
    assert ok(client.get(conv_api))["id"] == display_id
    assert [c["id"] for c in ok(client.get(f"{contact_api}/conversations"))] == [display_id]

    # echo_id: the retry gets the original back, nothing new is created
    first = ok(client.post(f"{conv_api}/messages", json={"content": "hello", "echo_id": "e-1"}))
    assert first["content"] == "hello"
    assert first["message_type"] == 0
    assert first["content_type"] == "text"
    assert first["conversation_id"] == display_id
    assert isinstance(first["created_at"], int)
    assert first["sender"]["type"] == "contact"
    retry = ok(client.post(f"{conv_api}/messages", json={"content": "hello", "echo_id": "e-1"}))
    assert retry["id"] == first["id"]

    # multipart with two attachments; each data_url serves the exact bytes over the socket
    sent = ok(
        client.post(
            f"{conv_api}/messages",
            data={"content": "two files", "echo_id": "e-files"},
            files=[
                ("attachments[]", ("pixel.png", PNG, "image/png")),
                ("attachments[]", ("notes.txt", TEXT, "text/plain")),
            ],
        )
    )
    assert sent["content"] == "two files"
    attachments = sorted(sent["attachments"], key=lambda a: a["file_type"])
    assert [a["file_type"] for a in attachments] == ["file", "image"]
    assert all(a["message_id"] == sent["id"] for a in attachments)
    # Only checked images, media and PDF are served as what they are; the rest downloads.
    served = [(TEXT, "application/octet-stream"), (PNG, "image/png")]
    for attachment, (expected, mime) in zip(attachments, served, strict=True):
        assert attachment["file_size"] == len(expected)
        assert attachment["data_url"].startswith(server.base_url + "/")
        download = client.get(attachment["data_url"])
        assert download.status_code == 200, download.text
        assert download.content == expected
        assert download.headers["content-type"].startswith(mime)

    # 25 more: the list shows the latest 20, and `before`/`after` page through the rest
    ids = [first["id"], sent["id"]]
    for i in range(25):
        ids.append(ok(client.post(f"{conv_api}/messages", json={"content": f"m{i}"}))["id"])
    latest = ok(client.get(f"{conv_api}/messages"))
    assert [m["id"] for m in latest] == ids[-20:]
    earlier = ok(client.get(f"{conv_api}/messages", params={"before": ids[-20]}))
    assert [m["id"] for m in earlier] == ids[:-20]
    after = ok(client.get(f"{conv_api}/messages", params={"after": ids[1]}))
    assert [m["id"] for m in after] == ids[2:22]
    tail = ok(client.get(f"{conv_api}/messages", params={"after": ids[-3]}))
    assert [m["id"] for m in tail] == ids[-2:]
    assert ok(client.get(f"{conv_api}/messages", params={"after": ids[-1]})) == []
    bad = client.get(f"{conv_api}/messages", params={"before": "soon"})
    assert bad.status_code == 422

    # attachments survive in the list, with working links
    listed = next(m for m in earlier if m["id"] == sent["id"])
    assert len(listed["attachments"]) == 2
    assert client.get(listed["attachments"][0]["data_url"]).status_code == 200

    # typing and last seen: empty 200s
    assert client.post(f"{conv_api}/toggle_typing", json={"typing_status": "on"}).status_code == 200
    assert client.post(f"{conv_api}/update_last_seen").status_code == 200


def test_resolve_and_csat(client: httpx.Client, inboxes: dict[str, dict[str, Any]]) -> None:
    base = api(inboxes["plain"])
    contact = ok(client.post(f"{base}/contacts", json={"name": "Carol"}))
    contact_api = f"{base}/contacts/{contact['source_id']}"
    conversation = ok(client.post(f"{contact_api}/conversations", json={}))
    conv_api = f"{contact_api}/conversations/{conversation['id']}"
    ok(client.post(f"{conv_api}/messages", json={"content": "please help"}))

    resolved = ok(client.post(f"{conv_api}/toggle_status"))
    assert resolved["status"] == "resolved"
    assert ok(client.get(conv_api))["status"] == "resolved"
    again = ok(client.post(f"{conv_api}/toggle_status"))  # already resolved: unchanged
    assert again["status"] == "resolved"

    messages = ok(client.get(f"{conv_api}/messages"))
    surveys = [m for m in messages if m["content_type"] == "input_csat"]
    assert len(surveys) == 1
    survey = surveys[0]
    assert survey["message_type"] == 3
    message_api = f"{conv_api}/messages/{survey['id']}"

    rejected = client.patch(
        message_api, json={"submitted_values": {"csat_survey_response": {"rating": 9}}}
    )
    assert rejected.status_code == 422
    assert rejected.json()["attributes"] == ["rating"]

    answered = ok(
        client.patch(
            message_api,
            json={
                "submitted_values": {
                    "csat_survey_response": {"rating": 5, "feedback_message": "great"}
                }
            },
        )
    )
    response = answered["content_attributes"]["submitted_values"]["csat_survey_response"]
    assert response == {"rating": 5, "feedback_message": "great"}

    page = ok(client.get(f"/public/api/v1/csat_survey/{conversation['uuid']}"))
    assert page["id"] == survey["id"]
    assert page["csat_survey_response"]["rating"] == 5
    assert page["csat_survey_response"]["feedback_message"] == "great"
    assert client.get("/public/api/v1/csat_survey/not-a-uuid").status_code == 404


def test_unknown_contact_and_conversation_are_404(
    client: httpx.Client, inboxes: dict[str, dict[str, Any]]
) -> None:
    base = api(inboxes["plain"])
    assert client.get(f"{base}/contacts/nobody").status_code == 404
    contact = ok(client.post(f"{base}/contacts", json={}))
    conv = f"{base}/contacts/{contact['source_id']}/conversations/999999"
    assert client.get(conv).status_code == 404
    assert client.post(f"{conv}/messages", json={"content": "x"}).status_code == 404


def test_server_restart_keeps_data_and_links(tmp_path: Path) -> None:
    """Kill -9 and restart on the same files: data and signed attachment links still work."""
    server = GatewayProcess(tmp_path)
    try:
        inbox = server.provision_inbox()
        server.start()
        base = api(inbox)
        with httpx.Client(base_url=server.base_url, timeout=10.0) as c:
            contact = ok(c.post(f"{base}/contacts", json={"name": "Dana"}))
            contact_api = f"{base}/contacts/{contact['source_id']}"
            conversation = ok(c.post(f"{contact_api}/conversations"))
            conv_api = f"{contact_api}/conversations/{conversation['id']}"
            sent = ok(
                c.post(
                    f"{conv_api}/messages",
                    files=[("attachments[]", ("pixel.png", PNG, "image/png"))],
                )
            )
            path = httpx.URL(sent["attachments"][0]["data_url"]).raw_path.decode()
        server.restart()
        with httpx.Client(base_url=server.base_url, timeout=10.0) as c:
            listed = ok(c.get(f"{conv_api}/messages"))
            assert [m["id"] for m in listed] == [sent["id"]]
            download = c.get(path)
            assert download.status_code == 200
            assert download.content == PNG
    finally:
        server.kill()
