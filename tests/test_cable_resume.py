"""Resuming /cable loses, repeats and reorders nothing: real sockets, real server processes.

* ``test_resume_state_machine``: a hypothesis state machine over one contact session. The
  contact posts messages (with ``echo_id``), resolves a conversation (``status_changed``, the CSAT
  survey message), opens another one; the client drops its socket abruptly, comes back with
  session restore (``?sid=``, then ``history``) or with a fresh ``subscribe`` carrying its
  positions, asks for history while connected; the server is SIGKILLed, between requests or
  during a POST, and restarted on the same database (on a new port). After every step the
  client's logged broadcasts are consecutive offsets with no repeat; at the end, after a last
  reconnect and history, its ``message.created`` events are exactly the store's messages for the
  contact, in order, once each.
* ``test_kill_mid_conversation``: five clients (ext JSON and ext MessagePack) while messages are
  posted continuously; SIGKILL, restart; restore fails (sessions live in memory), so every
  client resubscribes with its positions, and each ends with every acknowledged message exactly
  once, in order.

Clients never de-duplicate: like @anycable/core they keep the last position of each stream, and
a repeated or skipped offset fails the test. Shrinking is off: every example costs restarts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from client_sdk import cable_protocol as cp
from tests.cable_client import contact_identifier
from tests.cable_views import (
    SENTINEL,
    Link,
    Listener,
    View,
    contact_path,
    ok,
    store_messages,
    until_received,
    wait_for,
)
from tests.server_helpers import GatewayProcess

pytestmark = pytest.mark.slow

ENV = {"INBOXGATE_MESSAGES_PER_MINUTE": "100000", "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1"}
EXT = (cp.EXT_JSON, cp.EXT_MSGPACK)


class Env:
    def __init__(self, server: GatewayProcess, inbox: str, portal: BlockingPortal) -> None:
        self.server, self.inbox, self.portal = server, inbox, portal


class ResumeMachine(RuleBasedStateMachine):
    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env
        self.server = env.server
        if self.server.proc is None:  # a previous example ended with the server down
            self.server.start()
        self.http = httpx.Client(timeout=10.0)
        base = f"/public/api/v1/inboxes/{env.inbox}/contacts"
        contact = ok(self.http.post(self.server.url(base), json={}))
        self.api = contact_path(env.inbox, contact["source_id"])
        self.source_id = contact["source_id"]
        self.view = View(contact_identifier(contact["pubsub_token"]))
        self.link: Link | None = None
        self.protocol = cp.EXT_JSON
        self.sid: str | None = None
        self.sid_start = -1  # server.starts when the sid was issued: restore works within it
        self.conversations: list[int] = []
        self.acked: dict[str, dict[str, Any]] = {}  # echo_id -> message (HTTP 200)
        self.pending: list[tuple[int, str, str]] = []  # POSTs cut off by a kill: retried
        self.posted = 0

    @property
    def up(self) -> bool:
        return self.server.proc is not None

    # -- helpers ---------------------------------------------------------------------------

    def _welcome(self, url: str) -> cp.Welcome:
        self.link = Link(self.env.portal, self.view, url, self.protocol)
        welcome: cp.Welcome = self.link.expect(cp.Welcome)
        assert isinstance(welcome.sid, str) and welcome.sid, welcome
        self.sid, self.sid_start = welcome.sid, self.server.starts
        return welcome

    def _subscribe(self, history: bool) -> None:
        assert self.link is not None
        request = self.view.history() if history else None
        self.link.send(cp.Subscribe(identifier=self.view.identifier, history=request))
        self.link.expect(cp.ConfirmSubscription)
        if history:
            self.link.expect(cp.ConfirmHistory)

    def _stored(self) -> list[dict[str, Any]]:
        return store_messages(self.server, self.env.inbox, self.source_id, self.conversations)

    def _settle(self) -> None:
        """While connected, post a sentinel and wait until every stored message, the sentinel
        last, arrived. The contact's conversations share one stream, delivered in offset order:
        a repeat of anything before the sentinel would have come before it (and a later one is
        recorded by the next read), so no quiet period has to prove there is none."""
        if self.link is None:
            return
        if self.conversations:
            conv, echo_id, content = self._next_message(self.conversations[0])
            self.acked[echo_id] = ok(self._post(conv, echo_id, f"sentinel: {content}"))
        wanted = {m["id"] for m in self._stored()}
        if not wanted <= {m["id"] for m in self.view.created()}:
            self.link.read_until(lambda _f: wanted <= {m["id"] for m in self.view.created()})

    def _drop(self) -> None:
        if self.link is not None:
            self.link.abort()
            self.link = None

    def _kill(self) -> None:
        self._drop()
        self.server.kill()

    def _post(self, conv: int, echo_id: str, content: str) -> httpx.Response:
        url = self.server.url(f"{self.api}/conversations/{conv}/messages")
        return self.http.post(url, json={"content": content, "echo_id": echo_id})

    def _next_message(self, conv: int) -> tuple[int, str, str]:
        self.posted += 1
        return conv, f"echo-{self.posted}", f"message {self.posted} of {self.source_id}"

    def _conv(self, index: int) -> int:
        return self.conversations[index % len(self.conversations)]

    # -- rules -----------------------------------------------------------------------------

    @initialize(protocol=st.sampled_from(EXT))
    def connect(self, protocol: str) -> None:
        self.protocol = protocol
        self._welcome(self.server.ws_url("/cable"))
        self._subscribe(history=False)
        self.create_conversation()

    @precondition(lambda self: self.up and len(self.conversations) < 3)
    @rule()
    def create_conversation(self) -> None:
        url = self.server.url(f"{self.api}/conversations")
        self.conversations.append(ok(self.http.post(url, json={}))["id"])
        self._settle()

    @precondition(lambda self: self.up)
    @rule(index=st.integers(0, 2), count=st.integers(1, 3))
    def post_messages(self, index: int, count: int) -> None:
        for _ in range(count):
            conv, echo_id, content = self._next_message(self._conv(index))
            message = ok(self._post(conv, echo_id, content))
            assert message["content"] == content
            self.acked[echo_id] = message
        self._settle()

    @precondition(lambda self: self.up)
    @rule(index=st.integers(0, 2))
    def resolve(self, index: int) -> None:
        url = self.server.url(f"{self.api}/conversations/{self._conv(index)}/toggle_status")
        assert ok(self.http.post(url))["status"] == "resolved"
        self._settle()

    @precondition(lambda self: self.link is not None)
    @rule()
    def drop_connection(self) -> None:
        self._drop()

    @precondition(lambda self: self.up and self.link is None and self.sid is not None)
    @rule()
    def reconnect_with_restore(self) -> None:
        expect_restored = self.sid_start == self.server.starts  # the session cache survived
        welcome = self._welcome(self.server.ws_url(f"/cable?sid={self.sid}"))
        assert self.link is not None
        if expect_restored:
            assert welcome.restored is True, f"restore within the TTL failed: {welcome!r}"
            assert welcome.restored_ids == [self.view.identifier], welcome
            self.link.send(cp.History(identifier=self.view.identifier, history=self.view.history()))
            self.link.expect(cp.ConfirmHistory)
        else:
            assert welcome.restored is not True, f"restored after a restart: {welcome!r}"
            self._subscribe(history=True)  # what @anycable/core does on recovery_failed
        self._settle()

    @precondition(lambda self: self.up and self.link is None)
    @rule()
    def reconnect_fresh(self) -> None:
        welcome = self._welcome(self.server.ws_url("/cable"))
        assert welcome.restored is not True, welcome
        self._subscribe(history=True)
        self._settle()

    @precondition(lambda self: self.link is not None)
    @rule()
    def history_while_connected(self) -> None:
        assert self.link is not None
        self.link.send(cp.History(identifier=self.view.identifier, history=self.view.history()))
        self.link.expect(cp.ConfirmHistory)
        self._settle()

    @precondition(lambda self: self.up)
    @rule()
    def restart_server(self) -> None:
        self._kill()
        self.start_server()

    @precondition(lambda self: self.up)
    @rule(delay=st.sampled_from([0.0, 0.002, 0.003, 0.004, 0.006, 0.012]), index=st.integers(0, 2))
    def kill_during_post(self, delay: float, index: int) -> None:
        conv, echo_id, content = self._next_message(self._conv(index))
        result: dict[str, Any] = {}

        def post() -> None:
            try:
                result["response"] = self._post(conv, echo_id, content)
            except httpx.TransportError as exc:
                result["error"] = exc

        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(delay)
        self._kill()
        thread.join(30)
        response = result.get("response")
        if response is not None:  # answered before the kill: acknowledged, so durable
            self.acked[echo_id] = ok(response)
        else:
            self.pending.append((conv, echo_id, content))  # maybe committed: retried
        self.start_server()

    def start_server(self) -> None:
        """Start on the same database (a new port); retry the POSTs a kill cut off."""
        self.server.start()
        for conv, echo_id, content in self.pending:
            self.acked[echo_id] = ok(self._post(conv, echo_id, content))
        self.pending.clear()

    @invariant()
    def no_gap_no_repeat(self) -> None:
        assert not self.view.errors, self.view.errors

    def teardown(self) -> None:
        try:
            if self.conversations:
                self._final_check()
        finally:
            self._drop()
            self.http.close()

    def _final_check(self) -> None:
        if not self.up:
            self.start_server()
        if self.link is None:
            if self.sid is not None:
                self.reconnect_with_restore()
            else:
                self.reconnect_fresh()
        else:
            self.history_while_connected()
        stored = self._stored()
        self.view.check_against(stored)
        by_id = {m["id"]: m for m in stored}
        for echo_id, message in self.acked.items():
            assert message["id"] in by_id, f"acknowledged {echo_id} lost: {message}"
            assert by_id[message["id"]]["content"] == message["content"]
        contents = [m["content"] for m in stored if m["content"].startswith("message ")]
        assert len(set(contents)) == len(contents), f"a retried echo_id doubled: {contents}"


@pytest.fixture(scope="module")
def resume_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    server = GatewayProcess(tmp_path_factory.mktemp("resume"), **ENV)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.mark.timeout(600)
def test_resume_state_machine(resume_server: GatewayProcess) -> None:
    inbox = resume_server.provision_inbox(name="Resume", csat=True)
    with start_blocking_portal("asyncio") as portal:
        env = Env(resume_server, inbox["identifier"], portal)
        run_state_machine_as_test(
            lambda: ResumeMachine(env),
            settings=settings(
                max_examples=8,
                stateful_step_count=12,
                deadline=None,
                database=None,
                phases=(Phase.explicit, Phase.reuse, Phase.generate),
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


# --------------------------------------------------------------------------------------------
# SIGKILL while several clients listen and messages keep coming
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.timeout(180)
async def test_kill_mid_conversation(tmp_path: Path) -> None:
    server = GatewayProcess(tmp_path, **ENV)
    try:
        await anyio.to_thread.run_sync(server.start)
        inbox = server.provision_inbox(name="Kill")["identifier"]
        async with httpx.AsyncClient(timeout=10.0) as http:
            url = server.url(f"/public/api/v1/inboxes/{inbox}/contacts")
            contact = ok(await http.post(url, json={}))
            api = contact_path(inbox, contact["source_id"])
            ident = contact_identifier(contact["pubsub_token"])
            listeners = [Listener(EXT[i % 2], ident) for i in range(5)]
            acked: dict[str, dict[str, Any]] = {}
            stop_posting, stop_listening = anyio.Event(), anyio.Event()
            posting_done = anyio.Event()

            async def poster(conv: int) -> None:
                n = 0
                while not stop_posting.is_set():
                    n += 1
                    echo_id, content = f"echo-{n}", f"message {n}"
                    while True:  # the same echo_id until acknowledged: a retry is idempotent
                        try:
                            response = await http.post(
                                server.url(f"{api}/conversations/{conv}/messages"),
                                json={"content": content, "echo_id": echo_id},
                            )
                        except httpx.TransportError:
                            await anyio.sleep(0.05)
                            continue
                        acked[echo_id] = ok(response)
                        break
                posting_done.set()

            async with anyio.create_task_group() as tg:
                for listener in listeners:
                    tg.start_soon(listener.run, server, stop_listening)
                with anyio.fail_after(20):
                    for listener in listeners:
                        await listener.subscribed.wait()
                url = server.url(f"{api}/conversations")
                conv = ok(await http.post(url, json={}))["id"]
                tg.start_soon(poster, conv)
                await wait_for(lambda: len(acked) >= 30, 30, "30 acknowledged messages")
                await anyio.to_thread.run_sync(server.kill)
                killed_at = len(acked)
                first_start = server.starts
                await anyio.to_thread.run_sync(server.start)
                await wait_for(lambda: len(acked) >= killed_at + 30, 30, "30 more after restart")
                stop_posting.set()
                with anyio.fail_after(20):
                    await posting_done.wait()
                messages = server.url(f"{api}/conversations/{conv}/messages")
                sentinel = {"content": SENTINEL, "echo_id": "sentinel"}
                acked["sentinel"] = ok(await http.post(messages, json=sentinel))
                await until_received([listener.view for listener in listeners], SENTINEL, 20)
                stored = await anyio.to_thread.run_sync(
                    store_messages, server, inbox, contact["source_id"], [conv]
                )
                stop_listening.set()
                for listener in listeners:
                    if listener.cable is not None:
                        await listener.cable.ws.close()

        by_id = {m["id"]: m for m in stored}
        for echo_id, message in acked.items():
            assert message["id"] in by_id, f"acknowledged {echo_id} lost: {message}"
        assert len(stored) == len(acked), "a retried echo_id made a second message"
        for i, listener in enumerate(listeners):
            listener.view.check_against(stored, who=f"listener {i} ({listener.protocol})")
            after_kill = [w for starts, w in listener.welcomes if starts > first_start]
            assert after_kill, f"listener {i} never reconnected: {listener.welcomes}"
            # The session cache is in memory: a restart forgets every sid.
            assert all(w.restored is not True for w in after_kill), listener.welcomes
            assert listener.history_confirms >= 1, f"listener {i}: no confirm_history"
    finally:
        server.kill()
