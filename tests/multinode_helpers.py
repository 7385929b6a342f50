"""Several gateway nodes that behave as one, for the multi-node and fault tests.

* :class:`Cluster`: gateway processes (uvicorn subprocesses, see :mod:`tests.server_helpers`)
  on their own ports, sharing one PostgreSQL database, one Redis (a private ``redis-server``
  in the tests, never the machine's) and one ``INBOXGATE_SECRET_KEY``. The schema is applied
  once with ``inboxgate migrate``, as the two-node setup of docs/deployment.md does.
* :class:`NodeListener`: a contact's /cable client that reconnects forever, like
  @anycable/core: session restore with its sid when it can, else a fresh subscribe with its
  positions; when its node refuses connections it goes to the next node, as a load balancer
  with a dead backend would send it.
* :class:`Poster`: a customer posting messages one at a time, round robin over the nodes; a
  POST that got no 200 (a refused or cut connection, a 503) is sent again with the same
  ``echo_id``, to the next node, so each message is acknowledged exactly once.

Every process is killed by its pid when the cluster's block exits.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
from websockets.exceptions import WebSocketException

from client_sdk import cable_protocol as cp
from tests.cable_client import CableClient
from tests.cable_views import View
from tests.server_helpers import CLI, GatewayProcess, ServerFailed, server_env

SECRET_KEY = "multinode-test-secret-key-shared-by-every-node"
# Tests post faster than the flood guard and the per-IP limit allow a real customer: the guard
# off (a high limit would be counted up to on every message) and loopback not rate limited.
FAST = {"INBOXGATE_MESSAGES_PER_MINUTE": "0", "INBOXGATE_RATE_LIMIT_SAFELIST": "127.0.0.1"}


class Cluster:
    """Gateway nodes named ``a``, ``b``... sharing ``database_url``, ``redis_url`` and the
    secret key; each node's log and data directory live under ``root/node-<name>``."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        redis_url: str,
        *,
        names: tuple[str, ...] = ("a", "b"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: more ``INBOXGATE_*`` variables for every node."""
        self.shared = {
            "INBOXGATE_DATABASE_URL": database_url,
            "INBOXGATE_REDIS_URL": redis_url,
            "INBOXGATE_REDIS_PREFIX": f"inboxgate-mn-{secrets.token_hex(4)}",
            "INBOXGATE_SECRET_KEY": SECRET_KEY,
            **FAST,
            **(env or {}),
        }
        self.nodes = [self._node(root / f"node-{name}") for name in names]

    def _node(self, root: Path) -> GatewayProcess:
        return GatewayProcess(root, server_env(root, **self.shared))

    @property
    def a(self) -> GatewayProcess:
        return self.nodes[0]

    @property
    def b(self) -> GatewayProcess:
        return self.nodes[1]

    def migrate(self) -> None:
        done = subprocess.run(
            [*CLI, "migrate"], env=self.a.env, capture_output=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise ServerFailed(f"inboxgate migrate failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> None:
        self.migrate()
        for node in self.nodes:
            node.start()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


@contextlib.contextmanager
def cluster(root: Path, database_url: str, redis_url: str, **overrides: str) -> Iterator[Cluster]:
    """A started two-node cluster; every node killed by pid on exit."""
    nodes = Cluster(root, database_url, redis_url, env=overrides)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.kill()


class NodeListener:
    """A contact client that reconnects forever and moves to the next node when its own one
    refuses connections. Like @anycable/core it never de-duplicates: its :class:`View` fails
    on a repeated or skipped offset."""

    def __init__(
        self, protocol: str, identifier: str, nodes: list[GatewayProcess], home: int
    ) -> None:
        self.protocol = protocol
        self.view = View(identifier)
        self.nodes = nodes
        self.home = home
        self.at = home
        self.sid: str | None = None
        self.welcomes: list[tuple[int, cp.Welcome]] = []  # (node index, welcome)
        self.disconnects: list[cp.Disconnect] = []
        self.history_confirms = 0
        self.subscribed = anyio.Event()
        self.cable: CableClient | None = None

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            node = self.at
            query = f"?sid={self.sid}" if self.sid else ""
            welcomed = len(self.welcomes)
            with contextlib.suppress(OSError, TimeoutError, WebSocketException):
                url = self.nodes[node].ws_url("/cable" + query)
                async with CableClient.connect(url, protocol=self.protocol) as cable:
                    self.cable = cable
                    await self._session(cable, node)
            self.cable = None
            if len(self.welcomes) == welcomed:  # not even a welcome: try another node
                self.at = (self.at + 1) % len(self.nodes)
            await anyio.sleep(0.05)

    async def drop(self) -> None:
        """Cut the TCP connection without a closing handshake, as a lost network does."""
        if self.cable is not None:
            self.cable.ws.transport.abort()

    async def _session(self, cable: CableClient, node: int) -> None:
        welcome = cp.decode_frame(await cable.ws.recv(), cable.encoding)
        if isinstance(welcome, cp.Disconnect) and welcome.reconnect:
            # The node could not re-check the session (its database is away) and kept it:
            # come back with the same sid.
            self.disconnects.append(welcome)
            return
        assert isinstance(welcome, cp.Welcome), welcome
        self.welcomes.append((node, welcome))
        ident = self.view.identifier
        restored = welcome.restored is True and ident in (welcome.restored_ids or [])
        if restored:
            await cable.send(cp.History(identifier=ident, history=self.view.history()))
        else:
            history = self.view.history() if self.view.positions else None
            await cable.subscribe(ident, history=history)
        self.sid = welcome.sid if isinstance(welcome.sid, str) else None
        while True:
            frame = cp.decode_frame(await cable.ws.recv(), cable.encoding)
            if isinstance(frame, cp.Broadcast):
                self.view.record(frame)
            elif isinstance(frame, cp.ConfirmSubscription):
                self.subscribed.set()
            elif isinstance(frame, cp.ConfirmHistory):
                self.history_confirms += 1
            elif isinstance(frame, cp.Disconnect):
                self.disconnects.append(frame)
                if not frame.reconnect:
                    self.view.errors.append(f"disconnected for good: {frame!r}")
                return
            elif isinstance(frame, cp.RejectHistory):
                # What it missed is unknown: start over with a fresh subscribe and positions.
                self.sid = None
                return
            elif not isinstance(frame, cp.Ping):
                self.view.errors.append(f"unexpected {frame!r}")

    def moved_to(self, node: int) -> list[cp.Welcome]:
        return [w for i, w in self.welcomes if i == node]


class Poster:
    """One customer's messages, posted one at a time (each waits for its answer, so message
    ids and stream offsets grow together), round robin over the nodes."""

    def __init__(self, nodes: list[GatewayProcess], messages_path: str, tag: str = "m") -> None:
        self.nodes = nodes
        self.path = messages_path
        self.tag = tag
        self.acked: dict[str, dict[str, Any]] = {}  # echo_id -> the 200 answer
        self.refusals: list[tuple[int, float, Any, dict[str, str]]] = []  # status, s, body, hdrs
        self.transport_errors = 0
        self.done = anyio.Event()
        self._next = 0

    async def run(self, http: httpx.AsyncClient, stop: anyio.Event) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                await self.post(http, f"{self.tag}-{n}", f"{self.tag} message {n}")
        finally:
            self.done.set()

    async def post(self, http: httpx.AsyncClient, echo_id: str, content: str) -> dict[str, Any]:
        """Until acknowledged: the same echo_id, the next node after each failure."""
        while True:
            node = self.nodes[self._next % len(self.nodes)]
            self._next += 1
            started = time.monotonic()
            try:
                response = await http.post(
                    node.url(self.path), json={"content": content, "echo_id": echo_id}
                )
            except httpx.TransportError:
                self.transport_errors += 1
                await anyio.sleep(0.05)
                continue
            took = time.monotonic() - started
            if response.status_code == 200:
                message: dict[str, Any] = response.json()
                self.acked[echo_id] = message
                return message
            body = response.json() if response.content else None
            assert response.status_code == 503, (response.status_code, body)
            self.refusals.append((response.status_code, took, body, dict(response.headers)))
            await anyio.sleep(0.1)
