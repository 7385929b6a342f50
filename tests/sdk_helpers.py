"""Shared pieces of the SDK's real-socket tests.

* :class:`SamePortGateway`: a gateway process that restarts on the port it first got, so an SDK
  client keeps its base URL across a kill (a real deployment's address does not move).
* :class:`PlainCableProxy`: a real websocket server in front of the gateway's ``/cable`` that
  speaks only ``actioncable-v1-json``, as a stock Chatwoot does: no session restore, no history.
  It can cut every connection and refuse new ones for a while (a network outage).
* :class:`Agent`: the agent side, through the agent API with an access token.
* :func:`sdk`, :func:`listen` and :func:`make_client`: one test body for both shells. The
  async shell is awaited; the sync one runs in worker threads (as an application would run
  it beside an event loop), so the outage and resume tests drive both.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from client_sdk import AsyncChatSession, AsyncInboxClient, ChatSession, InboxClient
from client_sdk import cable_protocol as cp
from client_sdk.events import Event
from tests.server_helpers import CLI, HOST, START_TIMEOUT, GatewayProcess, ServerFailed

T = TypeVar("T")
SHELLS = ["async", "sync"]
AnyClient = AsyncInboxClient | InboxClient
AnySession = AsyncChatSession | ChatSession

ENV = {"INBOXGATE_MESSAGES_PER_MINUTE": "100000", "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1"}


class SamePortGateway(GatewayProcess):
    """A :class:`GatewayProcess` whose restarts reuse its first port."""

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if not self.port:
            super().start(timeout)
            return
        deadline = time.monotonic() + timeout
        while True:  # the killed process's socket may linger for a moment
            self.log_path = self.root / f"server-{self.starts}.log"
            self.starts += 1
            self._log = self.log_path.open("wb")
            command = [*CLI, "serve", "--host", HOST, "--port", str(self.port)]
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_healthy(max(1.0, deadline - time.monotonic())):
                return
            output = self.log()
            self.kill()
            if "address already in use" not in output.lower() or time.monotonic() > deadline:
                raise ServerFailed(f"gateway did not restart on {self.base_url}:\n{output}")
            time.sleep(0.2)


class Agent:
    """One agent user of an account, replying through the agent API."""

    def __init__(self, server: GatewayProcess, inbox: dict[str, Any]) -> None:
        self.server = server
        self.account_id = int(inbox["account_id"])
        tag = uuid.uuid4().hex[:8]
        self.user = server.cli(
            "user", "create", "--account", str(self.account_id), "--email",
            f"agent-{tag}@example.com", "--name", "Agent Smith", "--inbox", str(inbox["id"]),
        )  # fmt: skip
        self.headers = {"api_access_token": self.user["access_token"]}

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        url = self.server.url(f"/api/v1/accounts/{self.account_id}{path}")
        response = httpx.post(url, json=body, headers=self.headers, timeout=10.0)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def reply(self, conversation_id: int, content: str) -> dict[str, Any]:
        return self._post(f"/conversations/{conversation_id}/messages", {"content": content})  # type: ignore[no-any-return]

    def messages(self, conversation_id: int) -> list[dict[str, Any]]:
        url = self.server.url(
            f"/api/v1/accounts/{self.account_id}/conversations/{conversation_id}/messages"
        )
        response = httpx.get(url, headers=self.headers, timeout=10.0)
        assert response.status_code == 200, response.text
        return response.json()["payload"]  # type: ignore[no-any-return]

    def resolve(self, conversation_id: int) -> None:
        self._post(f"/conversations/{conversation_id}/toggle_status", {"status": "resolved"})

    def typing(self, conversation_id: int, on: bool = True) -> None:
        body = {"typing_status": "on" if on else "off"}
        self._post(f"/conversations/{conversation_id}/toggle_typing_status", body)


class PlainCableProxy:
    """``ws://127.0.0.1:<port>/cable`` speaking only ``actioncable-v1-json``, piping frames to
    the gateway's ``/cable`` over the same protocol. Run it on an asyncio loop."""

    def __init__(self, upstream: Callable[[], str]) -> None:
        self.upstream = upstream  # the gateway's cable URL (its port may change)
        self.server: Server | None = None
        self.port = 0
        self.refusing = False
        self.offered: list[list[str]] = []
        self._live: set[ServerConnection] = set()

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/cable"

    async def start(self) -> None:
        self.server = await serve(
            self._handle, HOST, 0, subprotocols=[Subprotocol(cp.JSON)], compression=None,
            ping_interval=None,
        )  # fmt: skip
        self.port = next(iter(self.server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def outage(self) -> None:
        """Cut every connection abruptly and refuse new ones until :meth:`restore`."""
        self.refusing = True
        for ws in list(self._live):
            ws.transport.abort()

    def restore(self) -> None:
        self.refusing = False

    async def _handle(self, ws: ServerConnection) -> None:
        self.offered.append(list(ws.request.headers.get_all("Sec-WebSocket-Protocol")))
        if self.refusing:
            ws.transport.abort()
            return
        self._live.add(ws)
        try:
            async with connect(
                self.upstream(), subprotocols=[Subprotocol(cp.JSON)], compression=None,
                ping_interval=None, open_timeout=5,
            ) as up:  # fmt: skip
                await _pipe_both(ws, up)
        except (OSError, TimeoutError, ConnectionClosed):
            pass
        finally:
            self._live.discard(ws)
            ws.transport.abort()


async def _pipe_both(a: Any, b: Any) -> None:
    async def pipe(src: Any, dst: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in src:
                await dst.send(frame)

    tasks = [asyncio.ensure_future(pipe(a, b)), asyncio.ensure_future(pipe(b, a))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def outbox_path(root: Path) -> Path:
    return root / "sdk" / "outbox.sqlite3"


async def outbox_drained(session: AnySession, timeout: float = 30.0) -> None:
    """Wait until every entry of the session's outbox was confirmed by its echo."""
    with anyio.fail_after(timeout):
        while await sdk(session.pending):
            await anyio.sleep(0.02)


def make_client(shell: str, base_url: str, inbox: str, **options: Any) -> AnyClient:
    """The ``shell`` ("async" or "sync") client of ``inbox``, with the same options."""
    kind = AsyncInboxClient if shell == "async" else InboxClient
    return kind(base_url, inbox, **options)


async def sdk(method: Callable[..., Awaitable[T] | T], *args: Any, **kwargs: Any) -> Any:
    """Call an SDK method from the test's event loop: awaited for the async shell, in a
    worker thread for the sync one."""
    if inspect.iscoroutinefunction(method):
        return await method(*args, **kwargs)
    return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))


async def listen(session: AnySession, events: list[Event]) -> None:
    """Append the session's events to ``events`` until it is closed (the sync shell's
    iterator runs in a worker thread)."""
    if isinstance(session, AsyncChatSession):
        async for event in session.events():
            events.append(event)
        return

    def consume() -> None:
        for event in session.events():
            events.append(event)

    await anyio.to_thread.run_sync(consume)
