"""Webhooks over real sockets: a gateway under uvicorn delivering to a loopback receiver that
verifies every signature, fails on purpose, and outlives a SIGKILL of the gateway."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_helpers import GatewayProcess
from tests.webhook_receiver import Hit, Receiver

pytestmark = pytest.mark.slow

SUBSCRIBED = ["conversation_created", "message_created", "conversation_status_changed"]
WAIT = 30.0


@contextlib.contextmanager
def gateway(root: Path) -> Iterator[GatewayProcess]:
    server = GatewayProcess(
        root,
        INBOXGATE_WEBHOOK_ALLOW_PRIVATE="1",
        INBOXGATE_WEBHOOK_BACKOFF_BASE="0.1",
        INBOXGATE_WEBHOOK_BACKOFF_MAX="0.5",
        INBOXGATE_WEBHOOK_MAX_ATTEMPTS="100",
        INBOXGATE_WEBHOOK_TIMEOUT="1",
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


def contents(hits: list[Hit], path: str, event: str) -> list[str]:
    return [h.body["content"] for h in hits if h.path == path and h.event == event]


def test_signed_exactly_once_through_failures_and_a_kill(tmp_path: Path) -> None:
    with Receiver() as receiver, gateway(tmp_path / "gw") as server:
        account_id = int(server.cli("account", "create", "Acme")["id"])
        inbox = server.cli(
            "inbox", "create", "--account", str(account_id), "--name", "Support",
            "--webhook-url", receiver.url("/inbox"),
        )  # fmt: skip
        admin = server.cli(
            "user", "create", "--account", str(account_id), "--email", "ann@acme.test",
            "--name", "Ann", "--role", "administrator",
        )  # fmt: skip
        agent_api = f"/api/v1/accounts/{account_id}"
        public = f"/public/api/v1/inboxes/{inbox['identifier']}"
        with httpx.Client(
            base_url=server.base_url, headers={"api_access_token": admin["access_token"]},
            timeout=10,
        ) as client:  # fmt: skip
            r = client.post(
                agent_api + "/webhooks",
                json={"url": receiver.url("/account"), "subscriptions": SUBSCRIBED},
            )
            assert r.status_code == 200, r.text
            receiver.secrets["/account"] = r.json()["payload"]["webhook"]["secret"]
            r = client.get(f"{agent_api}/inboxes/{inbox['id']}/webhook_secret")
            assert r.status_code == 200, r.text
            receiver.secrets["/inbox"] = r.json()["secret"]

            # 1. Every subscribed event of a conversation, once, to each receiver, signed.
            source_id = client.post(public + "/contacts", json={"name": "Alice"}).json()[
                "source_id"
            ]
            conv = f"{public}/contacts/{source_id}/conversations"
            display_id = client.post(conv).json()["id"]
            messages = f"{conv}/{display_id}/messages"
            assert client.post(messages, json={"content": "hello"}).status_code == 200
            assert client.post(f"{conv}/{display_id}/toggle_status").status_code == 200
            hits = receiver.wait_for("the first six deliveries", lambda h: len(h) >= 6)
            for path in ("/account", "/inbox"):
                assert sorted(h.event for h in hits if h.path == path) == sorted(SUBSCRIBED)
            assert all(h.signed and h.status == 200 for h in hits)
            assert len({h.delivery for h in hits}) == 6
            assert contents(hits, "/account", "message_created") == ["hello"]

            # 2. A receiver that fails three times, then succeeds: one more delivery, same id.
            receiver.fail_next[("/account", "retry me")] = 3
            assert client.post(messages, json={"content": "retry me"}).status_code == 200
            hits = receiver.wait_for(
                "the retried delivery",
                lambda h: "retry me" in contents(
                    [x for x in h if x.status == 200], "/account", "message_created"
                ),
            )  # fmt: skip
            tries = [
                h for h in hits if h.path == "/account" and h.body.get("content") == "retry me"
            ]
            assert [h.status for h in tries] == [500, 500, 500, 200]
            assert len({h.delivery for h in tries}) == 1
            assert all(h.signed for h in tries)
            assert {h.body["id"] for h in tries} == {tries[0].body["id"]}

            # 3. Deliveries still pending when the gateway is killed arrive after its restart.
            receiver.down = True
            assert client.post(messages, json={"content": "while down"}).status_code == 200

            def both_failing(h: list[Hit]) -> bool:
                down = [x for x in h if x.status == 503 and x.body.get("content") == "while down"]
                return {x.path for x in down} == {"/account", "/inbox"}

            hits = receiver.wait_for("failed attempts while down", both_failing)
            pending = {h.delivery for h in hits if h.body.get("content") == "while down"}
            assert len(pending) == 2
            assert server.kill() == -9
            receiver.down = False
            server.start()
            receiver.wait_for(
                "the pending deliveries after the restart",
                lambda h: pending <= {x.delivery for x in h if x.status == 200},
            )

        # Nothing arrives twice: every delivery id succeeded exactly once.
        time.sleep(1.0)
        delivered = receiver.delivered()
        per_id: dict[str, int] = {}
        for hit in delivered:
            per_id[hit.delivery] = per_id.get(hit.delivery, 0) + 1
        assert set(per_id.values()) == {1}, per_id
        assert all(h.signed for h in receiver.snapshot())
        for path in ("/account", "/inbox"):
            assert sorted(contents(delivered, path, "message_created")) == [
                "hello", "retry me", "while down",
            ]  # fmt: skip
            # Resolved, then reopened by "retry me".
            statuses = [
                h.body["status"]
                for h in delivered
                if h.path == path and h.event == "conversation_status_changed"
            ]
            assert sorted(statuses) == ["open", "resolved"]
        assert len(delivered) == 2 * (1 + 3 + 2)
