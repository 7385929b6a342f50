"""Webhooks over real sockets: a gateway under uvicorn delivering to a loopback receiver that
verifies every signature, fails on purpose, and outlives a SIGKILL of the gateway."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.webhooks import signing
from tests.server_helpers import HOST, GatewayProcess

pytestmark = pytest.mark.slow

SUBSCRIBED = ["conversation_created", "message_created", "conversation_status_changed"]
WAIT = 30.0


@dataclass(frozen=True)
class Hit:
    path: str
    delivery: str
    event: str
    body: dict[str, Any]
    status: int
    signed: bool


class Receiver:
    """A loopback HTTP server in a thread. It checks each request's signature with the secret
    registered for its path, answers 200 unless told to fail, and keeps every hit."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.hits: list[Hit] = []
        # (path, message content) -> how many more of its attempts to fail
        self.fail_next: dict[tuple[str, str], int] = {}
        self.down = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.record(self, raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}{path}"

    def record(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        secret = self.secrets.get(handler.path, "")
        signed = signing.verify(
            secret, raw, handler.headers.get("X-Chatwoot-Signature"),
            handler.headers.get("X-Chatwoot-Timestamp"), now=time.time(),
        )  # fmt: skip
        body = json.loads(raw)
        key = (handler.path, str(body.get("content")))
        with self.lock:
            status = 200
            if self.down:
                status = 503
            elif self.fail_next.get(key, 0) > 0:
                self.fail_next[key] -= 1
                status = 500
            self.hits.append(
                Hit(handler.path, handler.headers.get("X-Chatwoot-Delivery", ""),
                    body.get("event", ""), body, status, signed)
            )  # fmt: skip
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def snapshot(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)

    def delivered(self) -> list[Hit]:
        return [h for h in self.snapshot() if h.status == 200]

    def wait_for(self, what: str, predicate: Callable[[list[Hit]], bool]) -> list[Hit]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            hits = self.snapshot()
            if predicate(hits):
                return hits
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.snapshot()}")

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


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
