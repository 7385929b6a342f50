"""No acknowledged write is lost when the server process is SIGKILLed.

A burst of concurrent message POSTs (each with its own ``echo_id``) and a few contact and
conversation creates hits a real ``inboxgate serve``; every ``200`` is recorded. The server is
killed with SIGKILL either right after the last ``200`` or while half of the burst is still in
flight. Restarted on the same database, every acknowledged message must be there with its
content, every acknowledged contact and conversation must resolve, and re-sending every
``echo_id`` (acknowledged or not) must never produce a second message. Both SQLite
``synchronous`` modes must pass: a process kill leaves committed WAL frames in the page cache.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server_helpers import GatewayProcess

pytestmark = pytest.mark.slow

N_MESSAGES = 200
N_CONTACTS = 5
CONCURRENCY = 48


@dataclass
class Burst:
    server: GatewayProcess
    base: str  # the inbox's public API path
    conv_api: str  # the conversation every message goes to
    kill_after: int  # SIGKILL the server as soon as this many requests are acknowledged
    acked_messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # echo_id -> message
    acked_contacts: list[dict[str, Any]] = field(default_factory=list)
    acked_conversations: list[tuple[str, int]] = field(default_factory=list)  # (source_id, id)
    cut_off: list[str] = field(default_factory=list)  # transport errors (after the kill)
    http_errors: list[str] = field(default_factory=list)  # any non-200 answer: a bug
    acks: int = 0
    in_flight_at_kill: int = -1
    in_flight: int = 0

    def ack(self) -> None:
        """Record one 200. Answers read after the kill (already in the socket buffer) count
        as acknowledged too: the server committed before it wrote them."""
        self.acks += 1
        if self.acks == self.kill_after:
            os.kill(self.server.pid, signal.SIGKILL)
            self.in_flight_at_kill = self.in_flight - 1  # not counting this request

    def check(self, what: str, response: httpx.Response) -> bool:
        if response.status_code == 200:
            return True
        self.http_errors.append(f"{what}: HTTP {response.status_code} {response.text[:200]}")
        return False


def content_of(echo_id: str) -> str:
    return f"durable message {echo_id} ✓"


async def send_message(client: httpx.AsyncClient, burst: Burst, echo_id: str) -> None:
    burst.in_flight += 1
    try:
        response = await client.post(
            f"{burst.conv_api}/messages", json={"content": content_of(echo_id), "echo_id": echo_id}
        )
        if burst.check(echo_id, response):
            burst.acked_messages[echo_id] = response.json()
            burst.ack()
    except httpx.TransportError as exc:
        burst.cut_off.append(f"{echo_id}: {type(exc).__name__}")
    finally:
        burst.in_flight -= 1


async def create_contact_and_conversation(client: httpx.AsyncClient, burst: Burst, n: int) -> None:
    burst.in_flight += 1
    try:
        contact = await client.post(f"{burst.base}/contacts", json={"name": f"burst-{n}"})
        if not burst.check(f"contact {n}", contact):
            return
        burst.acked_contacts.append(contact.json())
        burst.ack()
        source_id = contact.json()["source_id"]
        conversation = await client.post(f"{burst.base}/contacts/{source_id}/conversations")
        if burst.check(f"conversation {n}", conversation):
            burst.acked_conversations.append((source_id, conversation.json()["id"]))
            burst.ack()
    except httpx.TransportError as exc:
        burst.cut_off.append(f"contact {n}: {type(exc).__name__}")
    finally:
        burst.in_flight -= 1


async def fire(burst: Burst) -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=burst.server.base_url, limits=limits, timeout=30.0
    ) as client:
        jobs = []
        spacing = N_MESSAGES // N_CONTACTS
        for i in range(N_MESSAGES):
            if i % spacing == spacing // 2:  # spread the creates through the burst
                jobs.append(create_contact_and_conversation(client, burst, i // spacing))
            jobs.append(send_message(client, burst, f"echo-{i:04d}"))
        await asyncio.gather(*jobs)


async def all_messages(client: httpx.AsyncClient, conv_api: str) -> list[dict[str, Any]]:
    """Every visible message, oldest first, paging forward with ``after``."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        response = await client.get(f"{conv_api}/messages", params={"after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        if not page:
            return found
        assert [m["id"] for m in page] == sorted(m["id"] for m in page)
        assert page[0]["id"] > after
        found += page
        after = page[-1]["id"]


