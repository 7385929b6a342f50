"""The whole customer flow through both SDK clients, against a real gateway over real sockets:
inbox, verified contact, conversation, messages with attachments and paging, typing, last
seen, an agent's reply and typing heard live, resolve, CSAT by message and by uuid, errors."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from client_sdk import AsyncInboxClient, AttachmentFile, InboxClient, errors
from client_sdk.cable_core import DEFAULT_PROTOCOLS, MSGPACK_PROTOCOLS
from client_sdk.events import (
    Connected,
    ConversationStatusChanged,
    Event,
    MessageCreated,
    TypingChanged,
)
from tests.sdk_helpers import ENV, Agent, outbox_drained
from tests.server_helpers import GatewayProcess, gateway_server

pytestmark = pytest.mark.slow

PNG = AttachmentFile("dot.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "image/png")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with gateway_server(tmp_path_factory.mktemp("sdk-flow"), **ENV) as started:
        yield started


def wait_until(done: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


async def await_until(done: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    with anyio.fail_after(timeout):
        while not done():
            await anyio.sleep(0.02)
    assert done(), what


def created(events: list[Event]) -> list[MessageCreated]:
    return [e for e in events if isinstance(e, MessageCreated)]


def heard(events: list[Event], content: str) -> Callable[[], bool]:
    return lambda: any(e.message.content == content for e in created(events))


def survey_of(events: list[Event]) -> MessageCreated | None:
    found = [e for e in created(events) if e.message.content_type == "input_csat"]
    return found[0] if found else None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "protocols", [DEFAULT_PROTOCOLS, MSGPACK_PROTOCOLS], ids=["json", "msgpack"]
)
async def test_async_client_customer_flow(
    server: GatewayProcess, protocols: tuple[str, ...]
) -> None:
    inbox = server.provision_inbox(account=f"Flow {uuid.uuid4().hex[:6]}", csat=True)
    agent = Agent(server, inbox)
    async with AsyncInboxClient(
        server.base_url, inbox["identifier"], protocols=protocols
    ) as client:
        info = await client.get_inbox()
        assert info.name == "Support" and info.csat_survey_enabled
        with pytest.raises(errors.Unauthorized):
            await client.create_contact(identifier="who", identifier_hash="0" * 64)
        session = await client.start_session(
            identifier="customer-1", hmac_token=inbox["hmac_token"], name="Alice",
            email="alice@example.com",
        )  # fmt: skip
        contact = await client.get_contact(session.source_id)
        assert contact.pubsub_token == session.pubsub_token and contact.name == "Alice"
        updated = await client.update_contact(session.source_id, custom_attributes={"plan": "pro"})
        assert updated.custom_attributes == {"plan": "pro"} and updated.identifier == "customer-1"

        events: list[Event] = []
        async with anyio.create_task_group() as tg:

            async def listen() -> None:
                async for event in session.events():
                    events.append(event)

            tg.start_soon(listen)
            await await_until(lambda: any(isinstance(e, Connected) for e in events), "connected")
            conv = await session.start_conversation(custom_attributes={"source": "kiosk"})
            sent = await conv.send("Hello, my order is late", attachments=[PNG])
            assert not sent.queued and sent.message is not None
            assert sent.message.attachments and sent.message.attachments[0].file_type == "image"
            await conv.typing(True)
            await conv.mark_seen()
            await conv.typing(False)
            await await_until(heard(events, "Hello, my order is late"), "own message echoed")
            mine = [e for e in created(events) if e.message.content == "Hello, my order is late"]
            assert mine[0].echo_id == sent.echo_id and mine[0].from_contact
            await outbox_drained(session, 15.0)  # confirmed by the echo

            await anyio.to_thread.run_sync(agent.typing, conv.id)
            await await_until(lambda: any(isinstance(e, TypingChanged) for e in events), "typing")
            await anyio.to_thread.run_sync(agent.reply, conv.id, "Sorry! Checking now.")
            await await_until(heard(events, "Sorry! Checking now."), "the agent's reply")
            reply = next(e for e in created(events) if e.message.content == "Sorry! Checking now.")
            assert not reply.from_contact and reply.message.sender is not None

            # Paging: more than one page of messages, read back with messages_after.
            first = await client.send_message(session.source_id, conv.id, "page 0", echo_id="p0")
            for n in range(1, 23):
                await client.send_message(session.source_id, conv.id, f"page {n}", echo_id=f"p{n}")
            later = await client.messages_after(session.source_id, conv.id, first.id)
            assert [m.content for m in later] == [f"page {n}" for n in range(1, 23)]
            latest = await conv.messages()
            assert len(latest) == 20 and latest[-1].content == "page 22"
            older = await conv.messages(before=latest[0].id)
            assert older[-1].id < latest[0].id
            again = await client.send_message(session.source_id, conv.id, "dup", echo_id="p0")
            assert again.id == first.id  # a retried echo_id is stored once

            await anyio.to_thread.run_sync(agent.resolve, conv.id)
            await await_until(lambda: survey_of(events) is not None, "the CSAT survey")
            assert any(
                isinstance(e, ConversationStatusChanged) and e.conversation.status == "resolved"
                for e in events
            )
            survey = survey_of(events)
            assert survey is not None
            rated = await conv.rate(survey.message.id, 5, "Quick and kind")
            answer = rated.content_attributes["submitted_values"]["csat_survey_response"]
            assert answer["rating"] == 5
            details = await conv.get()
            by_uuid = await client.submit_csat_survey(details.uuid, 4, "On second thought")
            assert by_uuid.id == survey.message.id
            assert (await client.get_csat_survey(details.uuid)).conversation_id > 0

            second = await session.start_conversation()
            assert (await second.resolve()).status == "resolved"
            listed = await client.list_conversations(session.source_id)
            assert {c.id for c in listed} >= {conv.id, second.id}
            with pytest.raises(errors.NotFound):
                await client.get_conversation(session.source_id, 999_999)
            with pytest.raises(errors.ValidationFailed) as invalid:
                await conv.send("x" * 150_001)
            assert invalid.value.attributes == ["content"]
            assert [e.status for e in await session.pending()] == ["failed"]
            with pytest.raises(ValueError):
                await conv.rate(survey.message.id, 0)
            await session.close()
    ids = [(e.conversation_id, e.message.id) for e in created(events)]
    assert len(ids) == len(set(ids)), "a message event was handed over twice"


def test_sync_client_customer_flow(server: GatewayProcess) -> None:
    inbox = server.provision_inbox(account=f"Sync {uuid.uuid4().hex[:6]}", csat=True)
    agent = Agent(server, inbox)
    with InboxClient(server.base_url, inbox["identifier"]) as client:
        assert client.get_inbox().identifier == inbox["identifier"]
        session = client.start_session(name="Bob", identifier="bob", hmac_token=inbox["hmac_token"])
        with pytest.raises(errors.Unauthorized):
            client.get_contact(session.source_id, identifier="bob", identifier_hash="bad")
        verified = session.identify(
            "bob", identifier_hash=client_hash(inbox, "bob"), email="bob@example.com"
        )
        assert verified.email == "bob@example.com"
        events: list[Event] = []
        failures: list[BaseException] = []

        def listen() -> None:
            try:
                for event in session.events():
                    events.append(event)
            except BaseException as exc:  # surfaced by the assertion below
                failures.append(exc)

        thread = threading.Thread(target=listen)
        thread.start()
        try:
            wait_until(lambda: any(isinstance(e, Connected) for e in events) or failures, "connect")
            assert failures == []
            conv = session.start_conversation()
            sent = conv.send("Sync hello", attachments=[PNG])
            assert sent.message is not None and sent.message.content == "Sync hello"
            conv.typing()
            conv.mark_seen()
            agent.reply(conv.id, "Sync reply")
            wait_until(heard(events, "Sync reply"), "the agent's reply")
            wait_until(lambda: session.pending() == [], "outbox confirmed")
            assert [m.content for m in conv.messages()] == ["Sync hello", "Sync reply"]
            agent.resolve(conv.id)
            wait_until(lambda: survey_of(events) is not None, "the survey")
            survey = survey_of(events)
            assert survey is not None
            conv.rate(survey.message.id, 3)
            assert [c.id for c in session.conversations()] == [conv.id]
            with pytest.raises(errors.NotFound):
                client.update_message(session.source_id, conv.id, 999_999, [])
        finally:
            session.close()
            thread.join(15)
        assert not thread.is_alive() and failures == []
    contents = [e.message.content for e in created(events)]
    assert contents[:2] == ["Sync hello", "Sync reply"]


def client_hash(inbox: dict[str, Any], identifier: str) -> str:
    from client_sdk import identifier_hash

    return identifier_hash(inbox["hmac_token"], identifier)


def sdk_doc_examples() -> list[str]:
    """The Python blocks of the SDK manual's examples (docs/sdk.md)."""
    text = (Path(__file__).parent.parent / "docs" / "sdk.md").read_text()
    section = text.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_sdk_doc_examples_compile_and_the_csat_one_runs(
    server: GatewayProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = sdk_doc_examples()
    assert len(examples) == 3
    for n, source in enumerate(examples):
        compile(source, f"docs/sdk.md example {n}", "exec")
    inbox = server.provision_inbox(account=f"Docs {uuid.uuid4().hex[:6]}", csat=True)
    csat = examples[2].replace("https://chat.example.com", server.base_url)
    namespace: dict[str, Any] = {}
    exec(compile(csat.replace("INBOX_IDENTIFIER", inbox["identifier"]), "csat", "exec"), namespace)
    namespace["after_call"]("+15550001111", "Router replaced", 4, "Patient and clear")
    assert "rated survey" in capsys.readouterr().out
    agent = Agent(server, inbox)
    [conv] = httpx.get(
        server.url(f"/api/v1/accounts/{agent.account_id}/conversations"),
        params={"status": "resolved"}, headers=agent.headers, timeout=10.0,
    ).json()["data"]["payload"]  # fmt: skip
    [survey] = [m for m in agent.messages(conv["id"]) if m["content_type"] == "input_csat"]
    answer = survey["content_attributes"]["submitted_values"]["csat_survey_response"]
    assert answer == {"rating": 4, "feedback_message": "Patient and clear"}
