"""A loopback webhook receiver for the real-socket tests: it verifies every signature, fails
on purpose when told to, and keeps every hit (the webhook, bot and multi-node suites)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.webhooks import signing
from tests.server_helpers import HOST

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