async def verify(burst: Burst) -> None:
    server = burst.server
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        before_retry = {m["id"]: m for m in await all_messages(client, burst.conv_api)}
        for echo_id, acked in burst.acked_messages.items():
            assert acked["id"] in before_retry, f"acknowledged message {echo_id} was lost"
            assert before_retry[acked["id"]]["content"] == content_of(echo_id)

        for contact in burst.acked_contacts:
            shown = await client.get(f"{burst.base}/contacts/{contact['source_id']}")
            assert shown.status_code == 200, f"acknowledged contact lost: {contact}"
            assert shown.json()["id"] == contact["id"]
        for source_id, display_id in burst.acked_conversations:
            shown = await client.get(
                f"{burst.base}/contacts/{source_id}/conversations/{display_id}"
            )
            assert shown.status_code == 200, f"acknowledged conversation lost: {display_id}"

        # A client retries everything it sent: the acknowledged ones come back unchanged, the
        # rest are created at most once.
        for i in range(N_MESSAGES):
            echo_id = f"echo-{i:04d}"
            retry = await client.post(
                f"{burst.conv_api}/messages",
                json={"content": content_of(echo_id), "echo_id": echo_id},
            )
            assert retry.status_code == 200, retry.text
            if echo_id in burst.acked_messages:
                assert retry.json()["id"] == burst.acked_messages[echo_id]["id"]
        everything = await all_messages(client, burst.conv_api)
    contents = [m["content"] for m in everything]
    assert sorted(contents) == sorted(content_of(f"echo-{i:04d}") for i in range(N_MESSAGES))
    assert len({m["id"] for m in everything}) == N_MESSAGES


def check_database(path: Path, burst: Burst) -> None:
    """The same facts, read straight from the SQLite file (read-only) after the last stop."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        duplicated = db.execute(
            "SELECT conversation_id, echo_id, COUNT(*) FROM messages WHERE echo_id IS NOT NULL "
            "GROUP BY conversation_id, echo_id HAVING COUNT(*) > 1"
        ).fetchall()
        stored = dict(db.execute("SELECT id, echo_id FROM messages WHERE echo_id IS NOT NULL"))
    db.close()
    assert duplicated == []
    for echo_id, acked in burst.acked_messages.items():
        assert stored.get(acked["id"]) == echo_id


@pytest.mark.parametrize("synchronous", ["full", "normal"])
@pytest.mark.parametrize("kill_at", ["after_last_ack", "mid_stream"])
def test_sigkill_loses_no_acknowledged_write(
    tmp_path: Path, synchronous: str, kill_at: str
) -> None:
    server = GatewayProcess(
        tmp_path,
        INBOXGATE_SQLITE_SYNCHRONOUS=synchronous,
        INBOXGATE_RATE_LIMIT_PER_IP="0",
        INBOXGATE_MESSAGES_PER_MINUTE="0",
    )
    try:
        inbox = server.provision_inbox()
        server.start()
        base = f"/public/api/v1/inboxes/{inbox['identifier']}"
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            contact = client.post(f"{base}/contacts", json={"name": "Durable"}).json()
            contact_api = f"{base}/contacts/{contact['source_id']}"
            conversation = client.post(f"{contact_api}/conversations").json()
        total = N_MESSAGES + 2 * N_CONTACTS
        burst = Burst(
            server=server,
            base=base,
            conv_api=f"{contact_api}/conversations/{conversation['id']}",
            kill_after=total if kill_at == "after_last_ack" else total // 2,
        )
        pid = server.pid
        asyncio.run(fire(burst))

        status = server.kill()
        assert status == -signal.SIGKILL, f"server {pid} was not SIGKILLed (exit {status})"
        assert not burst.http_errors, burst.http_errors[:5]
        assert burst.acks >= burst.kill_after, burst.cut_off[:5]
        if kill_at == "after_last_ack":
            assert not burst.cut_off, burst.cut_off[:5]
            assert len(burst.acked_messages) == N_MESSAGES
        else:  # the kill must really have cut requests short
            assert burst.in_flight_at_kill > 0
            assert burst.cut_off, "no request was cut off by the kill"

        print(
            f"{synchronous}/{kill_at}: {burst.acks} acknowledged "
            f"({len(burst.acked_messages)} messages, {len(burst.acked_contacts)} contacts, "
            f"{len(burst.acked_conversations)} conversations), {burst.in_flight_at_kill} in "
            f"flight at the kill, {len(burst.cut_off)} cut off"
        )
        server.start()
        asyncio.run(verify(burst))
        server.stop()
        check_database(server.database_path, burst)
    except BaseException:
        print(server.log())
        raise
    finally:
        server.kill()
